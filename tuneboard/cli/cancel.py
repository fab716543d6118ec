"""`tuneboard cancel RUN...`: ask queued or running runs to stop, whichever process runs them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tuneboard.cli.shared import (
    EXIT_RUN_FAILED,
    echo,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@project_option
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until they stop.")
@friendly_errors
def cancel(run_ids: tuple[str, ...], project_dir: Path | None, wait: bool) -> None:
    """Cancel queued or running runs (an id prefix works), whichever process runs them."""
    import time

    from tuneboard.store import ACTIVE_STATUSES

    project = load_project_from(project_dir)
    store = open_store(project)
    asked = []
    for given in run_ids:
        row = store.get_run(given)
        if row.status not in ACTIVE_STATUSES:
            echo(f"run {row.run_id} is already {row.status}")
            continue
        store.request_cancel(row.run_id)
        asked.append(row.run_id)
        echo(f"run {row.run_id}: cancel requested")
    store.flush()
    deadline = time.monotonic() + 120
    while wait and asked and time.monotonic() < deadline:
        time.sleep(0.5)
        asked = [r for r in asked if store.get_run(r).status in ACTIVE_STATUSES]
    for run_id in asked if wait else []:
        echo(f"run {run_id} has not stopped yet (is its process busy or hung?)", err=True)
    store.close()
    sys.exit(EXIT_RUN_FAILED if wait and asked else 0)
