"""The shared training loop on a tiny BERT and a learnable toy task."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights
from transformers import AutoModelForSequenceClassification

from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine.data import split_features
from tuneboard.engine.trainable import set_dropout
from tuneboard.engine.training import (
    FitResult,
    TrainParams,
    autocast_dtype,
    evaluate,
    fit,
    lr_factor,
    predict,
)
from tuneboard.sdk.contracts import NoParams, PipelineState, TrainStep
from tuneboard.sdk.errors import ConfigError, RunCancelled


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


FAST = {"batch_size": 8, "lr": 5e-3, "dropout": 0.0, "warmup_ratio": 0.0}


def train(
    tmp_path: Path,
    state: PipelineState | None = None,
    ctx: RecordingContext | None = None,
    **settings: Any,
) -> tuple[FitResult, PipelineState, RecordingContext]:
    state = state or toy_state()
    ctx = ctx or RecordingContext(tmp_path)
    result = fit(ctx, state, TrainParams(**{**FAST, **settings}), StandardStrategy(NoParams()))
    return result, state, ctx


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name, value in before.items() if not torch.equal(value, after[name])}


def test_training_learns_the_toy_task(tmp_path: Path) -> None:
    result, state, ctx = train(tmp_path, epochs=8)
    losses = [v for _, v in ctx.series("train/loss")]
    assert len(losses) == result.steps == 40  # 40 examples / 8 per step * 8 epochs
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert result.best_value is not None and result.best_value >= 0.9
    assert ctx.series("val/accuracy")[-1][1] >= 0.9
    assert [s for s, _ in ctx.series("val/loss")] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert ctx.progress_calls[-1] == (40, 40, "epoch 8/8")
    assert ctx.series("train/epoch")[-1] == (40, 8.0)
    assert all(v > 0 for _, v in ctx.series("train/samples_per_s"))
    assert state.metrics["val/accuracy"] == result.best_value
    assert ctx.best == (result.best_step, result.best_value, "val/accuracy")


def test_early_stopping_waits_patience_evaluations(tmp_path: Path) -> None:
    # With lr 0 nothing improves after the first evaluation.
    result, _, ctx = train(tmp_path, epochs=10, lr=0.0, patience=2)
    assert result.stopped_early
    assert [step for step, _ in result.history] == [5, 10, 15]
    assert result.best_step == 5
    assert result.steps == 15
    assert any("early stop at step 15" in message for _, message in ctx.events)


def test_min_delta_counts_small_gains_as_none(tmp_path: Path) -> None:
    result, _, _ = train(
        tmp_path, epochs=10, lr=1e-4, monitor="val/loss", patience=1, min_delta=1.0
    )
    assert result.stopped_early and result.steps == 10
    assert result.monitor == "val/loss"


def test_best_checkpoint_is_kept_loaded_and_saved(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    snapshots: dict[int, dict[str, Any]] = {}
    ctx.on_log = lambda step, values: (
        snapshots.__setitem__(step, weights(state.model)) if "val/loss" in values else None
    )
    # Monitoring the *highest* validation loss makes an early evaluation the best one.
    result, state, ctx = train(tmp_path, state, ctx, epochs=6, monitor="val/loss", mode="max")
    assert result.best_step is not None and result.best_step < result.steps
    assert not changed(snapshots[result.best_step], weights(state.model))
    assert state.best_checkpoint == ctx.stage_dir / "best" == result.checkpoint
    assert (result.checkpoint / "model.safetensors").is_file()
    assert (result.checkpoint / "tokenizer.json").is_file()
    assert (result.checkpoint, "checkpoint") in ctx.artifacts
    saved = AutoModelForSequenceClassification.from_pretrained(result.checkpoint)
    assert not changed(weights(state.model), weights(saved))


def test_head_only_training_leaves_the_encoder_alone(tmp_path: Path) -> None:
    state = toy_state()
    before = weights(state.model)
    train(tmp_path, state, epochs=1, train="head")
    moved = changed(before, weights(state.model))
    assert moved == {n for n in before if n.startswith(("classifier.", "bert.pooler."))}
    assert all(p.requires_grad for p in state.model.parameters())  # reset for later stages


def test_top_k_trains_only_the_top_layers_and_head(tmp_path: Path) -> None:
    state = toy_state()
    before = weights(state.model)
    train(tmp_path, state, epochs=1, train="top_k", top_k=1)
    moved = changed(before, weights(state.model))
    top = ("classifier.", "bert.pooler.", "bert.encoder.layer.1.")
    assert moved == {n for n in before if n.startswith(top)}
    with pytest.raises(ConfigError, match="top_k must be between 1 and the model's 2 layers"):
        train(tmp_path, epochs=1, train="top_k", top_k=3)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_lora_trains_adapters_and_merges_them(tmp_path: Path) -> None:
    state = toy_state()
    before = weights(state.model)
    result, state, _ = train(tmp_path, state, epochs=2, lr=1e-2, train="lora", lora_r=4)
    model = state.model
    assert type(model).__name__ == "BertForSequenceClassification"
    assert not any("lora" in name for name, _ in model.named_parameters())
    moved = changed(before, weights(model))
    assert moved == {
        *(n for n in before if n.startswith("classifier.")),
        *(
            f"bert.encoder.layer.{i}.attention.self.{m}.weight"
            for i in (0, 1)
            for m in ("query", "value")
        ),
    }
    # A merged adapter is a low-rank update of the weight.
    name = "bert.encoder.layer.0.attention.self.query.weight"
    delta = model.get_parameter(name).detach() - before[name]
    assert torch.linalg.matrix_rank(delta, atol=1e-6).item() <= 4
    reloaded = AutoModelForSequenceClassification.from_pretrained(result.checkpoint)
    assert not changed(weights(model), weights(reloaded))


def test_lora_targets_that_do_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lora_targets \['nope'\]"):
        train(tmp_path, epochs=1, train="lora", lora_targets=("nope",))


class GradientSpy(StandardStrategy):
    """The standard step, keeping a copy of the classifier's gradient after each backward."""

    def __init__(self) -> None:
        super().__init__(NoParams())
        self.grads: list[torch.Tensor] = []

    def step(self, inputs: TrainStep) -> float:
        loss = super().step(inputs)
        self.grads.append(inputs.model.classifier.weight.grad.clone())
        return loss


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path: Path) -> None:
    spies = GradientSpy(), GradientSpy()
    big_state, acc_state = toy_state(), toy_state()
    big_ctx, acc_ctx = RecordingContext(tmp_path / "a"), RecordingContext(tmp_path / "b")
    big = fit(big_ctx, big_state, TrainParams(**{**FAST, "epochs": 1}), spies[0])
    settings = TrainParams(**{**FAST, "epochs": 1, "batch_size": 4, "grad_accum": 2})
    acc = fit(acc_ctx, acc_state, settings, spies[1])
    assert big.steps == acc.steps == 5
    assert len(spies[1].grads) == 10
    # The gradient summed over two half batches is the gradient of the whole batch.
    torch.testing.assert_close(spies[1].grads[1], spies[0].grads[0], atol=1e-6, rtol=1e-4)
    big_losses = [v for _, v in big_ctx.series("train/loss")]
    acc_losses = [v for _, v in acc_ctx.series("train/loss")]
    assert acc_losses == pytest.approx(big_losses, abs=1e-4)


