"""`tuneboard runs`: list the project's runs, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from tuneboard.cli.shared import (
    emit,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)


@click.command()
@project_option
@format_option
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="How many runs.")
@click.option("--experiment", "-e", default=None, help="Only runs of this experiment.")
@click.option("--status", "-s", default=None, help="Only runs with this status.")
@friendly_errors
def runs(
    project_dir: Path | None, fmt: str, limit: int, experiment: str | None, status: str | None
) -> None:
    """List runs, newest first."""
    import time

    from tuneboard.ui.render import elapsed, format_duration, format_time, iso_time, status_text

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    now = time.time()
    columns = [
        "run_id",
        "experiment",
        "status",
        "device",
        "started",
        "duration",
        "headline",
        "value",
    ]
    rows: list[Sequence[Any]] = []
    for r in store.list_runs(limit=limit, experiment=experiment, status=status):
        end = r.finished_at or (now if r.status == "running" else None)
        duration = elapsed(r.started_at, end)
        if fmt == "table":
            status_cell = status_text(r.status)
            if r.status == "running" and r.current_stage:
                status_cell += f" {r.current_stage} {100 * (r.progress or 0):.0f}%"
            row: Sequence[Any] = (
                r.run_id,
                r.experiment,
                status_cell,
                r.device,
                format_time(r.started_at),
                format_duration(duration),
            )
        else:
            row = (r.run_id, r.experiment, r.status, r.device, iso_time(r.started_at), duration)
        rows.append((*row, r.headline, r.headline_value))
    emit(columns, rows, fmt, title=f"runs of {project.name}")
