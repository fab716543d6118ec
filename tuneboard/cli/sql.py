"""`tuneboard sql QUERY`: a read-only SQL query over the project's database."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    echo,
    emit,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.store.sql import QueryJob


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
    import time

    from tuneboard.store.attach import parse_attachments
    from tuneboard.store.sql import start_query

    attach = parse_attachments(attach_specs)
    if query == "-":
        query = sys.stdin.read()
    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    # In a thread, so that Ctrl-C reaches this thread (DuckDB would turn it into a bare
    # RuntimeError) and the query is cancelled cleanly.
    job = start_query(store, query, limit=limit, offset=offset, attach=attach)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not job.done:
            if deadline is not None and time.monotonic() >= deadline:
                _stop(job)
                click.secho(
                    f"error: the query ran longer than {timeout:g} s (--timeout) and was stopped",
                    fg="red",
                    err=True,
                )
                sys.exit(EXIT_RUN_FAILED)
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(job)
        echo("\nquery cancelled", err=True)
        sys.exit(EXIT_INTERRUPTED)
    for number, result in enumerate(job.results()):
        if number and fmt != "json":
            echo("")
        emit(result.columns, result.rows, fmt)
        if fmt == "table":
            page = f"rows {offset + 1}-{offset + limit}" if offset else f"first {limit}"
            more = f" ({page}; use --limit or --offset for more)" if result.truncated else ""
            rows = f"{len(result.rows)} rows{more} in {result.elapsed * 1000:.0f} ms"
            echo(rows, err=True)


def _stop(job: QueryJob) -> None:
    """Cancel the query and wait a little for it to stop (it is a daemon thread)."""
    from tuneboard.sdk.errors import QueryError

    job.cancel()
    with contextlib.suppress(QueryError):
        job.result(timeout=10)
