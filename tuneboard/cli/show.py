"""`tuneboard show RUN`: one run's status, stages, metrics, events, artifacts and provenance."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tuneboard.cli.shared import (
    friendly_errors,
    load_project_from,
    open_store,
    print_run_summary,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.store import Store


@click.command()
@click.argument("run_id")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON document.")
@click.option(
    "--events",
    "event_count",
    type=int,
    default=15,
    show_default=True,
    help="How many recent events to show.",
)
@friendly_errors
def show(run_id: str, project_dir: Path | None, as_json: bool, event_count: int) -> None:
    """Show one run: status, stages, final metrics, events and artifacts (an id prefix works)."""
    from dataclasses import asdict

    from tuneboard.ui.render import json_default

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    run_row = store.get_run(run_id)
    stages = store.stages(run_row.run_id)
    metrics = store.last_metrics(run_row.run_id)
    events = store.events(run_row.run_id)
    artifacts = store.artifacts(run_row.run_id)
    provenance = store.provenance(run_row.run_id)
    if as_json:
        document = {
            "run": asdict(run_row),
            "stages": [asdict(s) for s in stages],
            "metrics": metrics,
            "events": [asdict(e) for e in events],
            "artifacts": [asdict(a) for a in artifacts],
            "provenance": provenance,
        }
        click.echo(json.dumps(document, default=json_default, indent=2))
        return
    _show_run(
        store, run_row.run_id, events[-event_count:] if event_count else [], artifacts, metrics
    )
    if provenance:
        from tuneboard.engine.provenance import summary_lines

        click.echo("reproduce with:")
        for line in summary_lines(provenance):
            click.echo(f"  {line}")


def _show_run(
    store: Store,
    run_id: str,
    events: Sequence[Any],
    artifacts: Sequence[Any],
    metrics: dict[str, float],
) -> None:
    from rich.console import Console

    from tuneboard.ui.render import format_time, rich_table

    console = Console()
    run_row = store.get_run(run_id)
    console.print(
        f"[bold]{run_row.run_id}[/]  experiment {run_row.experiment}  "
        f"device {run_row.device or '-'}"
    )
    console.print(
        f"created {format_time(run_row.created_at)}  started {format_time(run_row.started_at)}  "
        f"finished {format_time(run_row.finished_at)}"
    )
    print_run_summary(store, run_id)
    if metrics:
        console.print(
            rich_table(["metric", "last value"], sorted(metrics.items()), title="metrics")
        )
    if artifacts:
        console.print(
            rich_table(
                ["stage", "kind", "path", "bytes", "sha256"],
                [(a.stage_index, a.kind, a.path, a.bytes, a.sha256[:12]) for a in artifacts],
                title="artifacts",
            )
        )
    if events:
        console.print("[bold]events[/]")
        for event in events:
            first, *rest = event.message.splitlines() or [""]
            console.print(
                f"  {format_time(event.time)}  {event.level:<7} {first}",
                markup=False,
                highlight=False,
            )
            if event.level == "error":
                for line in rest[-6:]:
                    console.print(f"      {line}", markup=False, highlight=False)
