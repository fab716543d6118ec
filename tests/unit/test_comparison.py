"""The aligned table's rows: stages lined up by name (by occurrence when a name repeats) or by
`match_stage`, final and best values, and which run is best in a row."""

from __future__ import annotations

import math

from tuneboard.store import StageValues
from tuneboard.ui.comparison import (
    Cell,
    StageGroup,
    aligned_rows,
    best_positions,
    bookkeeping,
    group_matching,
    groups_by_name,
    metric_order,
    stage_groups,
)


def stage(
    index: int, name: str, plugin: str, last: dict[str, float], best: dict[str, float]
) -> StageValues:
    return StageValues(index, name, plugin, last, best)


def higher(name: str) -> bool:
    return not name.endswith("loss")


PIPELINE = [
    stage(0, "warmup", "finetune", {"train/loss": 0.6, "val/accuracy": 0.63}, {"train/loss": 0.5, "val/accuracy": 0.63}),
    stage(1, "full", "finetune", {"train/lr": 0.0, "val/accuracy": 0.84}, {"train/lr": 5e-5, "val/accuracy": 0.86}),
    stage(2, "evaluate", "evaluate", {"test/accuracy": 0.85}, {"test/accuracy": 0.85}),
]  # fmt: skip
BASELINE = [
    stage(0, "single_step", "single_step", {"train/loss": 0.69, "train/lr": 5e-5, "val/accuracy": 0.55}, {"train/loss": 0.69, "train/lr": 5e-5, "val/accuracy": 0.55}),
    stage(1, "evaluate", "evaluate", {"test/accuracy": 0.52}, {"test/accuracy": 0.52}),
]  # fmt: skip


def test_bookkeeping_values_are_the_learning_rate_epoch_and_speeds() -> None:
    assert bookkeeping("train/lr") and bookkeeping("train/epoch") and bookkeeping("lr")
    assert bookkeeping("train/samples_per_s") and bookkeeping("train/tokens_per_s")
    assert not bookkeeping("val/accuracy") and not bookkeeping("train/loss")
    assert not bookkeeping("val/recall")  # ends with "l", not "/lr"
    assert not bookkeeping("test/epochs_seen")  # a measure, not the epoch


def test_metrics_read_validation_test_train_then_bookkeeping() -> None:
    names = ["train/lr", "train/loss", "test/f1", "val/loss", "augment/added", "val/accuracy"]
    assert metric_order(names) == [
        "val/accuracy",
        "val/loss",
        "test/f1",
        "train/loss",
        "augment/added",
        "train/lr",
    ]


def test_best_positions_mark_nothing_for_ties_or_a_lone_value() -> None:
    assert best_positions([0.5, 0.8, None], higher_is_better=True) == (1,)
    assert best_positions([0.5, 0.8, 0.2], higher_is_better=False) == (2,)
    assert best_positions([0.8, 0.8, 0.5], higher_is_better=True) == (0, 1)
    assert best_positions([0.8, 0.8], higher_is_better=True) == ()
    assert best_positions([0.8, None, math.nan], higher_is_better=True) == ()


def names(groups: list[StageGroup]) -> list[str]:
    return [group.name for group in groups]


def matched(groups: list[StageGroup], name: str) -> tuple[StageValues | None, ...]:
    return next(group.matched for group in groups if group.name == name)


def test_stages_line_up_by_name_in_pipeline_order() -> None:
    groups = groups_by_name([PIPELINE, BASELINE])
    # The baseline's one stage lines up with each training stage of the pipeline, and has
    # no group of its own.
    assert names(groups) == ["warmup", "full", "evaluate"]
    assert matched(groups, "warmup") == (PIPELINE[0], BASELINE[0])
    assert matched(groups, "full") == (PIPELINE[1], BASELINE[0])
    assert matched(groups, "evaluate") == (PIPELINE[2], BASELINE[1])
    assert groups[1].stage_names == ("full", "single_step")
    assert groups[1].renamed and not groups[2].renamed
    assert groups[1].metrics == ["val/accuracy", "train/loss", "train/lr"]


def test_the_groups_keep_pipeline_order_whichever_run_comes_first() -> None:
    # The baseline first: its `evaluate` still comes after the pipeline's training stages.
    groups = groups_by_name([BASELINE, PIPELINE])
    assert names(groups) == ["warmup", "full", "evaluate"]
    assert matched(groups, "evaluate") == (BASELINE[1], PIPELINE[2])
    assert matched(groups, "full") == (BASELINE[0], PIPELINE[1])
    export = [*PIPELINE, stage(3, "export", "export", {}, {})]
    assert names(groups_by_name([BASELINE, export])) == ["warmup", "full", "evaluate", "export"]


