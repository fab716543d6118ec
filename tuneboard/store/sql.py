"""User SQL: read statements only, a row limit, a time limit, and cancellation from another
thread.

Walls keep a user query from changing the database or reaching files: the statements are
checked before anything runs (their types against an allowlist, and no INSERT, UPDATE, DELETE
or COPY inside a WITH clause, which DuckDB still types as a SELECT); the query runs on a
connection of its own that opened the file read-only, with no file system, a memory limit
and its settings locked (`Database.query_cursor`); and in a read-only transaction that is
always rolled back. Other databases a query may read (`attach`) are attached read-only by
tuneboard while that connection opens; never by the user's SQL. Each statement of the text
runs in turn and has a result of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tuneboard.sdk.errors import QueryError, TuneboardError
from tuneboard.store.database import (
    CONNECTION_CONFIG,
    EXIT_WAIT_SECONDS,
    first_line,
    query_memory_limit,
)
from tuneboard.store.values import column_values

if TYPE_CHECKING:
    from tuneboard.store.store import Store

CANCELLED_MESSAGE = "the query was cancelled"

# Query nodes of reads; a data-modifying WITH clause shows as INSERT_QUERY_NODE and the like.
_READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
# Used where a statement cannot be serialized (PIVOT): these keywords anywhere refuse it.
_WRITE_KEYWORDS = ("INSERT", "UPDATE", "DELETE", "COPY", "MERGE")

# Comments may come first: a statement of a text is what follows the previous semicolon.
_EXPLAIN_PREFIX = re.compile(
    r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*EXPLAIN\s*(?:\([^)]*\)\s*)?(?:ANALY[SZ]E\b\s*)?",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class QueryResult:
    """The outcome of a user query: at most `limit` rows, and whether more were left out."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed: float


def _statements(sql: str) -> list[duckdb.Statement]:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryError(first_line(error)) from None
    if not statements:
        raise QueryError("there is no statement to run")
    for number, statement in enumerate(statements, 1):
        try:
            kind = statement.type
        except ValueError:  # a type the Python enum lacks, such as UPDATE EXTENSIONS
            raise QueryError(
                f"only read statements are allowed; statement {number} is not a read"
            ) from None
        if kind == duckdb.StatementType.SELECT:
            writes = _writes_inside(statement.query)
            if writes is None:
                continue
            what = f"a SELECT with {writes} in a WITH clause"
        elif kind == duckdb.StatementType.EXPLAIN:
            explained, inner = _explained(statement.query)
            writes = _writes_inside(inner) if explained == duckdb.StatementType.SELECT else None
            if explained == duckdb.StatementType.SELECT and writes is None:
                continue
            if writes is not None:
                what = f"EXPLAIN of a SELECT with {writes} in a WITH clause"
            else:
                what = f"EXPLAIN of {explained.name}" if explained is not None else "EXPLAIN"
        else:
            what = kind.name
        raise QueryError(f"only read statements are allowed; statement {number} is {what}")
    return statements


def _explained(query: str) -> tuple[duckdb.StatementType | None, str]:
    """The type and text of the statement an EXPLAIN wraps (EXPLAIN ANALYZE runs it)."""
    match = _EXPLAIN_PREFIX.match(query)
    if match is None:
        return None, ""
    try:
        inner = duckdb.extract_statements(query[match.end() :])
        return (inner[0].type, inner[0].query) if len(inner) == 1 else (None, "")
    except (duckdb.Error, ValueError):
        return None, ""


_parser: duckdb.DuckDBPyConnection | None = None
_parser_lock = threading.Lock()
_abandoned: list[duckdb.DuckDBPyConnection] = []


def _forget_parser() -> None:
    # A child of fork makes its own: the parent's instance (and its lock) are not its to use,
    # nor to free (see `Database._forget_all`).
    global _parser, _parser_lock
    if _parser is not None:
        _abandoned.append(_parser)
    _parser, _parser_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parser)


