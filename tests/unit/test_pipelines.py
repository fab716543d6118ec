"""Stages of different runs lined up: by name, by plugin, or a baseline's one training stage."""

from __future__ import annotations

from pathlib import Path

from tuneboard.store import StageValues, Store
from tuneboard.ui.pipelines import match_stage, stage_names, trained


def stage(index: int, name: str, plugin: str, *metrics: str) -> StageValues:
    return StageValues(index, name, plugin, dict.fromkeys(metrics, 1.0), {})


PIPELINE = [
    stage(0, "warmup", "finetune", "train/loss", "val/accuracy"),
    stage(1, "full", "finetune", "train/loss", "val/accuracy"),
    stage(2, "evaluate", "evaluate", "test/accuracy"),
]
BASELINE = [
    stage(0, "single_step", "single_step", "train/loss"),
    stage(1, "evaluate", "evaluate", "test/accuracy"),
]


def test_a_stage_matches_by_name_first() -> None:
    assert match_stage(PIPELINE, "full") is PIPELINE[1]
    assert match_stage(BASELINE, "evaluate") is BASELINE[1]


def test_a_unique_plugin_matches_when_no_name_does() -> None:
    assert match_stage(PIPELINE, "evaluate") is PIPELINE[2]
    renamed = [stage(0, "test", "evaluate", "test/accuracy")]
    assert match_stage(renamed, "evaluate") is renamed[0]
    # Two finetune stages: the plugin alone does not say which.
    assert match_stage(PIPELINE, "finetune") is None


def test_a_baseline_lines_up_its_one_training_stage() -> None:
    assert match_stage(BASELINE, "full") is BASELINE[0]
    assert match_stage(BASELINE, "warmup") is BASELINE[0]
    assert trained(BASELINE[0]) and not trained(BASELINE[1])


def test_stage_names_keep_pipeline_order() -> None:
    assert stage_names([PIPELINE, BASELINE]) == ["warmup", "full", "evaluate", "single_step"]


def test_stage_values_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    store.create_run("r", "exp", {})
    store.stage_started("r", 0, name="warmup", plugin="finetune", params={})
    store.log_metrics("r", 0, 1, {"train/loss": 0.9, "val/accuracy": 0.6})
    store.log_metrics("r", 0, 2, {"train/loss": 0.7, "val/accuracy": 0.5})
    store.stage_started("r", 1, name="full", plugin="finetune", params={})
    store.log_metrics("r", 1, 1, {"val/accuracy": 0.8})
    store.log_metrics("r", 1, 2, {"val/accuracy": float("nan")})
    store.flush()
    values = store.stage_values("r", lambda name: name.endswith("accuracy"))
    assert [(v.stage_index, v.name, v.plugin) for v in values] == [
        (0, "warmup", "finetune"),
        (1, "full", "finetune"),
    ]
    assert values[0].last == {"train/loss": 0.7, "val/accuracy": 0.5}
    assert values[0].best == {"train/loss": 0.7, "val/accuracy": 0.6}
    assert values[1].best == {"val/accuracy": 0.8}
    assert store.stage_values("nobody", lambda name: True) == []
    store.close()
