"""The `prompt-classification` task end to end through the real engine and database:
zero-shot and few-shot evaluation, fine-tuning, and `predict` refusing it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tuneboard import ConfigError
from tuneboard.config import load_project
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins
from tuneboard.store import Store
from tuneboard.testing import TINY_TOKENIZER, RunResult, ThrowawayProject

TINY_GPT2 = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 256}


class PromptProject(ThrowawayProject):
    """The throwaway project's data, run with a tiny random GPT-2 and a prompt-classification
    task table."""

    def __init__(self, root: Path, task: Mapping[str, Any]) -> None:
        super().__init__(root)
        self.task = dict(task)

    def classify(self, *stages: Mapping[str, Any], **options: Any) -> RunResult:
        """`run` with this project's task and model."""
        model = {"tokenizer": TINY_TOKENIZER, "config": TINY_GPT2}
        return self.run(*stages, task=self.task, model=model, **options)


def project(folder: Path, **task: Any) -> PromptProject:
    return PromptProject(folder, {"plugin": "prompt-classification", **task})


def test_zero_and_few_shot_evaluation_give_metrics(tmp_path: Path) -> None:
    zero = project(tmp_path).classify({"plugin": "evaluate"}, metrics=["accuracy", "f1_macro"])
    assert zero.status == "completed", zero.error
    assert 0.0 <= zero.metrics["test/accuracy"] <= 1.0
    assert 0.0 <= zero.metrics["test/f1_macro"] <= 1.0
    assert math.isfinite(zero.metrics["test/loss"]) and zero.metrics["test/loss"] > 0

    few = project(tmp_path / "few", shots=4, shot_separator=" | ").classify(
        {"plugin": "evaluate", "split": "validation"}, max_length=96
    )
    assert few.status == "completed", few.error
    assert 0.0 <= few.metrics["val/accuracy"] <= 1.0
    # Four shots in the prompt: the model reads other tokens, so the gold words' loss moves.
    assert few.metrics["val/loss"] != zero.metrics["test/loss"]


def test_fine_tuning_learns_the_label_words(tmp_path: Path) -> None:
    finetune = {
        "plugin": "finetune",
        "epochs": 10,
        "lr": 5e-3,
        "batch_size": 8,
        "warmup_ratio": 0.0,
        "scheduler": "constant",
    }
    words = project(tmp_path, label_words={"positive": "good", "negative": "bad"})
    result = words.classify(finetune, {"plugin": "evaluate"})
    assert result.status == "completed", result.error
    assert result.metrics["test/accuracy"] >= 0.9  # chance is 0.5 (the test split is balanced)
    assert result.metrics["test/loss"] < 3.0  # untrained: about ln(30522 tokens) = 10.3
    assert "val/accuracy" in result.metrics  # the finetune stage evaluated through the task
    store = Store(load_project(words.root).database)
    try:
        rows = store.generations(result.run_id, split="test")
    finally:
        store.close()
    assert len(rows) == 16  # the evaluate stage: every test text, its predicted and gold word
    assert all(row.output in ("good", "bad") for row in rows)
    assert sum(row.output == row.reference for row in rows) / 16 == result.metrics["test/accuracy"]
    assert rows[0].prompt.startswith("Review: ") and rows[0].prompt.endswith("\nSentiment:")


def test_predict_refuses_the_task(tmp_path: Path) -> None:
    result = project(tmp_path).classify({"plugin": "predict"})
    assert result.status == "failed"
    assert result.error is not None and "use the `evaluate` stage" in result.error


def test_bad_task_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"template 'Sentiment:' has no \{text\} placeholder"):
        project(tmp_path / "a", template="Sentiment:").classify({"plugin": "evaluate"})
    result = project(tmp_path / "b", label_words={"neutral": "meh"}).classify(
        {"plugin": "evaluate"}
    )
    assert result.status == "failed"
    assert "label_words names labels the data does not have: neutral" in (result.error or "")


def test_the_docs_example_validates_and_its_data_loads(sentiment_project: Path) -> None:
    page = (Path(__file__).parents[2] / "docs" / "prompt-classification.md").read_text("utf-8")
    [block] = [b for b in page.split("```toml\n")[1:] if b.startswith("# Zero-shot, few-shot")]
    toml = '[project]\nname = "sentiment"\n' + block.split("```")[0]
    # The page's Qwen is not on this machine, and `prepare_run` checks the model: a tiny
    # random GPT-2 stands in, the rest of the example as it is.
    assert toml.count('model = "Qwen/Qwen2.5-0.5B"') == 3
    config = ", ".join(f"{key} = {value!r}" for key, value in TINY_GPT2.items())
    tiny = f'model = {{ tokenizer = "{TINY_TOKENIZER}", config = {{ {config} }} }}'
    toml = toml.replace('model = "Qwen/Qwen2.5-0.5B"', tiny.replace("'", '"'))
    (sentiment_project / "tuneboard.toml").write_text(toml, encoding="utf-8")
    loaded = load_project(sentiment_project)
    registry = load_plugins(loaded.root)
    shots = {}
    for name in ("zeroshot", "fewshot", "tuned"):
        experiment = loaded.experiment(name, registry)
        prepared = prepare_run(loaded, experiment, registry)  # reads the data, checks the model
        assert prepared.labels == ["negative", "positive"]
        assert experiment.task == "prompt-classification"
        shots[name] = experiment.task_params.shots
    assert shots == {"zeroshot": 0, "fewshot": 4, "tuned": 0}