def _serialized(query: str) -> dict[str, Any]:
    """DuckDB's parse tree of one SELECT statement, as JSON (`json_serialize_sql`)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            # Parsing only: no database, no files, one thread.
            _parser = duckdb.connect(":memory:", config={**CONNECTION_CONFIG, "threads": 1})
        row = _parser.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    assert row is not None
    tree: dict[str, Any] = json.loads(row[0])
    return tree


def _writes_inside(query: str) -> str | None:
    """What a statement DuckDB types as a SELECT would change (`WITH x AS (DELETE ...)`)."""
    tree = _serialized(query)
    if tree.get("error"):  # PIVOT, say: look for the keywords instead
        keywords = {
            query[start:].split(None, 1)[0].upper().strip("(;")
            for start, kind in duckdb.tokenize(query)
            if kind == duckdb.token_type.keyword
        }
        found = [keyword for keyword in _WRITE_KEYWORDS if keyword in keywords]
        return found[0] if found else None
    nodes: set[str] = set()
    _query_nodes(tree, nodes)
    writes = sorted(nodes - _READ_NODES)
    return writes[0].removesuffix("_NODE").removesuffix("_QUERY") if writes else None


def _query_nodes(tree: object, found: set[str]) -> None:
    """Collect the types of the query nodes anywhere in a serialized statement."""
    if isinstance(tree, dict):
        kind = tree.get("type")
        if isinstance(kind, str) and kind.endswith("_NODE"):
            found.add(kind)
        for value in tree.values():
            _query_nodes(value, found)
    elif isinstance(tree, list):
        for value in tree:
            _query_nodes(value, found)


def check_read_only(sql: str) -> None:
    """Raise `QueryError` unless every statement in `sql` is a read (SELECT or EXPLAIN).

    DESCRIBE, SHOW, SUMMARIZE, `FROM t` and WITH ... SELECT count as SELECT, unless a WITH
    clause inserts, updates, deletes or copies.
    """
    _statements(sql)


class QueryJob:
    """One user query, run by `run()` in some thread and cancellable from any other.

    `start_query()` runs it in a background thread; `results()` waits for the outcome, one
    result per statement, and raises `QueryError` if it failed or was cancelled; `result()`
    is the last statement's. Each holds the `limit` rows after the first `offset` of its
    statement's rows (a page of it). `attach` maps aliases to other DuckDB files the query
    can read as `alias.table` (read-only).
    """

    def __init__(
        self,
        store: Store,
        sql: str,
        *,
        limit: int = 1000,
        offset: int = 0,
        attach: Mapping[str, Path] | None = None,
    ) -> None:
        if limit < 0 or offset < 0:
            raise QueryError(f"limit and offset must not be negative, got {limit} and {offset}")
        self.sql = sql
        self.limit = limit
        self.offset = offset
        self.attach = dict(attach or {})
        self._store = store
        self._statements = _statements(sql)
        self._lock = threading.Lock()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._cancelled = False
        self._done = threading.Event()
        self._results: list[QueryResult] = []
        self._error: QueryError | None = None

    @property
    def done(self) -> bool:
        """True once the query has finished, failed or been cancelled."""
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop the query if it is running (the cursor running it is interrupted)."""
        with self._lock:
            self._cancelled = True
            if self._cursor is not None:
                self._cursor.interrupt()

    def results(self, timeout: float | None = None) -> list[QueryResult]:
        """Wait for the query and return each statement's result; raise `QueryError` if it
        failed."""
        if not self._done.wait(timeout):
            raise QueryError(f"the query is still running after {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._results

    def result(self, timeout: float | None = None) -> QueryResult:
        """Wait for the query and return its last statement's result (see `results`)."""
        return self.results(timeout)[-1]

    def run(self) -> None:
        """Run the query in the calling thread; the outcome goes to `results()`."""
        try:
            self._results = self._execute()
        except QueryError as error:
            self._error = error
        except duckdb.InterruptException:
            self._error = QueryError(CANCELLED_MESSAGE)
        except RuntimeError as error:  # DuckDB's answer to Ctrl-C when run in the main thread
            if "interrupted" not in str(error).lower():
                raise
            self._error = QueryError(CANCELLED_MESSAGE)
        except duckdb.Error as error:
            self._error = QueryError(_message(error))
        except TuneboardError as error:
            self._error = QueryError(str(error))
        finally:
            self._done.set()

    def _execute(self) -> list[QueryResult]:
        database, lock_timeout = self._store.database, self._store.lock_timeout
        with database.query_cursor(lock_timeout=lock_timeout, attach=self.attach) as cur:
            with self._lock:
                if self._cancelled:
                    raise QueryError(CANCELLED_MESSAGE)
                self._cursor = cur
            try:
                # The connection cannot write; the transaction is a second wall (and one
                # snapshot for all the statements).
                cur.execute("BEGIN TRANSACTION READ ONLY")
                try:
                    results = [
                        self._one(cur, number, statement.query)
                        for number, statement in enumerate(self._statements, 1)
                    ]
                finally:
                    # An interrupted query may have ended the transaction already.
                    with contextlib.suppress(duckdb.Error):
                        cur.rollback()
            finally:
                with self._lock:
                    self._cursor = None
        if self._cancelled:
            raise QueryError(CANCELLED_MESSAGE)
        return results

    def _one(self, cur: duckdb.DuckDBPyConnection, number: int, query: str) -> QueryResult:
        """Run one statement and fetch its page of rows; errors name the statement if several."""
        started = time.perf_counter()
        try:
            fetched = self._fetch(cur, query)
        except duckdb.Error as error:
            if len(self._statements) == 1 or isinstance(error, duckdb.InterruptException):
                raise
            raise QueryError(f"statement {number}: {_message(error)}") from None
        return QueryResult(*fetched, elapsed=time.perf_counter() - started)

    def _fetch(
        self, cur: duckdb.DuckDBPyConnection, query: str
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]], bool]:
        relation = cur.sql(query)
        if relation is None:
            return [], [], [], False
        # Arrow, not fetchall(): DuckDB's own conversion of TIMESTAMPTZ needs pytz. The whole
        # page is fetched, so the next statement finds no unfinished result.
        table = relation.limit(self.limit + 1, offset=self.offset).to_arrow_table()
        columns = [column_values(cur, column) for column in table.columns]
        rows = list(zip(*columns, strict=True)) if columns else []
        truncated = len(rows) > self.limit
        return (
            list(relation.columns),
            [str(kind) for kind in relation.types],
            rows[: self.limit],
            truncated,
        )


