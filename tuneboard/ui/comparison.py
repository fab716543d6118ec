"""Runs compared stage by stage: which stage of each run lines up with which, the rows of an
aligned table of final and best values, and which run is best in each row.

Pure functions over the store's rows (no Textual, no rich): the one rule for `tuneboard
compare` and the app's Compare, so both show the same rows, the same ★ and the same groups.
Stages are lined up with `tuneboard.ui.pipelines.match_stage` (by name, else by plugin, else
a baseline's one training stage).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tuneboard.store import StageValues
from tuneboard.store.schema import is_system_metric
from tuneboard.ui.pipelines import match_stage
from tuneboard.ui.safe import format_value

# Values that record how a run went rather than how good it is: no run is best at them.
BOOKKEEPING = ("lr", "epoch")
# Metrics of a stage in this order of their prefix, then by name; bookkeeping ones last.
_PREFIXES = ("val", "validation", "test", "train")

K = TypeVar("K")


def bookkeeping(name: str) -> bool:
    """Whether a metric is bookkeeping (`train/lr`, `train/epoch`, a speed such as
    `train/samples_per_s`, a system metric such as `sys/gpu_util`): a value no run can be
    better at."""
    if is_system_metric(name):
        return True
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

    @property
    def shown_best(self) -> float | None:
        """The best value where it is worth showing beside the final one: None when there is
        none or it reads the same as the final value once formatted."""
        if self.best is None or format_value(self.best) == format_value(self.final):
            return None
        return self.best


def _renamed(group: str, stages: Iterable[str | None]) -> bool:
    """Whether some run's stage in the group `group` has another name, or none (`evaluate`
    is the group `evaluate #2`'s own name)."""
    return any(
        name is None or (name != group and not group.startswith(f"{name} #")) for name in stages
    )


@dataclass(frozen=True)
class StageGroup:
    """A group of rows of the aligned table: the stage of each run that lines up with the
    stage `name` (None where a run has none), one entry per run."""

    name: str
    matched: tuple[StageValues | None, ...]

    @property
    def stage_names(self) -> tuple[str | None, ...]:
        """The name of each run's stage in the group (None where the run has none)."""
        return tuple(None if stage is None else stage.name for stage in self.matched)

    @property
    def renamed(self) -> bool:
        """Whether some run's stage in the group has another name than the group's, or none
        (a table then says which stage of each run the rows are)."""
        return _renamed(self.name, self.stage_names)

    @property
    def metrics(self) -> list[str]:
        """The metrics any of the group's stages logged, in `metric_order`."""
        return metric_order(
            metric for stage in self.matched if stage is not None for metric in stage.last
        )


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
        return _renamed(self.stage, self.stages)

    @property
    def label(self) -> str:
        """`warmup · val/accuracy`."""
        return f"{self.stage} · {self.metric}"


def groups_by_name(runs: Sequence[Sequence[StageValues]]) -> list[StageGroup]:
    """Each stage of the runs (in pipeline order) with each run's stage that lines up with it
    (`match_stage`: a single-stage baseline's training stage lines up with each training
    stage of a pipeline).

    A name a pipeline uses twice (two `evaluate` stages) lines up by occurrence: the second
    `evaluate` of one run with the second of another, shown as `evaluate #2`. With several
    runs, a group is left out when it would only repeat what other groups show: one run's
    stage that another group already shows (a baseline's own stage, lined up with the
    pipeline's), or the very stages of an earlier group (two baselines whose one stages are
    named differently).
    """
    keyed: list[dict[tuple[str, int], StageValues]] = []
    for stages in runs:
        seen: dict[str, int] = {}
        by_key = {}
        for stage in stages:
            seen[stage.name] = seen.get(stage.name, 0) + 1
            by_key[(stage.name, seen[stage.name])] = stage
        keyed.append(by_key)
    order = _merged_order([list(by_key) for by_key in keyed])
    groups: list[StageGroup] = []
    for name, count in order:
        if count == 1:
            matched = tuple(match_stage(stages, name) for stages in runs)
            groups.append(StageGroup(name, matched))
        else:
            matched = tuple(by_key.get((name, count)) for by_key in keyed)
            groups.append(StageGroup(f"{name} #{count}", matched))
    if len(runs) < 2:
        return groups

    def shown_elsewhere(group: StageGroup, run: int, stage: StageValues) -> bool:
        return any(other is not group and other.matched[run] is stage for other in groups)

    kept: list[StageGroup] = []
    for group in groups:
        present = [(i, stage) for i, stage in enumerate(group.matched) if stage is not None]
        if len(present) == 1 and shown_elsewhere(group, *present[0]):
            continue
        if any(_same_stages(group, earlier) for earlier in kept):
            continue
        kept.append(group)
    return kept


def _merged_order(sequences: Sequence[Sequence[K]]) -> list[K]:
    """The keys of all the sequences in one order that keeps each sequence's own order where
    they agree: a key new to the merge goes just before the next key of its sequence already
    there (else at the end), so a baseline's `evaluate` listed first still comes after a
    pipeline's `warmup` and `full`."""
    merged: list[K] = []
    for keys in sequences:
        at = 0
        for i, key in enumerate(keys):
            if key in merged:
                at = max(at, merged.index(key) + 1)
                continue
            later = [merged.index(k) for k in keys[i + 1 :] if k in merged]
            at = next((j for j in later if j >= at), len(merged))
            merged.insert(at, key)
            at += 1
    return merged


def _same_stages(group: StageGroup, other: StageGroup) -> bool:
    """Whether two groups line up the very same stage of every run."""
    return all(a is b for a, b in zip(group.matched, other.matched, strict=True))


def group_matching(runs: Sequence[Sequence[StageValues]], wanted: str) -> StageGroup:
    """The stage of each run that lines up with the stage named `wanted` (`match_stage`)."""
    return StageGroup(wanted, tuple(match_stage(stages, wanted) for stages in runs))


def stage_groups(runs: Sequence[Sequence[StageValues]], stage: str | None) -> list[StageGroup]:
    """The groups of the aligned table: each run's stage that lines up with `stage` when one
    is chosen, else `groups_by_name` over the whole runs."""
    return groups_by_name(runs) if stage is None else [group_matching(runs, stage)]


def aligned_rows(
    groups: Sequence[StageGroup],
    higher_is_better: Callable[[str], bool],
    metrics: Sequence[str] | None = None,
) -> list[AlignedRow]:
    """The rows of the aligned table: per group, each metric one of its stages logged (in
    `metric_order`; only `metrics`, in that order, when given), with each run's final and
    best value and the runs best at it."""
    rows = []
    for group in groups:
        logged = group.metrics
        wanted = [m for m in metrics if m in logged] if metrics else logged
        for metric in wanted:
            keeps_score = not bookkeeping(metric)
            cells = tuple(
                None
                if stage is None or metric not in stage.last
                else Cell(stage.last[metric], stage.best.get(metric) if keeps_score else None)
                for stage in group.matched
            )
            higher = higher_is_better(metric) if keeps_score else None
            best_runs = (
                best_positions([c.best if c else None for c in cells], higher)
                if higher is not None
                else ()
            )
            rows.append(AlignedRow(group.name, metric, higher, group.stage_names, cells, best_runs))
    return rows
