"""`tuneboard logs RUN [-f] [--grep TEXT] [--json]`: what a run printed, warned and logged."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import (
    echo,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.store import LogRow

POLL_INTERVAL = 0.5
"""Seconds between reads of the database while following a run."""


@click.command()
@click.argument("run_id")
@project_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--grep", "needle", default="", help="Only lines holding TEXT (any case).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for scripts.")
@friendly_errors
def logs(run_id: str, project_dir: Path | None, follow: bool, needle: str, as_json: bool) -> None:
    """Print a run's log: its prints, Python warnings and logging records (transformers'
    messages too), each with its time, stage and source. An id prefix works.

    With -f, waits for new lines and exits once the run has ended; Ctrl-C stops it (130).
    """
    from tuneboard.store import ACTIVE_STATUSES

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    run_id = store.get_run(run_id).run_id
    seen = printed = 0
    while True:
        # The status first: lines read after it are all the lines of a run that had ended.
        active = follow and store.get_run(run_id).status in ACTIVE_STATUSES
        rows = store.logs(run_id, after=seen)
        seen += len(rows)
        for row in rows:
            if _matches(row, needle):
                _print_row(row, as_json)
                printed += 1
        if not active:
            break
        time.sleep(POLL_INTERVAL)
    store.close()
    if not printed and not as_json:
        what = f"no line of run {run_id}'s log matches {needle!r}" if needle else None
        echo(f"note: {what or f'run {run_id} logged no output'}", err=True)


def _matches(row: LogRow, needle: str) -> bool:
    from tuneboard.ui.logs import log_matches

    return log_matches(row, needle)


def _print_row(row: LogRow, as_json: bool) -> None:
    if as_json:
        # JSON escapes control characters itself.
        click.echo(json.dumps(asdict(row)))
        return
    from tuneboard.ui.logs import log_lines

    prefix, lines = log_lines(row)
    echo(f"{prefix}  {lines[0]}")
    for line in lines[1:]:
        echo(f"    {line}")
