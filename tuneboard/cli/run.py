"""`tuneboard run EXPERIMENT`: run an experiment (or its sweep) and wait for it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import (
    echo,
    follow_run,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.config import Project


@click.command()
@click.argument("experiment")
@project_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a value of the experiment, e.g. --set stages.1.lr=3e-5 (repeatable).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; only the summary.")
@click.option(
    "--no-sweep", is_flag=True, help="Run the experiment once, without its [sweep] table."
)
@click.option(
    "--executor",
    "executor_name",
    metavar="NAME",
    default=None,
    help='Where to run: "local" or an executor plugin such as "ray" (default: the project\'s).',
)
@click.option(
    "--address",
    metavar="URL",
    default=None,
    help="The executor's address, e.g. a Ray cluster's http://HOST:8265.",
)
@click.option(
    "--executor-set",
    "executor_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a key of the executor, e.g. --executor-set gpus_per_run=1 (repeatable).",
)
@friendly_errors
def run(
    experiment: str,
    project_dir: Path | None,
    overrides: tuple[str, ...],
    quiet: bool,
    no_sweep: bool,
    executor_name: str | None,
    address: str | None,
    executor_settings: tuple[str, ...],
) -> None:
    """Run EXPERIMENT from tuneboard.toml and wait for it; exit 0 only if it completed.

    An experiment with a [experiments.NAME.sweep] table runs every run of its sweep (--set
    applies to each) and prints a table of them; exit 0 only if none failed.
    """
    from tuneboard.cli.progress import ProgressObserver
    from tuneboard.config.sweeps import has_sweep
    from tuneboard.engine.engine import Engine
    from tuneboard.engine.executors import build_executor
    from tuneboard.engine.runner import prepare_run
    from tuneboard.plugins import load_plugins

    project = load_project_from(project_dir)
    registry = load_plugins(project.root)
    project = _with_executor_options(project, executor_name, address, executor_settings)
    executor = build_executor(project, registry)  # checks its settings before anything runs
    if not no_sweep and has_sweep(project, experiment, overrides):
        from tuneboard.cli.run_sweep import run_sweep

        sys.exit(run_sweep(project, registry, experiment, overrides, quiet=quiet))
    config = project.experiment(experiment, registry, overrides)
    # Everything that can fail on bad input happens before the database is touched.
    prepared = prepare_run(project, config, registry)
    observer = ProgressObserver(enabled=not quiet)
    store = open_store(project)
    engine = Engine(project, store, registry, observer=observer, executor=executor)

    def start() -> str:
        run_id = engine.launch(prepared)
        echo(f"run {run_id}: experiment {experiment!r} ({len(config.stages)} stages)")
        return run_id

    follow_run(engine, store, observer, start)


def _with_executor_options(
    project: Project, name: str | None, address: str | None, settings: Sequence[str]
) -> Project:
    """The project with `run`'s --executor, --address and --executor-set options applied."""
    import dataclasses

    from tuneboard.config import parse_executor_settings

    table = parse_executor_settings(settings)
    if address is not None:
        table["address"] = address
    return dataclasses.replace(project, executor=project.executor.override(name, table))
