"""Compare's pure parts: which run is best at a value, the per-stage table's groups, and the
stage boundaries of several runs on one chart."""

from __future__ import annotations

from tuneboard.store import StageSpan, StageValues
from tuneboard.tui.alignment import chart_boundaries, short_names, stage_groups, stage_starts
from tuneboard.tui.metrics import is_bookkeeping, winners
from tuneboard.tui.widgets.chart import Boundary


def stage(index: int, name: str, plugin: str, **last: float) -> StageValues:
    values = {key.replace("__", "/"): value for key, value in last.items()}
    return StageValues(index, name, plugin, values, dict(values))


def span(index: int, name: str, first: int, last: int, epochs: float = 0.0) -> StageSpan:
    return StageSpan(
        index, name, "p", "completed", first, last, epochs, epochs, None, None, None, None
    )


PIPELINE = [
    stage(0, "warmup", "finetune", train__loss=0.4, val__accuracy=0.63),
    stage(1, "full", "finetune", train__loss=0.3, val__accuracy=0.86),
    stage(2, "evaluate", "evaluate", test__accuracy=0.84),
]
BASELINE = [
    stage(0, "single_step", "single_step", train__loss=0.69, val__accuracy=0.55),
    stage(1, "evaluate", "evaluate", test__accuracy=0.58),
]


def test_winners_mark_the_best_and_nothing_on_a_tie_or_a_lone_value() -> None:
    assert winners([0.5, 0.8, None], higher_is_better=True) == {1}
    assert winners([0.5, 0.8, 0.5], higher_is_better=False) == {0, 2}
    assert winners([0.001, 0.001], higher_is_better=True) == set()
    assert winners([0.7, None, float("nan")], higher_is_better=True) == set()


def test_bookkeeping_values_are_learning_rates_epochs_and_speeds() -> None:
    assert all(map(is_bookkeeping, ["train/lr", "train/epoch", "train/samples_per_s", "lr"]))
    assert not any(map(is_bookkeeping, ["train/loss", "val/accuracy", "test/epochs_seen"]))


def test_stage_groups_line_a_baseline_up_with_each_pipeline_stage_once() -> None:
    groups = stage_groups([PIPELINE, BASELINE], None)
    # single_step would only repeat what warmup and full show: left out.
    assert [group.name for group in groups] == ["warmup", "full", "evaluate"]
    assert [s.name if s else None for s in groups[1].matched] == ["full", "single_step"]
    assert groups[1].metrics == ("train/loss", "val/accuracy")
    assert groups[1].renamed and not groups[2].renamed
    chosen = stage_groups([PIPELINE, BASELINE], "single_step")
    assert [(g.name, g.matched[0]) for g in chosen] == [("single_step", None)]
    assert stage_groups([PIPELINE], None)[0].matched == (PIPELINE[0],)


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