def test_a_stage_only_one_run_has_keeps_its_group() -> None:
    renamed = [
        stage(0, "head", "finetune", {"train/loss": 0.4}, {}),
        stage(1, "all", "finetune", {"train/loss": 0.2}, {}),
    ]
    groups = groups_by_name([PIPELINE, renamed])
    assert names(groups) == ["warmup", "full", "evaluate", "head", "all"]
    assert matched(groups, "warmup") == (PIPELINE[0], None)  # two training stages: no match
    assert matched(groups, "head") == (None, renamed[0])
    assert groups[0].renamed  # a run with no such stage
    assert groups_by_name([BASELINE]) == [
        StageGroup("single_step", (BASELINE[0],)),
        StageGroup("evaluate", (BASELINE[1],)),
    ]


def test_two_baselines_with_differently_named_stages_show_them_once() -> None:
    other = [
        stage(0, "finetune", "finetune", {"train/loss": 0.5}, {"train/loss": 0.5}),
        stage(1, "evaluate", "evaluate", {"test/accuracy": 0.5}, {"test/accuracy": 0.5}),
    ]
    groups = groups_by_name([BASELINE, other])
    # `finetune` would line up the very same two stages as `single_step`: left out.
    assert names(groups) == ["single_step", "evaluate"]
    assert matched(groups, "single_step") == (BASELINE[0], other[0])


def test_a_repeated_stage_name_lines_up_by_occurrence() -> None:
    twice = [
        stage(0, "evaluate", "evaluate", {"val/accuracy": 0.7}, {}),
        stage(1, "evaluate", "evaluate", {"test/accuracy": 0.8}, {}),
    ]
    groups = groups_by_name([twice, BASELINE])
    # The baseline's `single_step` comes before its `evaluate`, as in its pipeline.
    assert names(groups) == ["single_step", "evaluate", "evaluate #2"]
    assert matched(groups, "evaluate") == (twice[0], BASELINE[1])
    assert matched(groups, "evaluate #2") == (twice[1], None)
    assert matched(groups, "single_step") == (None, BASELINE[0])
    both = groups_by_name([twice, twice[::-1]])
    # Each run's second `evaluate` under `evaluate #2`, which is no renaming.
    assert matched(both, "evaluate #2") == (twice[1], twice[0])
    assert not any(group.renamed for group in both)


def test_a_chosen_stage_gives_each_run_its_matching_stage_only() -> None:
    assert stage_groups([PIPELINE, BASELINE], "full") == [
        StageGroup("full", (PIPELINE[1], BASELINE[0]))
    ]
    # A stage only the baseline has by name: the pipeline has two training stages, no match.
    chosen = stage_groups([PIPELINE, BASELINE], "single_step")
    assert [(g.name, g.matched) for g in chosen] == [("single_step", (None, BASELINE[0]))]
    assert stage_groups([PIPELINE, BASELINE], None) == groups_by_name([PIPELINE, BASELINE])


def test_a_best_value_shows_only_when_it_reads_differently() -> None:
    assert Cell(0.84, 0.86).shown_best == 0.86
    assert Cell(0.86, 0.86000001).shown_best is None  # both read 0.86
    assert Cell(5e-5, None).shown_best is None


def test_rows_hold_final_and_best_and_mark_the_best_run() -> None:
    rows = aligned_rows([group_matching([PIPELINE, BASELINE], "full")], higher)
    by_metric = {row.metric: row for row in rows}
    assert [row.metric for row in rows] == ["val/accuracy", "train/loss", "train/lr"]
    accuracy = by_metric["val/accuracy"]
    assert accuracy.label == "full · val/accuracy"
    assert accuracy.stages == ("full", "single_step") and accuracy.renamed
    assert accuracy.cells == (Cell(0.84, 0.86), Cell(0.55, 0.55))
    assert accuracy.best_runs == (0,) and accuracy.higher_is_better is True
    lr = by_metric["train/lr"]
    assert lr.cells == (Cell(0.0, None), Cell(5e-5, None)) and lr.best_runs == ()
    assert lr.higher_is_better is None


def test_lower_is_better_and_missing_values() -> None:
    rows = aligned_rows(groups_by_name([PIPELINE, BASELINE]), higher)
    loss = next(r for r in rows if r.label == "warmup · train/loss")
    assert loss.cells == (Cell(0.6, 0.5), Cell(0.69, 0.69))
    assert loss.best_runs == (0,)  # 0.5 beats 0.69: lower is better
    lr = next(r for r in rows if r.label == "full · train/lr")
    assert lr.cells == (Cell(0.0, None), Cell(5e-5, None))
    test = next(r for r in rows if r.label == "evaluate · test/accuracy")
    assert test.best_runs == (0,) and not test.renamed
    alone = aligned_rows(groups_by_name([[*PIPELINE, stage(3, "extra", "x", {"x/y": 1.0}, {})], BASELINE]), higher)  # fmt: skip
    extra = next(r for r in alone if r.label == "extra · x/y")
    assert extra.cells == (Cell(1.0, None), None) and extra.best_runs == ()


def test_only_the_metrics_asked_for_in_that_order() -> None:
    groups = groups_by_name([PIPELINE, BASELINE])
    rows = aligned_rows(groups, higher, ["test/accuracy", "train/loss"])
    assert [row.label for row in rows] == [
        "warmup · train/loss",
        "full · train/loss",
        "evaluate · test/accuracy",
    ]