def test_partial_accumulation_group_at_epoch_end(tmp_path: Path) -> None:
    # 40 examples / 8 = 5 micro-batches; groups of 2 -> 3 steps per epoch (2 + 2 + 1).
    result, _, ctx = train(tmp_path, epochs=2, grad_accum=2)
    assert result.steps == 6
    assert ctx.progress_calls[-1][:2] == (6, 6)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_warms_up_then_decays_to_zero(tmp_path: Path, schedule: str) -> None:
    _, _, ctx = train(
        tmp_path, epochs=4, lr=1e-3, warmup_ratio=0.25, scheduler=schedule, log_every=1
    )
    lrs = [v for _, v in ctx.series("train/lr")]
    assert len(lrs) == 20
    assert lrs[0] == 0.0
    assert lrs[:6] == sorted(lrs[:6]) and lrs[5] == pytest.approx(1e-3)
    assert lrs[5:] == sorted(lrs[5:], reverse=True)
    assert lrs[-1] < 0.1 * 1e-3
    assert lr_factor(schedule, 5, 20)(20) == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_and_warmup_steps() -> None:
    factor = lr_factor("constant", 2, 10)
    assert [factor(s) for s in range(4)] == [0.0, 0.5, 1.0, 1.0]
    assert factor(10) == 1.0


