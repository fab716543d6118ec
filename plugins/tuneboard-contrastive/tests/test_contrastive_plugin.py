"""The plugin, installed, in real runs of a throwaway project (tuneboard's fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from tuneboard import ConfigError
from tuneboard.testing import ThrowawayProject, plugin_registry

# A few quick steps on the tiny data; log every step so that train/loss is always there.
QUICK: dict[str, Any] = {"epochs": 2, "batch_size": 8, "lr": 3e-3, "log_every": 1}


def test_the_entry_point_provides_the_stage_and_the_strategy() -> None:
    registry = plugin_registry()
    for kind, name in (("stage", "contrastive"), ("strategy", "supcon")):
        info = registry.provider(kind, name)
        assert (info.name, info.source, info.distribution) == (
            "contrastive",
            "entry point",
            "tuneboard-contrastive",
        )
    assert registry.failures == []


def test_contrastive_trains_measures_and_hands_the_best_model_on(
    tuneboard_project: ThrowawayProject,
) -> None:
    result = tuneboard_project.run(
        {"plugin": "contrastive", **QUICK, "temperature": 0.5, "lam": 0.5},
        {"plugin": "evaluate", "split": "test"},
    )
    assert result.status == "completed", result.error
    metrics = result.metrics
    for name in ("train/loss", "val/accuracy", "val/centroid_accuracy", "test/accuracy"):
        assert name in metrics, sorted(metrics)
    assert 0.0 <= metrics["val/centroid_accuracy"] <= 1.0
    assert any(m.startswith("val/centroid_accuracy ") for m in result.messages("info"))
    assert [s.status for s in result.stages] == ["completed", "completed"]
    # fit kept the best checkpoint by val/accuracy and handed it on to evaluate.
    assert result.stages[0].best_metric == "val/accuracy"
    assert any(a.kind == "checkpoint" for a in result.artifacts)


def test_supcon_from_a_plain_finetune_stage(tuneboard_project: ThrowawayProject) -> None:
    def train_loss(stage: dict[str, Any]) -> float:
        result = tuneboard_project.run({"plugin": "finetune", **QUICK, "max_steps": 3, **stage})
        assert result.status == "completed", result.error
        return result.metrics["train/loss"]

    standard = train_loss({})
    # lam = 0 is plain cross-entropy: the same run, step for step, as the standard strategy.
    supcon_off = train_loss({"strategy": "supcon", "strategy_params": {"lam": 0.0}})
    mixed = train_loss({"strategy": "supcon", "strategy_params": {"lam": 0.5}})
    assert supcon_off == pytest.approx(standard, rel=1e-5)
    assert mixed != pytest.approx(standard, rel=1e-3)


@pytest.mark.parametrize(
    ("stage", "key"),
    [
        ({"plugin": "contrastive", "temperature": 0}, "temperature"),
        ({"plugin": "contrastive", "lam": 1.5}, "lam"),
        ({"plugin": "contrastive", "pooling": "max"}, "pooling"),
        ({"plugin": "contrastive", "strategy": "fgm"}, "strategy"),
        ({"plugin": "finetune", "strategy": "supcon", "strategy_params": {"lam": -1}}, "lam"),
        ({"plugin": "finetune", "strategy": "supcon", "strategy_params": {"tau": 1}}, "tau"),
    ],
)
def test_bad_parameters_name_the_key(
    tuneboard_project: ThrowawayProject, stage: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        tuneboard_project.run(stage)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{key!r}" in message, message
