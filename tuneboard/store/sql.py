"""User SQL: read statements only, a row limit, and cancellation from another thread.

Three walls keep a user query from changing the database: the statement types are checked
against an allowlist before anything runs, the connection has external access turned off
(no files, no ATTACH, no extensions), and the query runs in a transaction that is always
rolled back. Other databases a query may read (`attach`) are attached read-only by tuneboard
while the connection opens, before external access is turned off; never by the user's SQL.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tuneboard.sdk.errors import QueryError, TuneboardError
from tuneboard.store.database import first_line
from tuneboard.store.values import column_values

if TYPE_CHECKING:
    from tuneboard.store.store import Store

CANCELLED_MESSAGE = "the query was cancelled"

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
            continue
        if kind == duckdb.StatementType.EXPLAIN:
            explained = _explained_type(statement.query)
            if explained == duckdb.StatementType.SELECT:
                continue
            what = f"EXPLAIN of {explained.name}" if explained is not None else "EXPLAIN"
        else:
            what = kind.name
        raise QueryError(f"only read statements are allowed; statement {number} is {what}")
    return statements


def _explained_type(query: str) -> duckdb.StatementType | None:
    """The type of the statement an EXPLAIN wraps (EXPLAIN ANALYZE runs it), if it is clear."""
    match = _EXPLAIN_PREFIX.match(query)
    if match is None:
        return None
    try:
        inner = duckdb.extract_statements(query[match.end() :])
        return inner[0].type if len(inner) == 1 else None
    except (duckdb.Error, ValueError):
        return None


def check_read_only(sql: str) -> None:
    """Raise `QueryError` unless every statement in `sql` is a read (SELECT or EXPLAIN).

    DESCRIBE, SHOW, SUMMARIZE, `FROM t` and WITH ... SELECT count as SELECT.
    """
    _statements(sql)


class QueryJob:
    """One user query, run by `run()` in some thread and cancellable from any other.

    `start_query()` runs it in a background thread; `result()` waits for the outcome and
    raises `QueryError` if it failed or was cancelled. The rows returned are the `limit`
    rows after the first `offset` of the last statement's result (a page of it). `attach`
    maps aliases to other DuckDB files the query can read as `alias.table` (read-only).
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
        self._result: QueryResult | None = None
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

    def result(self, timeout: float | None = None) -> QueryResult:
        """Wait for the query and return its result; raise `QueryError` if it failed."""
        if not self._done.wait(timeout):
            raise QueryError(f"the query is still running after {timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def run(self) -> None:
        """Run the query in the calling thread; the outcome goes to `result()`."""
        try:
            self._result = self._execute()
        except QueryError as error:
            self._error = error
        except duckdb.InterruptException:
            self._error = QueryError(CANCELLED_MESSAGE)
        except RuntimeError as error:  # DuckDB's answer to Ctrl-C when run in the main thread
            if "interrupted" not in str(error).lower():
                raise
            self._error = QueryError(CANCELLED_MESSAGE)
        except duckdb.Error as error:
            self._error = QueryError(first_line(error))
        except TuneboardError as error:
            self._error = QueryError(str(error))
        finally:
            self._done.set()

    def _execute(self) -> QueryResult:
        started = time.perf_counter()
        store = self._store
        with store.database.cursor(lock_timeout=store.lock_timeout, attach=self.attach) as cur:
            with self._lock:
                if self._cancelled:
                    raise QueryError(CANCELLED_MESSAGE)
                self._cursor = cur
            try:
                cur.begin()
                try:
                    result = self._fetch(cur)
                finally:
                    # An interrupted query may have ended the transaction already.
                    with contextlib.suppress(duckdb.Error):
                        cur.rollback()
            finally:
                with self._lock:
                    self._cursor = None
        if self._cancelled:
            raise QueryError(CANCELLED_MESSAGE)
        return QueryResult(*result, elapsed=time.perf_counter() - started)

    def _fetch(
        self, cur: duckdb.DuckDBPyConnection
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]], bool]:
        *before, last = self._statements
        for statement in before:
            cur.execute(statement.query)
        relation = cur.sql(last.query)
        if relation is None:
            return [], [], [], False
        # Arrow, not fetchall(): DuckDB's own conversion of TIMESTAMPTZ needs pytz.
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
    threading.Thread(target=job.run, name="tuneboard-query", daemon=True).start()
    return job


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
