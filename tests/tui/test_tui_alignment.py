"""Compare's chart: the stage boundaries of several runs on one chart (which stages line up,
and which run is best, are `tuneboard.ui.comparison`'s: tests/unit/test_comparison.py)."""

from __future__ import annotations

from tuneboard.store import StageSpan
from tuneboard.tui.alignment import chart_boundaries, short_names, stage_starts
from tuneboard.tui.widgets.chart import Boundary


def span(index: int, name: str, first: int, last: int, epochs: float = 0.0) -> StageSpan:
    return StageSpan(
        index, name, "p", "completed", first, last, epochs, epochs, None, None, None, None
    )


def test_stage_starts_skip_the_first_stage_and_stages_that_take_no_room() -> None:
    spans = [span(0, "warmup", 0, 40), span(1, "full", 40, 100), span(2, "evaluate", 100, 100)]
    assert stage_starts(spans, "step") == [(40.0, "full")]
    assert stage_starts(spans, "time", {0: 2.0, 1: 43.0, 2: 104.0}) == [(43.0, "full")]
    assert stage_starts(spans, "time") == []


def test_boundaries_shared_by_every_run_are_labelled_once_others_with_the_run() -> None:
    starts = {
        "20260101-a-1111": [(40.0, "full"), (60.0, "extra")],
        "20260101-b-2222": [(40.0, "full")],
    }
    assert chart_boundaries(starts) == (
        Boundary(40.0, "full"),
        Boundary(60.0, "extra·1111"),
    )
    assert chart_boundaries({"x": [(40.0, "full")]}) == (Boundary(40.0, "full"),)
    assert short_names(["a-1", "b-1"]) == {"a-1": "a-1", "b-1": "b-1"}