def test_max_steps_and_eval_every(tmp_path: Path) -> None:
    result, _, ctx = train(tmp_path, epochs=5, max_steps=7, eval_every=3)
    assert result.steps == 7
    assert [s for s, _ in ctx.series("val/loss")] == [3, 6, 7]
    assert ctx.progress_calls[-1] == (7, 7, "epoch 2/2")


def test_cancellation_stops_within_a_micro_batch(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path)
    ctx.stop_when(lambda c: len(c.progress_calls) >= 2)  # two optimizer steps done
    with pytest.raises(RunCancelled):
        train(tmp_path, ctx=ctx, epochs=50)
    # The losses wait on the device for a log point; a cancelled run still logs them.
    assert [step for step, _ in ctx.series("train/loss")] == [1, 2]


def test_cancellation_during_evaluation(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path)
    ctx.stop_when(lambda c: len(c.series("train/loss")) >= 5)  # the end of epoch 1
    with pytest.raises(RunCancelled):
        train(tmp_path, ctx=ctx, epochs=50, eval_batch_size=4)
    assert ctx.series("val/loss") == []


def test_monitor_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="monitor 'train/loss': must be a validation value"):
        train(tmp_path, epochs=1, monitor="train/loss")
    with pytest.raises(ConfigError, match=r"'val/f1_macro' is not measured; available: val/acc"):
        train(tmp_path, epochs=1, monitor="val/f1_macro")


def test_without_validation_the_last_weights_are_kept(tmp_path: Path) -> None:
    state = toy_state()
    del state.splits["validation"]
    result, state, ctx = train(tmp_path, state, epochs=1)
    assert result.best_step is None and result.monitor is None
    assert ctx.best is None
    assert (
        "warning",
        "no validation split: no evaluation, the last weights are kept",
    ) in ctx.events
    assert state.best_checkpoint is not None and state.best_checkpoint.is_dir()


def test_precision(tmp_path: Path) -> None:
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("fp16", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    _, _, ctx = train(tmp_path, epochs=1, max_steps=1, precision="fp16")
    assert ("warning", "precision fp16 needs a GPU; training in fp32") in ctx.events
    result, _, _ = train(tmp_path, epochs=1, max_steps=2, precision="bf16")
    assert math.isfinite(result.best_metrics["val/loss"])


def test_dropout_override() -> None:
    state = toy_state()
    set_dropout(state.model, 0.3)
    probs = {m.p for m in state.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert probs == {0.3}
    assert state.model.config.hidden_dropout_prob == 0.3
    assert state.model.config.attention_probs_dropout_prob == 0.3


def test_predict_restores_the_original_order(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    features = split_features(state, "validation", 32)
    out = predict(state.model, features, batch_size=3, device="cpu", with_probabilities=True)
    model = state.model.eval()
    expected_logits = []
    for example in state.splits["validation"]:
        encoded = state.tokenizer(example.text, return_tensors="pt")
        with torch.no_grad():
            expected_logits.append(model(**encoded).logits[0])
    logits = torch.stack(expected_logits)
    assert out.label_ids.tolist() == logits.argmax(-1).tolist()
    assert out.probabilities is not None
    np.testing.assert_allclose(out.probabilities, logits.softmax(-1).numpy(), atol=1e-5)
    targets = torch.tensor([state.labels.index(e.label) for e in state.splits["validation"]])
    loss = torch.nn.functional.cross_entropy(logits, targets).item()
    assert out.loss == pytest.approx(loss, abs=1e-5)
    values = evaluate(ctx, state, "validation", "val", batch_size=5)
    assert values["val/loss"] == pytest.approx(loss, abs=1e-5)
    hits = (logits.argmax(-1) == targets).float().mean().item()
    assert values["val/accuracy"] == pytest.approx(hits)
