"""The plugin guides' examples work as printed: each is run as a project plugin."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import duckdb
import pytest

from tuneboard import ConfigError
from tuneboard.testing import ThrowawayProject

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins"


def example_module(page: str) -> str:
    """The first Python block of a guide page: its complete example module."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert found, f"no python block in {page}"
    return found.group(1)


def test_the_stage_guide_example_trains(tuneboard_project: ThrowawayProject) -> None:
    plugin = tuneboard_project.root / "plugins" / "smoothing.py"
    plugin.parent.mkdir()
    plugin.write_text(example_module("stage.md"), encoding="utf-8")
    stage = {"plugin": "smoothed_finetune", "epochs": 2, "batch_size": 8, "lr": 3e-3}
    result = tuneboard_project.run({**stage, "smoothing": 0.2}, {"plugin": "evaluate"})
    assert result.status == "completed", result.error
    assert {"train/loss", "val/accuracy", "test/accuracy"} <= set(result.metrics)
    assert any(m.startswith("label smoothing 0.2: ") for m in result.messages())
    assert result.stages[0].best_metric == "val/accuracy"
    with pytest.raises(ConfigError, match=r"smoothed_finetune.*key 'smoothing' must be <= 0.5"):
        tuneboard_project.run({**stage, "smoothing": 2})
    with pytest.raises(ConfigError, match=r"unknown key 'strategy_params'"):
        tuneboard_project.run({**stage, "strategy_params": {"level": 1}})


def test_the_dataset_metric_strategy_guide_example(tuneboard_project: ThrowawayProject) -> None:
    plugin = tuneboard_project.add_plugin_file(write(tuneboard_project, "extras.py"))
    data = tuneboard_project.root / "data"
    for label in ("positive", "negative"):
        rows = (data / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
        texts = [row.split("\t")[0] for row in rows if row.endswith(f"\t{label}")]
        (data / f"{label}.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    dataset = {
        "plugin": "label_files",
        "files": {"positive": "data/positive.txt", "negative": "data/negative.txt"},
    }
    stage = {
        "plugin": "finetune",
        "epochs": 2,
        "batch_size": 8,
        "lr": 3e-3,
        "strategy": "flooding",
        "strategy_params": {"level": 0.05},
    }
    result = tuneboard_project.run(
        stage, {"plugin": "evaluate"}, metrics=["mcc", "accuracy"], dataset=dataset
    )
    assert result.status == "completed", result.error
    assert -1.0 <= result.metrics["test/mcc"] <= 1.0 and "test/accuracy" in result.metrics
    assert result.stages[0].best_metric == "val/mcc"
    mcc = _load(plugin).Mcc()
    assert mcc.compute([0, 1, 0, 1], [0, 1, 0, 1], ["a", "b"]) == {"mcc": 1.0}
    assert mcc.compute([1, 0, 1, 0], [0, 1, 0, 1], ["a", "b"]) == {"mcc": -1.0}
    with pytest.raises(ConfigError, match="key 'level' must be >= 0"):
        tuneboard_project.run({**stage, "strategy_params": {"level": -1}}, dataset=dataset)


def write(project: ThrowawayProject, name: str) -> Path:
    source = project.root.parent / name
    source.write_text(example_module("dataset-metric-strategy.md"), encoding="utf-8")
    return source


def _load(path: Path) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("guide_extras", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_the_executor_guide_example_runs_a_run_in_a_child(
    tuneboard_project: ThrowawayProject,
) -> None:
    root = tuneboard_project.root
    (root / "plugins").mkdir()
    (root / "plugins" / "child.py").write_text(example_module("executor.md"), encoding="utf-8")
    (root / "tuneboard.toml").write_text(
        '[project]\nname = "throwaway"\ndevices = ["cpu"]\nexecutor = "child"\n'
    )
    result = tuneboard_project.run({"plugin": "finetune", "epochs": 1, "batch_size": 8})
    assert result.status == "completed", result.error
    assert "val/accuracy" in result.metrics
    database = duckdb.connect(str(root / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:  # the run's records came back from the child: its device says which executor ran it
        assert database.execute("SELECT device FROM runs").fetchall() == [("child:cpu",)]
    finally:
        database.close()
