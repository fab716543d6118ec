"""`tuneboard resume RUN`: continue a cancelled, failed or interrupted run where it stopped."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tuneboard.cli import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    _print_run_summary,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)


@click.command()
@click.argument("run_id")
@project_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; only the summary.")
@friendly_errors
def resume(run_id: str, project_dir: Path | None, quiet: bool) -> None:
    """Continue RUN (an id prefix works) from its last checkpoint and wait for it.

    Stages that completed are skipped; the stage that stopped goes on from its last resume
    checkpoint (written at each evaluation), or starts over when it has none. The run keeps
    its id and its metric series go on. Exit 0 only if it completed.
    """
    from tuneboard.cli_progress import ProgressObserver
    from tuneboard.engine.engine import Engine
    from tuneboard.plugins import load_plugins

    project = load_project_from(project_dir)
    registry = load_plugins(project.root)
    observer = ProgressObserver(enabled=not quiet)
    store = open_store(project)
    engine = Engine(project, store, registry, observer=observer)
    try:
        plan = engine.resume(run_id)
    except BaseException:
        engine.shutdown(cancel=True)
        store.close()
        raise
    click.echo(f"run {plan.run_id}: resuming from {plan.describe()}")
    try:
        with observer:
            while not engine.wait([plan.run_id], timeout=0.25):
                pass
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cancelling the run…", err=True)
        engine.shutdown(cancel=True)
        store.close()
        sys.exit(EXIT_INTERRUPTED)
    engine.shutdown(cancel=False)
    status = _print_run_summary(store, plan.run_id)
    store.close()
    sys.exit(0 if status == "completed" else EXIT_RUN_FAILED)