def _message(error: duckdb.Error) -> str:
    """A failed query's error in one line, saying which of tuneboard's limits it met."""
    message = first_line(error)
    if isinstance(error, duckdb.PermissionException):
        return f"a query cannot reach files, the network or extensions ({message})"
    if isinstance(error, duckdb.OutOfMemoryException):
        limit = query_memory_limit() / 1024**3
        return f"{message}; a query may use at most {limit:.1f} GiB of memory"
    return message


# The queries `start_query` ran in daemon threads, until Python exits.
_STARTED: weakref.WeakKeyDictionary[QueryJob, threading.Thread] = weakref.WeakKeyDictionary()
_STARTED_LOCK = threading.Lock()


def start_query(
    store: Store,
    sql: str,
    *,
    limit: int = 1000,
    offset: int = 0,
    attach: Mapping[str, Path] | None = None,
) -> QueryJob:
    """Check `sql` (raising `QueryError` at once if refused) and run it in a thread."""
    job = QueryJob(store, sql, limit=limit, offset=offset, attach=attach)
    thread = threading.Thread(target=job.run, name="tuneboard-query", daemon=True)
    with _STARTED_LOCK:
        _STARTED[job] = thread
    thread.start()
    return job


def _stop_queries_at_exit() -> None:
    """Interrupt the queries still running and wait for their threads to end (see
    `Database._close_instances` for why a thread must not be in DuckDB as Python exits)."""
    with _STARTED_LOCK:
        started = list(_STARTED.items())
    for job, _ in started:
        if not job.done:
            job.cancel()
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for _, thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))


# Registered after Database's handler, so it runs first: the queries end, then the files close.
atexit.register(_stop_queries_at_exit)


def run_query(
    store: Store,
    sql: str,
    *,
    limit: int = 1000,
    offset: int = 0,
    attach: Mapping[str, Path] | None = None,
) -> QueryResult:
    """Check and run `sql` in the calling thread; at most `limit` rows, after `offset`."""
    job = QueryJob(store, sql, limit=limit, offset=offset, attach=attach)
    job.run()
    return job.result()
