"""Short names for runs in a chart's legend: pure functions, no Textual."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuneboard.tui.configs import config_differences


def short_id(run_id: str) -> str:
    """The part of a run id that tells runs of one day apart: `20260101-120000-aaaa` ->
    `aaaa` (an id of another shape is kept whole)."""
    tail = run_id.rsplit("-", 1)[-1]
    return tail if tail != run_id and tail else run_id


def run_labels(runs: Sequence[tuple[str, str, Mapping[str, Any]]]) -> dict[str, str]:
    """A legend label for each `(run_id, experiment, config)`, keyed by run id.

    Runs of one experiment whose configs differ only by their seed are `seed N`; otherwise a
    run is `experiment short-id`. A label two runs would share is the full run id instead.
    """
    if not runs:
        return {}
    experiments = {experiment for _, experiment, _ in runs}
    differences = config_differences([config for _, _, config in runs])
    if len(runs) > 1 and len(experiments) == 1 and [key for key, _ in differences] == ["seed"]:
        seeds = differences[0][1]
        labels = {run_id: f"seed {seed}" for (run_id, _, _), seed in zip(runs, seeds, strict=True)}
    else:
        labels = {run_id: f"{experiment} {short_id(run_id)}" for run_id, experiment, _ in runs}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {run_id: label if counts[label] == 1 else run_id for run_id, label in labels.items()}
