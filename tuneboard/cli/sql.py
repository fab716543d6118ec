"""`tuneboard sql QUERY`: a read-only SQL query over the project's database."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from tuneboard.cli.shared import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    echo,
    emit,
    exit_on_second_interrupt,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.store.sql import QueryJob, QueryResult


@click.command()
@click.argument("query")
@project_option
@format_option
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Most rows to return.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rows of the result to skip first (with --limit: one page of it).",
)
@click.option(
    "--attach",
    "attach_specs",
    multiple=True,
    metavar="[ALIAS=]PATH",
    help="Also read another DuckDB file, read-only, as ALIAS.table (default alias: the file's "
    "name, or its project folder's); repeatable.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop the query after this many seconds (exit code 1).",
)
@friendly_errors
def sql(
    query: str,
    project_dir: Path | None,
    fmt: str,
    limit: int,
    offset: int,
    attach_specs: tuple[str, ...],
    timeout: float | None,
) -> None:
    """Run a read-only SQL QUERY over the project's database ('-' reads it from stdin).

    Tables: runs, stages, metrics, events, artifacts, generations (see docs/sql.md); those
    of an attached database as ALIAS.runs and so on. Several statements (separated by ';')
    run in turn, and each result is printed in turn.
    """
    worker: _QueryThread | None = None
    try:
        if query == "-":
            query = sys.stdin.read()
        # Everything DuckDB does, from importing it on, happens in another thread, and this
        # one only waits: Ctrl-C raises KeyboardInterrupt here, never inside DuckDB's C++ code
        # (which aborts the process, or turns it into an error), and the query is stopped
        # with `interrupt()`.
        worker = _QueryThread(
            project_dir, query, limit=limit, offset=offset, attach_specs=attach_specs
        )
        worker.start()
        if not worker.finished.wait(timeout):
            worker.cancel()
            worker.finished.wait(_CANCEL_GRACE)
            click.secho(
                f"error: the query ran longer than {timeout:g} s (--timeout) and was stopped",
                fg="red",
                err=True,
            )
            sys.exit(EXIT_RUN_FAILED)
    except KeyboardInterrupt:
        _cancel(worker)
    for number, result in enumerate(worker.results()):
        if number and fmt != "json":
            echo("")
        emit(result.columns, result.rows, fmt)
        if fmt == "table":
            page = f"rows {offset + 1}-{offset + limit}" if offset else f"first {limit}"
            more = f" ({page}; use --limit or --offset for more)" if result.truncated else ""
            rows = f"{len(result.rows)} rows{more} in {result.elapsed * 1000:.0f} ms"
            echo(rows, err=True)


def _cancel(worker: _QueryThread | None) -> NoReturn:
    """Stop the query on Ctrl-C, say so in one line, and exit 130 (a second Ctrl-C: at once)."""
    exit_on_second_interrupt(CANCELLED)
    if worker is not None:
        worker.cancel()
        # Opening the file may wait on another process: stop waiting after a while.
        worker.finished.wait(_CANCEL_GRACE)
    echo(f"\n{CANCELLED}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: after a KeyboardInterrupt raised inside an import, CPython may end the
    # process by SIGINT instead (exit -2, seen here). Nothing is left to write: the query
    # only reads, and the thread either stopped or still waits to open the file.
    os._exit(EXIT_INTERRUPTED)


CANCELLED = "query cancelled"
# Seconds a cancelled query gets to stop before the process exits anyway.
_CANCEL_GRACE = 5.0


class _QueryThread(threading.Thread):
    """Loads the project, opens its database and runs one user query, in a thread of its own."""

    def __init__(
        self,
        project_dir: Path | None,
        query: str,
        *,
        limit: int,
        offset: int,
        attach_specs: Sequence[str],
    ) -> None:
        super().__init__(name="tuneboard-query", daemon=True)
        self.finished = threading.Event()
        self._args = (project_dir, query, limit, offset, attach_specs)
        self._lock = threading.Lock()
        self._job: QueryJob | None = None
        self._cancelled = False
        self._results: list[QueryResult] = []
        self._error: BaseException | None = None

    def run(self) -> None:
        project_dir, query, limit, offset, attach_specs = self._args
        try:
            from tuneboard.store.attach import parse_attachments
            from tuneboard.store.sql import QueryJob

            attach = parse_attachments(attach_specs)
            store = open_store(load_project_from(project_dir), read_only=True)
            job = QueryJob(store, query, limit=limit, offset=offset, attach=attach)
            with self._lock:
                self._job = job
                if self._cancelled:
                    job.cancel()
            job.run()
            self._results = job.results()
        except BaseException as error:  # handed to the main thread
            self._error = error
        finally:
            self.finished.set()

    def cancel(self) -> None:
        """Stop the query (or keep it from starting)."""
        with self._lock:
            self._cancelled = True
            if self._job is not None:
                self._job.cancel()

    def results(self) -> list[QueryResult]:
        """Each statement's result; raises what the thread raised."""
        if self._error is not None:
            raise self._error
        return self._results
