"""`tuneboard show RUN`: one run's status, stages, metrics, generations, events, artifacts and
provenance."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tuneboard.cli.shared import (
    echo,
    friendly_errors,
    load_project_from,
    metric_direction,
    open_store,
    print_run_summary,
    project_option,
)

if TYPE_CHECKING:
    from rich.console import Console

    from tuneboard.store import GenerationRow, StageSpan, StageValues, Store

# How many prompts the generations section shows.
SHOWN_PROMPTS = 3


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
    """Show one run: status, stages, final metrics, generations, events and artifacts.

    Per stage: its steps on the run-wide axis (each stage continues where the one before
    ended), the final and best value of each metric it logged, and the run-wide step of its
    best checkpoint. Generations: a few prompts with their reference and the outputs of the
    first and the latest evaluation. An id prefix works.
    """
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
    generations = store.generations(run_row.run_id)
    spans = store.stage_spans(run_row.run_id)
    values = store.stage_values(run_row.run_id, metric_direction(project))
    if as_json:
        document = {
            "run": asdict(run_row),
            "stages": [asdict(s) for s in stages],
            "metrics": metrics,
            "pipeline": pipeline_document(spans, values),
            "events": [asdict(e) for e in events],
            "artifacts": [asdict(a) for a in artifacts],
            "generations": [asdict(g) for g in generations],
            "provenance": provenance,
        }
        click.echo(json.dumps(document, default=json_default, indent=2))
        return
    _show_run(
        store,
        run_row.run_id,
        events[-event_count:] if event_count else [],
        artifacts,
        metrics,
        generations,
        (spans, values),
        {stage.stage_index: stage.name for stage in stages},
    )
    if provenance:
        from tuneboard.engine.provenance import summary_lines

        echo("reproduce with:")
        for line in summary_lines(provenance):
            echo(f"  {line}")


def _show_run(
    store: Store,
    run_id: str,
    events: Sequence[Any],
    artifacts: Sequence[Any],
    metrics: dict[str, float],
    generations: Sequence[GenerationRow],
    pipeline: tuple[Sequence[StageSpan], Sequence[StageValues]],
    stage_names: Mapping[int, str],
) -> None:
    from rich.console import Console
    from rich.text import Text

    from tuneboard.ui.render import format_time, rich_table
    from tuneboard.ui.safe import safe_text

    console = Console()
    run_row = store.get_run(run_id)
    head = safe_text(run_row.run_id, "bold")
    head.append_text(
        safe_text(f"  experiment {run_row.experiment}  device {run_row.device or '-'}")
    )
    console.print(head)
    console.print(
        f"created {format_time(run_row.created_at)}  started {format_time(run_row.started_at)}  "
        f"finished {format_time(run_row.finished_at)}",
        highlight=False,
    )
    print_run_summary(store, run_id)
    if metrics:
        console.print(
            rich_table(["metric", "last value"], sorted(metrics.items()), title="metrics")
        )
    if pipeline[0]:
        console.print(pipeline_table(*pipeline))
    if generations:
        _show_generations(console, generations, stage_names)
    if artifacts:
        console.print(
            rich_table(
                ["stage", "kind", "path", "bytes", "sha256"],
                [(a.stage_index, a.kind, a.path, a.bytes, a.sha256[:12]) for a in artifacts],
                title="artifacts",
            )
        )
    if events:
        console.print(Text("events", style="bold"))
        for event in events:
            first, *rest = event.message.splitlines() or [""]
            console.print(safe_text(f"  {format_time(event.time)}  {event.level:<7} {first}"))
            if event.level == "error":
                for line in rest[-6:]:
                    console.print(safe_text(f"      {line}"))


def pipeline_document(
    spans: Sequence[StageSpan], values: Sequence[StageValues]
) -> list[dict[str, Any]]:
    """Per stage: its place on the run-wide axes (the `stage_spans` view's columns) and the
    final and best value of each metric it logged (best None for bookkeeping values)."""
    from tuneboard.ui.comparison import bookkeeping, metric_order

    by_index = {stage.stage_index: stage for stage in values}
    document = []
    for span in spans:
        logged = by_index.get(span.stage_index)
        last = logged.last if logged else {}
        best = logged.best if logged else {}
        document.append(
            {
                "stage_index": span.stage_index,
                "name": span.name,
                "plugin": span.plugin,
                "status": span.status,
                "first_step": span.first_step,
                "last_step": span.last_step,
                "first_epoch": span.first_epoch,
                "last_epoch": span.last_epoch,
                "best_metric": span.best_metric,
                "best_run_step": span.best_step,
                "best_value": _number(span.best_value),
                "metrics": {
                    name: {
                        "final": _number(last[name]),
                        "best": None if bookkeeping(name) else _number(best.get(name)),
                    }
                    for name in metric_order(last)
                },
            }
        )
    return document


def _number(value: float | None) -> float | None:
    """A value for JSON: None for NaN (which JSON cannot hold)."""
    return None if value is None or math.isnan(value) else value


def pipeline_table(spans: Sequence[StageSpan], values: Sequence[StageValues]) -> Any:
    """The stages on the run-wide step axis: per stage its steps, then one line per metric
    with its final and best value, and the run-wide step of the stage's best checkpoint on
    the line of the metric it monitored."""
    from tuneboard.ui.render import format_number, rich_table

    rows: list[tuple[Any, ...]] = []
    ends: list[int] = []
    for stage in pipeline_document(spans, values):
        steps = f"{stage['first_step']}–{stage['last_step']}"
        lines = [
            (
                name,
                format_number(pair["final"]),
                format_number(pair["best"]),
                stage["best_run_step"] if name == stage["best_metric"] else None,
            )
            for name, pair in stage["metrics"].items()
        ]
        checkpoint = stage["best_metric"]
        if stage["best_run_step"] is not None and checkpoint not in stage["metrics"]:
            # It kept a best checkpoint by a metric it did not log: still show where.
            best = format_number(stage["best_value"])
            lines.append((checkpoint, "", best, stage["best_run_step"]))
        lines = lines or [("", "", "", None)]
        for number, line in enumerate(lines):
            rows.append((stage["name"], steps, *line) if number == 0 else ("", "", *line))
        ends.append(len(rows) - 1)
    table = rich_table(
        ["stage", "steps", "metric", "final", "best", "best at"],
        rows,
        title="stages on the run-wide step axis",
    )
    for index in ends[:-1]:
        table.rows[index].end_section = True
    return table


def _show_generations(
    console: Console, generations: Sequence[GenerationRow], stage_names: Mapping[int, str]
) -> None:
    """A few prompts: each with its reference and its first and latest outputs, one line each."""
    from rich.cells import cell_len
    from rich.text import Text

    from tuneboard.ui.render import clip
    from tuneboard.ui.safe import safe_text, visible

    by_prompt: dict[tuple[str, int], list[GenerationRow]] = {}
    for row in generations:  # ordered by stage, then step
        by_prompt.setdefault((row.split, row.idx), []).append(row)
    # The prompts watched over the most evaluations first, then in the order they came.
    chosen = sorted(by_prompt, key=lambda key: -len(by_prompt[key]))[:SHOWN_PROMPTS]
    several_stages = len({row.stage_index for row in generations}) > 1

    def label(row: GenerationRow) -> str:
        stage = stage_names.get(row.stage_index, f"stage {row.stage_index}")
        if row.step is None:
            return stage if several_stages else "output"
        return f"{stage} step {row.step}" if several_stages else f"step {row.step}"

    def say(text: str) -> None:
        console.print(safe_text(text), no_wrap=True)

    blocks: list[tuple[str, list[tuple[str, str]]]] = []
    for split, idx in chosen:
        rows = by_prompt[(split, idx)]
        first, last = rows[0], rows[-1]
        lines = [("prompt", last.prompt)]
        reference = next((r.reference for r in reversed(rows) if r.reference is not None), None)
        if reference is not None:
            lines.append(("reference", reference))
        if first is not last:
            lines.append((label(first), first.output))
        lines.append((label(last), last.output))
        blocks.append((f"  {split} #{idx}", lines))
    label_width = max(cell_len(name) for _, lines in blocks for name, _ in lines)

    shown = f"{len(chosen)} of {len(by_prompt)} prompts" if len(by_prompt) > len(chosen) else ""
    console.print(Text("generations", style="bold").append(f" ({shown})" if shown else ""))
    for title, lines in blocks:
        say(title)
        for name, text in lines:
            head = f"    {name:<{label_width}}  "
            say(
                head
                + (clip(visible(text, multiline=True), console.width - cell_len(head)) or "(empty)")
            )
