"""Compare's chart, aligned by stage: its x axes and where the stage boundaries of several
runs are drawn. Pure functions, no Textual.

Which stage of each run lines up with which, and the rows of the metrics table, are
`tuneboard.ui.comparison`'s, shared with `tuneboard compare`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from tuneboard.store import StageSpan
from tuneboard.tui.widgets.chart import Boundary

Axis = Literal["step", "epoch", "time"]
"""The compare chart's x axis: steps, epochs or seconds, run-wide or within the chosen stage."""

AXES: tuple[Axis, ...] = ("step", "epoch", "time")


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
