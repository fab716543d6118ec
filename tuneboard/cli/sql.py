"""`tuneboard sql QUERY`: a read-only SQL query over the project's database."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from tuneboard.cli.shared import (
    EXIT_INTERRUPTED,
    echo,
    emit,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)


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
@friendly_errors
def sql(
    query: str,
    project_dir: Path | None,
    fmt: str,
    limit: int,
    offset: int,
    attach_specs: tuple[str, ...],
) -> None:
    """Run a read-only SQL QUERY over the project's database ('-' reads it from stdin).

    Tables: runs, stages, metrics, events, artifacts, generations (see docs/sql.md); those
    of an attached database as ALIAS.runs and so on.
    """
    import time

    from tuneboard.sdk.errors import QueryError
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
    try:
        while not job.done:
            time.sleep(0.05)
    except KeyboardInterrupt:
        job.cancel()
        with contextlib.suppress(QueryError):
            job.result(timeout=10)
        echo("\nquery cancelled", err=True)
        sys.exit(EXIT_INTERRUPTED)
    result = job.result()
    emit(result.columns, result.rows, fmt)
    if fmt == "table":
        page = f"rows {offset + 1}-{offset + limit}" if offset else f"first {limit}"
        more = f" ({page}; use --limit or --offset for more)" if result.truncated else ""
        echo(f"{len(result.rows)} rows{more} in {result.elapsed * 1000:.0f} ms", err=True)
