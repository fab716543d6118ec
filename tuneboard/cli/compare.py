"""`tuneboard compare RUN RUN ...`: runs side by side, stage by stage: the final (best) value
of each metric, the best run of each row marked."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tuneboard.cli.shared import (
    echo,
    friendly_errors,
    load_project_from,
    metric_direction,
    open_store,
    project_option,
)
from tuneboard.sdk.errors import TuneboardError

if TYPE_CHECKING:
    from tuneboard.store import RunRow, StageValues, Store
    from tuneboard.ui.comparison import AlignedRow, Cell

# The mark of the best run in a row.
BEST = "★"
# The narrowest the metric column gets (its labels wrap) to keep runs side by side.
LABEL_MIN = 16


@click.command()
@click.argument("run_ids", nargs=-1, metavar="RUN RUN ...")
@project_option
@click.option(
    "--stage",
    metavar="NAME",
    default=None,
    help="Compare each run's stage that lines up with this one: the stage of that name, "
    "else the only stage of that plugin, else a baseline's one training stage.",
)
@click.option(
    "--metric",
    "-m",
    "metrics",
    metavar="NAME",
    multiple=True,
    help="Only this metric, such as val/accuracy (repeatable; rows in this order).",
)
@click.option("--json", "as_json", is_flag=True, help="The table as one JSON document.")
@friendly_errors
def compare(
    run_ids: tuple[str, ...],
    project_dir: Path | None,
    stage: str | None,
    metrics: tuple[str, ...],
    as_json: bool,
) -> None:
    """Compare runs stage by stage: the final value of each metric, with its best in
    brackets when it differs, and the best run of each row marked ★.

    A stage lines up with the stage of the same name in another run, else with its only
    stage of that plugin, else with a single-stage baseline's training stage. Without
    --stage, the rows go stage by stage over the whole runs (`warmup · val/accuracy`); with
    --stage NAME, only each run's stage that lines up with NAME is compared. Id prefixes
    work.
    """
    import json

    from tuneboard.ui.comparison import StageGroup, aligned_rows, group_matching, groups_by_name
    from tuneboard.ui.render import json_default

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    runs = _resolve(store, run_ids)
    direction = metric_direction(project)
    values = [store.stage_values(run.run_id, direction) for run in runs]
    unmatched: list[RunRow] = []
    matched: Sequence[StageValues | None] = []
    if stage is None:
        groups = groups_by_name(values)
    else:
        matched = group_matching(values, stage).matched
        if not any(matched):
            raise TuneboardError(f"no run has a stage that lines up with {stage!r}")
        unmatched = [run for run, found in zip(runs, matched, strict=True) if found is None]
        runs = [run for run, found in zip(runs, matched, strict=True) if found is not None]
        groups = [StageGroup(stage, tuple(found for found in matched if found is not None))]
    rows = aligned_rows(groups, direction, metrics or None)
    shown = {row.metric for row in rows}
    for metric in metrics:
        if metric not in shown:
            where = f" in the stages lined up with {stage!r}" if stage else ""
            raise TuneboardError(f"no compared run logged metric {metric!r}{where}")
    compared = [found for found in matched if found is not None]
    if as_json:
        document = _document(runs, compared, unmatched, stage, rows)
        click.echo(json.dumps(document, default=json_default, indent=2))
    else:
        _print_table(runs, compared, stage, rows)
    if unmatched:
        missing = ", ".join(f"{run.run_id} ({run.experiment})" for run in unmatched)
        echo(f"note: no stage lines up with {stage!r} in {missing}", err=True)


def _resolve(store: Store, run_ids: Sequence[str]) -> list[RunRow]:
    """The runs named (ids or prefixes), each once; at least two."""
    runs: dict[str, RunRow] = {}
    for key in run_ids:
        run = store.get_run(key)
        runs.setdefault(run.run_id, run)
    if len(runs) < 2:
        if not run_ids:
            raise TuneboardError("compare needs at least two runs")
        named = " ".join(repr(key) for key in run_ids)
        raise TuneboardError(f"compare needs two different runs, not only {named}")
    return list(runs.values())


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _document(
    runs: Sequence[RunRow],
    compared: Sequence[StageValues],
    unmatched: Sequence[RunRow],
    stage: str | None,
    rows: Sequence[AlignedRow],
) -> dict[str, Any]:
    """The comparison for scripts: runs, unmatched runs and rows keyed by run id."""
    return {
        "stage": stage,
        "runs": [
            {
                "run_id": run.run_id,
                "experiment": run.experiment,
                "status": run.status,
                "stage": compared[index].name if compared else None,
            }
            for index, run in enumerate(runs)
        ],
        "unmatched": [{"run_id": run.run_id, "experiment": run.experiment} for run in unmatched],
        "rows": [
            {
                "stage": row.stage,
                "metric": row.metric,
                "higher_is_better": row.higher_is_better,
                "stages": {run.run_id: name for run, name in zip(runs, row.stages, strict=True)},
                "values": {
                    run.run_id: None
                    if cell is None
                    else {"final": _number(cell.final), "best": _number(cell.best)}
                    for run, cell in zip(runs, row.cells, strict=True)
                },
                "best_runs": [runs[index].run_id for index in row.best_runs],
            }
            for row in rows
        ],
    }


def _cell(cell: Cell | None, best: bool) -> str:
    """`0.76 (0.78) ★`: the final value, the best when it differs, the mark."""
    from tuneboard.ui.render import format_number

    if cell is None:
        return "-"
    text = format_number(cell.final)
    if cell.shown_best is not None:
        text += f" ({format_number(cell.shown_best)})"
    return f"{text} {BEST}" if best else text


def _print_table(
    runs: Sequence[RunRow],
    compared: Sequence[StageValues],
    stage: str | None,
    rows: Sequence[AlignedRow],
) -> None:
    """The aligned table: a column per run (its whole id, never cut), split into several
    tables of the same rows when the runs do not fit the terminal's width side by side."""
    from rich.cells import cell_len
    from rich.console import Console

    from tuneboard.ui.render import rich_table
    from tuneboard.ui.safe import visible

    console = Console()
    title = "final (best) of each metric, ★ the best run"
    if stage is not None:
        title = f"stage {stage}: {title}"
    if not rows:
        echo("the runs logged no metrics to compare")
        return
    head = [["experiment", *(run.experiment for run in runs)]]
    if stage is not None:
        head.append(["stage", *(found.name for found in compared)])
    body = _body(rows, whole_run=stage is None)
    labels = [line[0] for _, line, _ in body]
    # The metric column wraps down to LABEL_MIN cells before runs go to a table of their own.
    label_width = min(LABEL_MIN, max(cell_len(visible(text)) for text in ["metric", *labels]))
    room = console.width - (label_width + 3) - 1
    texts = [line for _, line, _ in body]
    widths = [
        max(cell_len(visible(text)) for text in [run.run_id, *(line[i + 1] for line in texts)])
        for i, run in enumerate(runs)
    ]
    for chunk in _chunks(widths, room):
        columns = ["metric", *(runs[i].run_id for i in chunk)]
        # A table of some of the runs leaves out the lines none of them has a value in.
        kept = [(row, line) for row, line, has in body if any(has[i] for i in chunk)]
        picked = [*head, *(line for _, line in kept)]
        lines = [[line[0], *(line[i + 1] for i in chunk)] for line in picked]
        table = rich_table(columns, lines, title=title)
        ends = [len(head) - 1, *_stage_ends([row for row, _ in kept], len(head))]
        for index in ends:
            table.rows[index].end_section = True
        for index, column in enumerate(table.columns):
            column.overflow = "fold"  # a long id or name wraps, never cut short
            if index:  # never narrower than the id, unless the terminal is narrower
                column.min_width = min(cell_len(runs[chunk[index - 1]].run_id), room - 3)
        console.print(table)


