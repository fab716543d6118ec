"""`tuneboard resume RUN`: continue a cancelled, failed or interrupted run where it stopped."""

from __future__ import annotations

from pathlib import Path

import click

from tuneboard.cli.shared import (
    echo,
    follow_run,
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
    from tuneboard.cli.progress import ProgressObserver
    from tuneboard.engine.engine import Engine
    from tuneboard.plugins import load_plugins

    project = load_project_from(project_dir)
    registry = load_plugins(project.root)
    observer = ProgressObserver(enabled=not quiet)
    store = open_store(project)
    engine = Engine(project, store, registry, observer=observer)

    def start() -> str:
        plan = engine.resume(run_id)
        echo(f"run {plan.run_id}: resuming from {plan.describe()}")
        return plan.run_id

    follow_run(engine, store, observer, start)
