"""The example plugin, installed, in real runs of a throwaway project (tuneboard's fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneboard.testing import ThrowawayProject, plugin_registry

# A few quick training steps, so that the model has something to be over-confident about.
FINETUNE = {"plugin": "finetune", "epochs": 3, "batch_size": 8, "lr": 3e-3}


def test_the_entry_point_provides_the_stage_and_the_hook() -> None:
    registry = plugin_registry()
    info = registry.provider("stage", "calibrate")
    assert (info.name, info.source, info.distribution) == (
        "example",
        "entry point",
        "tuneboard-example",
    )
    assert "run_finished" in info.hooks
    assert registry.failures == []


def test_calibrate_after_finetune(tuneboard_project: ThrowawayProject) -> None:
    result = tuneboard_project.run(
        FINETUNE, {"plugin": "calibrate"}, {"plugin": "evaluate", "split": "test"}
    )
    assert result.status == "completed", result.error
    assert [s.status for s in result.stages] == ["completed"] * 3
    metrics = result.metrics
    temperature = metrics["calibration/temperature"]
    assert 0.05 <= temperature <= 20
    for split in ("val", "test"):
        for when in ("before", "after"):
            assert 0.0 <= metrics[f"{split}/ece_{when}"] <= 1.0
    # Temperature scaling minimises the NLL of the split it is fitted on.
    assert metrics["val/nll_after"] <= metrics["val/nll_before"] + 1e-6
    report_path = next(a.path for a in result.artifacts if a.kind == "calibration")
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    assert report["temperature"] == pytest.approx(temperature)
    # The temperature was folded into the model: the evaluate stage after it sees the
    # calibrated logits, whose NLL on the test split is the one calibrate computed.
    assert metrics["test/loss"] == pytest.approx(metrics["test/nll_after"], rel=1e-3, abs=1e-4)
    assert any(m.startswith("temperature ") for m in result.messages("info"))


def test_run_finished_writes_a_summary(tuneboard_project: ThrowawayProject) -> None:
    result = tuneboard_project.run({**FINETUNE, "epochs": 1, "max_steps": 2})
    assert result.status == "completed", result.error
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["run_id"] == result.run_id
    assert summary["status"] == "completed" and summary["error"] is None
    assert summary["metrics"]["train/loss"] == pytest.approx(result.metrics["train/loss"])


BROKEN_STAGE = """
from dataclasses import dataclass

from tuneboard import NoParams, Stage, hookimpl


class Broken(Stage[NoParams]):
    name = "broken"

    def run(self, ctx, state):
        raise RuntimeError("nothing works")


@hookimpl
def register_stages(register):
    register(Broken)
"""


def test_a_failed_run_gets_a_summary_too(
    tuneboard_project: ThrowawayProject, tmp_path: Path
) -> None:
    plugin = tmp_path / "broken.py"
    plugin.write_text(BROKEN_STAGE, encoding="utf-8")
    tuneboard_project.add_plugin_file(plugin)
    result = tuneboard_project.run({"plugin": "broken"})
    assert result.status == "failed"
    assert result.error == (
        "stage 0 broken (broken from plugin 'broken'): RuntimeError: nothing works"
    )
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "failed" and summary["error"] == result.error