def _body(
    rows: Sequence[AlignedRow], *, whole_run: bool
) -> list[tuple[AlignedRow, list[str], tuple[bool, ...]]]:
    """The table's lines: (row, cells, which runs have a value in it).

    Over whole runs, each line is labelled `stage · metric`, and a group of stages lined up
    under another name (a baseline's one stage under the pipeline's `warmup`) opens with a
    `warmup · stage` line naming each run's stage.
    """
    body = []
    for index, row in enumerate(rows):
        if whole_run and row.renamed and (index == 0 or rows[index - 1].stage != row.stage):
            names = [name or "-" for name in row.stages]
            present = tuple(name is not None for name in row.stages)
            body.append((row, [f"{row.stage} · stage", *names], present))
        cells = [_cell(cell, i in row.best_runs) for i, cell in enumerate(row.cells)]
        present = tuple(cell is not None for cell in row.cells)
        body.append((row, [row.label if whole_run else row.metric, *cells], present))
    return body


def _stage_ends(rows: Sequence[AlignedRow], offset: int) -> list[int]:
    """The table rows (after `offset` rows of heading) that end a stage's rows."""
    return [
        offset + index
        for index, (row, after) in enumerate(itertools.pairwise(rows))
        if row.stage != after.stage
    ]


def _chunks(widths: Sequence[int], room: int) -> list[list[int]]:
    """The run columns (by position) in groups that fit side by side in `room` cells; one
    column per group at least."""
    chunks: list[list[int]] = [[]]
    used = 0
    for index, width in enumerate(widths):
        if chunks[-1] and used + width + 3 > room:
            chunks.append([])
            used = 0
        chunks[-1].append(index)
        used += width + 3
    return chunks
