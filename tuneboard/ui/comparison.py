"""Runs compared stage by stage: the rows of an aligned table of final and best values, and
which run is best in each row.

Pure functions over the store's rows (no Textual, no rich), shared by the CLI and the app.
Stages are lined up with `tuneboard.ui.pipelines` (by name, or `match_stage`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tuneboard.store import StageValues
from tuneboard.ui.pipelines import match_stage

# Values that record how a run went rather than how good it is: no run is best at them.
# The same rule as the app's Compare (`tuneboard.tui.metrics.is_bookkeeping`).
BOOKKEEPING = ("lr", "epoch")
# Metrics of a stage in this order of their prefix, then by name; bookkeeping ones last.
_PREFIXES = ("val", "validation", "test", "train")

# A stage's column: the stage of each run that lines up with it (None where none does).
StageGroup = tuple[str, Sequence[StageValues | None]]


def bookkeeping(name: str) -> bool:
    """Whether a metric is bookkeeping (`train/lr`, `train/epoch`, a speed such as
    `train/samples_per_s`): a value no run can be better at."""
    family = name.split("/", 1)[1] if "/" in name else name
    return family in BOOKKEEPING or family.endswith("_per_s")


def metric_order(names: Iterable[str]) -> list[str]:
    """Metric names in reading order: validation, test, train, others; bookkeeping last."""

    def key(name: str) -> tuple[bool, int, str]:
        prefix = name.split("/", 1)[0] if "/" in name else ""
        rank = _PREFIXES.index(prefix) if prefix in _PREFIXES else len(_PREFIXES)
        return (bookkeeping(name), rank, name)

    return sorted(set(names), key=key)


def best_positions(values: Sequence[float | None], higher_is_better: bool) -> tuple[int, ...]:
    """The positions holding the best value (None and NaN ignored): empty when fewer than
    two values are there to compare, or when they all tie."""
    present = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if len(present) < 2:
        return ()
    best = (max if higher_is_better else min)(v for _, v in present)
    winners = tuple(i for i, v in present if v == best)
    return () if len(winners) == len(present) else winners


@dataclass(frozen=True)
class Cell:
    """One run's values in a row: the last logged and the best (None for bookkeeping)."""

    final: float | None
    best: float | None


@dataclass(frozen=True)
class AlignedRow:
    """One metric of one stage across the compared runs.

    `stage` names the group of stages lined up; `stages` holds the name of each run's stage
    in it (None where the run has none). `cells` has one entry per run, None where the run
    has no value; `best_runs` are the positions of the runs best at it (empty for
    bookkeeping values and ties); `higher_is_better` is None for bookkeeping values.
    """

    stage: str
    metric: str
    higher_is_better: bool | None
    stages: tuple[str | None, ...]
    cells: tuple[Cell | None, ...]
    best_runs: tuple[int, ...]

    @property
    def renamed(self) -> bool:
        """Whether some run's stage in the row has another name than the row's, or none."""
        names = set(self.stages)
        if None in names or len(names) > 1:
            return True
        (name,) = names
        return name != self.stage and not self.stage.startswith(f"{name} #")

    @property
    def label(self) -> str:
        """`warmup · val/accuracy`."""
        return f"{self.stage} · {self.metric}"


def groups_by_name(runs: Sequence[Sequence[StageValues]]) -> list[StageGroup]:
    """Each stage of the runs (in pipeline order) with each run's stage that lines up with it
    (`match_stage`: a single-stage baseline's training stage lines up with each training
    stage of a pipeline).

    A name a pipeline uses twice (two `evaluate` stages) lines up by occurrence: the second
    `evaluate` of one run with the second of another, shown as `evaluate #2`. A group that
    would only repeat, for a single run, a stage already shown in another group (a baseline's
    own stage, lined up with the pipeline's) is left out.
    """
    keyed: list[dict[tuple[str, int], StageValues]] = []
    order: dict[tuple[str, int], None] = {}
    for stages in runs:
        seen: dict[str, int] = {}
        by_key = {}
        for stage in stages:
            seen[stage.name] = seen.get(stage.name, 0) + 1
            by_key[(stage.name, seen[stage.name])] = stage
        keyed.append(by_key)
        order.update(dict.fromkeys(by_key))
    groups: list[StageGroup] = []
    for name, count in order:
        if count == 1:
            matched = [match_stage(stages, name) for stages in runs]
        else:
            matched = [by_key.get((name, count)) for by_key in keyed]
        groups.append((name if count == 1 else f"{name} #{count}", matched))

    def repeats(group: StageGroup) -> bool:
        present = [(i, s) for i, s in enumerate(group[1]) if s is not None]
        return (
            len(runs) > 1
            and len(present) == 1
            and all(
                any(other is not group and other[1][i] is stage for other in groups)
                for i, stage in present
            )
        )

    return [group for group in groups if not repeats(group)]


def group_matching(runs: Sequence[Sequence[StageValues]], wanted: str) -> StageGroup:
    """The stage of each run that lines up with the stage named `wanted` (`match_stage`)."""
    return (wanted, [match_stage(stages, wanted) for stages in runs])


def aligned_rows(
    groups: Sequence[StageGroup],
    higher_is_better: Callable[[str], bool],
    metrics: Sequence[str] | None = None,
) -> list[AlignedRow]:
    """The rows of the aligned table: per group, each metric one of its stages logged (only
    `metrics`, in that order, when given), with each run's final and best value."""
    rows = []
    for name, stages in groups:
        logged = {metric for stage in stages if stage is not None for metric in stage.last}
        wanted = [m for m in metrics if m in logged] if metrics else metric_order(logged)
        for metric in wanted:
            keeps_score = not bookkeeping(metric)
            cells = tuple(
                None
                if stage is None or metric not in stage.last
                else Cell(stage.last[metric], stage.best.get(metric) if keeps_score else None)
                for stage in stages
            )
            higher = higher_is_better(metric) if keeps_score else None
            best_runs = (
                best_positions([c.best if c else None for c in cells], higher)
                if higher is not None
                else ()
            )
            names = tuple(None if stage is None else stage.name for stage in stages)
            rows.append(AlignedRow(name, metric, higher, names, cells, best_runs))
    return rows
