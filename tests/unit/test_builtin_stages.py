"""The built-in stages run for real on a tiny BERT: finetune, single_step, evaluate, export."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tuneboard import TrainParams
from tuneboard.builtin.evaluate import Evaluate, EvaluateParams
from tuneboard.builtin.export import Export, ExportParams
from tuneboard.builtin.finetune import Finetune
from tuneboard.builtin.single_step import SingleStep, SingleStepParams
from tuneboard.builtin.stages import register_stages
from tuneboard.builtin.strategies import (
    BUILTIN_STRATEGIES,
    StandardStrategy,
    register_strategies,
)
from tuneboard.sdk.contracts import PipelineState, Stage
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def run_stage(
    cls: type[Stage[Any]], ctx: RecordingContext, state: PipelineState, **values: Any
) -> PipelineState:
    params = build_params(cls.Params, values, f"test ({cls.name})")
    return cls(params).run(ctx, state)


def test_registration_and_every_parameter_has_help() -> None:
    stages: list[type] = []
    register_stages(stages.append)
    assert [s.name for s in stages] == [
        "finetune",
        "single_step",
        "evaluate",
        "export",
        "mlm",
        "augment",
        "predict",
        "distill",
        "feedback",
        "preference",
        "repeat",
        "generate",
        "clm",
    ]
    for stage in stages:
        assert stage.description
        assert all(spec.help for spec in describe_params(stage.Params)), stage.name
    strategies: list[type] = []
    register_strategies(strategies.append)
    assert strategies == list(BUILTIN_STRATEGIES) and strategies[0] is StandardStrategy


def test_finetune_defaults() -> None:
    params = TrainParams()
    assert (params.epochs, params.batch_size, params.lr, params.scheduler) == (
        3,
        16,
        5e-5,
        "linear",
    )
    assert params.lora_targets == [] and params.dropout is None
    assert params.strategy == "standard" and params.strategy_params == {}
    assert SingleStepParams().lr == 5e-5
    assert EvaluateParams().split == "test"
    assert ExportParams().folder == "export"


def test_registration_modules_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import tuneboard.builtin.stages, tuneboard.builtin.datasets\n"
        "import tuneboard.builtin.metrics, tuneboard.builtin.strategies\n"
        "import tuneboard.engine.data, tuneboard.engine.models\n"
        "heavy = ('torch', 'transformers', 'peft', 'numpy')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_finetune_stage_trains_and_hands_on_the_best(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    state = run_stage(
        Finetune,
        ctx,
        state,
        epochs=6,
        batch_size=8,
        lr=5e-3,
        dropout=0.0,
        patience=3,
        monitor="val/loss",
    )
    losses = [v for _, v in ctx.series("train/loss")]
    assert losses[-1] < losses[0]
    assert ctx.best is not None and ctx.best[2] == "val/loss"
    assert state.metrics["val/loss"] == ctx.best[1] == min(v for _, v in ctx.series("val/loss"))
    assert state.best_checkpoint == ctx.stage_dir / "best"


def test_single_step_takes_exactly_one_optimizer_step(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    before = weights(state.model)
    lr = 1e-3
    state = run_stage(SingleStep, ctx, state, lr=lr, batch_size=16, weight_decay=0.0)
    assert [step for step, _ in ctx.series("train/loss")] == [1]
    assert [step for step, _ in ctx.series("val/accuracy")] == [1]
    assert ctx.progress_calls == [(1, 1, "epoch 1/1")]
    assert ctx.stop_checks >= 3  # 40 examples in micro-batches of 16
    # Adam's first update moves each weight by at most the learning rate.
    deltas = [
        (after - before[name]).abs().max().item() for name, after in weights(state.model).items()
    ]
    assert 0.5 * lr < max(deltas) <= lr * 1.001
    assert ctx.series("train/lr") == [(1, lr)]


def test_evaluate_stage_logs_test_values(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path, metric_names=("accuracy", "f1_macro"))
    state.metrics["val/accuracy"] = 0.5
    state = run_stage(Evaluate, ctx, state)
    assert len(ctx.logs) == 1
    step, values = ctx.logs[0]
    assert step == 0 and set(values) == {"test/loss", "test/accuracy", "test/f1_macro"}
    assert state.metrics == {"val/accuracy": 0.5, **values}
    run_stage(Evaluate, ctx, state, split="validation")
    assert set(ctx.logs[-1][1]) == {"val/loss", "val/accuracy", "val/f1_macro"}


def test_evaluate_stage_on_a_missing_split(tmp_path: Path) -> None:
    state = toy_state()
    del state.splits["test"]
    with pytest.raises(
        DataError, match=r"no 'test' split in the dataset \(splits: train, validation\)"
    ):
        run_stage(Evaluate, RecordingContext(tmp_path), state)


def test_export_writes_a_reloadable_model(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    state.metrics = {"test/accuracy": 0.75}
    run_stage(Export, ctx, state, folder="out")
    folder = ctx.run_dir / "out"
    assert ctx.artifacts == [(folder, "model")]
    assert (folder / "model.safetensors").is_file()
    assert json.loads((folder / "labels.json").read_text()) == {"0": "neg", "1": "pos"}
    assert json.loads((folder / "metrics.json").read_text()) == {"test/accuracy": 0.75}
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(["good movie", "awful plot twist"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = state.model.eval()(**inputs).logits
        torch.testing.assert_close(model(**inputs).logits, expected)
    assert model.config.id2label == {0: "neg", 1: "pos"}
