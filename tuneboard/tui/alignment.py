"""Compare aligned by stage: which stage of each run a row of the metrics table shows, and
where the stage boundaries of several runs are drawn. Pure functions, no Textual.

Stages line up by `tuneboard.ui.pipelines.match_stage` (by name, else by plugin, else a
baseline's one training stage), the rule `tuneboard compare` uses too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tuneboard.store import StageSpan, StageValues
from tuneboard.tui.widgets.chart import Boundary
from tuneboard.ui.pipelines import match_stage, stage_names

Axis = Literal["step", "epoch", "time"]
"""The compare chart's x axis: steps, epochs or seconds, run-wide or within the chosen stage."""

AXES: tuple[Axis, ...] = ("step", "epoch", "time")


@dataclass(frozen=True)
class StageGroup:
    """Rows of the metrics table for one stage name: the stage of each run that lines up with
    it (None where a run has none) and the metrics any of them logged, sorted."""

    name: str
    matched: tuple[StageValues | None, ...]
    metrics: tuple[str, ...]

    @property
    def renamed(self) -> bool:
        """Whether some run shows a stage of another name, or none (the table then says which
        stage of each run the rows are)."""
        return any(stage is None or stage.name != self.name for stage in self.matched)


def stage_groups(runs: Sequence[Sequence[StageValues]], stage: str | None) -> list[StageGroup]:
    """The table's groups of rows: for the chosen `stage` only, else one per stage name in
    pipeline order.

    Over the whole run, a group that would only repeat a stage already shown under another
    name (a baseline's one stage, lined up with each stage of a pipeline) is left out.
    """
    names = [stage] if stage is not None else stage_names(runs)
    groups: list[StageGroup] = []
    for name in names:
        matched = tuple(match_stage(stages, name) for stages in runs)
        metrics = sorted({metric for found in matched if found for metric in found.last})
        if metrics:
            groups.append(StageGroup(name, matched, tuple(metrics)))
    if stage is not None:
        return groups
    kept: list[StageGroup] = []
    for group in groups:
        present = [(i, s.stage_index) for i, s in enumerate(group.matched) if s is not None]
        repeated = all(
            any(other is not group and _index(other.matched[i]) == stage_index for other in groups)
            for i, stage_index in present
        )
        if len(present) < 2 and len(runs) > 1 and repeated:
            continue
        kept.append(group)
    return kept


def _index(stage: StageValues | None) -> int | None:
    return None if stage is None else stage.stage_index


def stage_starts(
    spans: Sequence[StageSpan], axis: Axis, started: Mapping[int, float] | None = None
) -> list[tuple[float, str]]:
    """Where a run's stages start on its run-wide axis, as (x, stage name): each stage that
    takes room, after the first one (a stage that takes none starts where the next does).

    On the time axis, `started` gives each stage's start in seconds since the run started.
    """
    starts: list[tuple[float, str]] = []
    roomy = [span for span in spans if span.steps > 0]
    for span in roomy[1:]:
        if axis == "step":
            x: float | None = float(span.first_step)
        elif axis == "epoch":
            x = span.first_epoch
        else:
            x = (started or {}).get(span.stage_index)
        if x is not None:
            starts.append((x, span.name))
    return starts


def short_names(run_ids: Sequence[str]) -> dict[str, str]:
    """A short name per run for chart labels: the part after the id's last `-` (the random
    suffix of a generated id) when that tells the runs apart, else the whole id."""
    tails = {run_id: run_id.rsplit("-", 1)[-1] for run_id in run_ids}
    if len(set(tails.values())) == len(tails) and all(tails.values()):
        return tails
    return {run_id: run_id for run_id in run_ids}


def chart_boundaries(starts: Mapping[str, Sequence[tuple[float, str]]]) -> tuple[Boundary, ...]:
    """The boundaries of several runs on one chart: a stage start that every run shares is
    drawn once with the stage name; one that only some runs have is labelled with the
    stage name and the run's short name (`full·a1b2`)."""
    if len(starts) <= 1:
        return tuple(Boundary(x, name) for run in starts.values() for x, name in run)
    shared = Counter(start for run in starts.values() for start in set(run))
    short = short_names(list(starts))
    boundaries: dict[tuple[float, str], None] = {}
    for run_id, run in starts.items():
        for x, name in run:
            label = name if shared[(x, name)] == len(starts) else f"{name}·{short[run_id]}"
            boundaries[(x, label)] = None
    return tuple(Boundary(x, label) for x, label in sorted(boundaries))
