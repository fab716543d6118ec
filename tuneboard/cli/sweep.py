"""`tuneboard sweep show SWEEP_ID`: a sweep's trials in order, their values and objective, the
best marked. (Running a sweep is `tuneboard run EXPERIMENT`: see `run_sweep.py`.)"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tuneboard.cli.shared import (
    echo,
    emit,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.ui.sweeps import SweepTrials

BEST = "◆"


@click.group()
def sweep() -> None:
    """Look at sweeps (their runs share a sweep id; `tuneboard run` starts one)."""


@sweep.command("show")
@click.argument("sweep_id")
@project_option
@format_option
@friendly_errors
def show(sweep_id: str, project_dir: Path | None, fmt: str) -> None:
    """Show a sweep's trials in launch order: run, status, the values the sweep chose and
    the objective (the best value of the sweep's metric each run logged), the best marked.

    Any part of the sweep id works (the runs list shows `sweep 075300-a3f9`).
    """
    from tuneboard.ui.sweeps import load_sweep, sweep_table

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    found = store.find_sweep(sweep_id)
    trials = load_sweep(
        store,
        found,
        lambda name: sweep_table(project.experiment_tables, name),
        _direction_of(project),
    )
    store.close()
    if fmt == "table":
        _print_table(trials)
        return
    best = trials.best
    columns = ["trial", "run_id", "status", "pruned", *trials.params, "objective", "best"]
    rows = [
        [
            t.number,
            t.run_id,
            t.status,
            t.pruned,
            *(t.values.get(key) for key in trials.params),
            t.objective,
            t is best,
        ]
        for t in trials.trials
    ]
    emit(columns, rows, fmt)


def _direction_of(project: Project) -> Any:
    """A metric's direction, loading the plugins only when a sweep does not record it."""
    registry: list[Any] = []

    def higher_is_better(metric: str) -> bool:
        from tuneboard.engine.context import metric_higher_is_better
        from tuneboard.plugins import load_plugins

        if not registry:
            registry.append(load_plugins(project.root))
        return metric_higher_is_better(metric, registry[0])

    return higher_is_better


def _print_table(trials: SweepTrials) -> None:
    from rich import box
    from rich.console import Console

    from tuneboard.ui.render import format_number, rich_table, status_text
    from tuneboard.ui.sweeps import param_labels, value_text

    objective = trials.objective
    labels = param_labels(trials.params)
    best = trials.best
    columns = ["trial", "run", "status", *(labels[k] for k in trials.params)]
    columns.append(objective.metric)
    rows = [
        [
            f"{BEST} {t.number}" if t is best else f"  {t.number}",
            t.run_id,
            "× pruned" if t.pruned else status_text(t.status),
            *(value_text(t.values[key]) if key in t.values else "" for key in trials.params),
            t.objective,
        ]
        for t in trials.trials
    ]
    method = f" ({trials.method})" if trials.method else ""
    title = (
        f"sweep {trials.sweep_id}{method} of {trials.experiment}: {trials.counts()}; "
        f"objective {objective.metric} {objective.arrow}"
    )
    table = rich_table(columns, rows, title=title)
    # Ids are what one copies: no column lines, so a table of two parameters fits 80
    # columns, and other columns wrap first on a narrower terminal.
    table.box = box.SIMPLE_HEAD
    table.show_edge = table.pad_edge = False
    table.columns[1].min_width = max((len(t.run_id) for t in trials.trials), default=3)
    Console().print(table)
    if best is None or best.objective is None:
        echo(f"no trial has completed with a value of {objective.metric} yet")
        return
    values = ", ".join(
        f"{labels[key]}={value_text(best.values[key])}"
        for key in trials.params
        if key in best.values
    )
    detail = f" ({values})" if values else ""
    echo(
        f"{BEST} best: trial {best.number}, run {best.run_id}{detail}: "
        f"{objective.metric} {format_number(best.objective)}"
    )
