"""Weight averaging (EMA) and layer-wise learning-rate decay in the training loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights

from tuneboard import TrainParams
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine.adapters import add_adapters
from tuneboard.engine.averaging import WeightAverage
from tuneboard.engine.trainable import decay_groups
from tuneboard.engine.training import evaluate, fit
from tuneboard.sdk.contracts import NoParams


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


class RecordingStrategy(StandardStrategy):
    """The standard step, keeping a copy of the weights after every optimizer step."""

    def __init__(self) -> None:
        super().__init__(NoParams())
        self.after: list[dict[str, torch.Tensor]] = []

    def after_optimizer_step(self, model: Any) -> None:
        self.after.append(weights(model))


FAST = {"batch_size": 8, "lr": 5e-3, "dropout": 0.0, "warmup_ratio": 0.0}


def test_weight_average_follows_its_schedule_and_swaps_weights_in_and_out() -> None:
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = WeightAverage(layer, decay=0.5)
    assert average.current_decay() == pytest.approx(1 / 10)
    with torch.no_grad():
        layer.weight.fill_(10.0)
    average.update()  # 0.1 * 0 + 0.9 * 10
    with torch.no_grad():
        layer.weight.fill_(20.0)
    average.update()  # decay 2/11: 2/11 * 9 + 9/11 * 20
    expected = 2 / 11 * 9 + 9 / 11 * 20
    with average.applied():
        torch.testing.assert_close(layer.weight, torch.full((1, 2), expected))
    assert torch.equal(layer.weight, torch.full((1, 2), 20.0))
    for _ in range(100):
        average.update()
    assert average.current_decay() == 0.5
    average.copy_to_model()
    torch.testing.assert_close(layer.weight, torch.full((1, 2), 20.0))


def test_ema_weights_are_handed_on_without_validation(tmp_path: Path) -> None:
    state = toy_state(n_train=24)
    del state.splits["validation"]
    start = weights(state.model)
    strategy = RecordingStrategy()
    settings = TrainParams(**FAST, epochs=2, ema_decay=0.6)
    fit(RecordingContext(tmp_path), state, settings, strategy)
    assert len(strategy.after) == 6
    expected = dict(start)
    for n, step in enumerate(strategy.after):
        decay = min(0.6, (1 + n) / (10 + n))
        expected = {k: decay * expected[k] + (1 - decay) * step[k] for k in expected}
    final = weights(state.model)
    for name in expected:
        torch.testing.assert_close(final[name], expected[name])
    assert not torch.equal(final["classifier.weight"], strategy.after[-1]["classifier.weight"])


def test_ema_weights_are_evaluated_and_kept(tmp_path: Path) -> None:
    state = toy_state(n_train=24)
    strategy = RecordingStrategy()
    ctx = RecordingContext(tmp_path)
    result = fit(ctx, state, TrainParams(**FAST, epochs=1, ema_decay=0.9), strategy)
    [(step, logged)] = ctx.series("val/loss")
    assert step == result.best_step == 3
    assert evaluate(ctx, state, "validation", "val")["val/loss"] == pytest.approx(logged)
    state.model.load_state_dict(strategy.after[-1], strict=False)
    assert evaluate(ctx, state, "validation", "val")["val/loss"] != pytest.approx(logged)


def test_layer_lr_decay_groups() -> None:
    model = toy_state(n_train=4).model
    groups = decay_groups(model, 0.01, lr=1.0, layer_lr_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == 1.0
    assert lr_of[id(named["bert.pooler.dense.weight"])] == 1.0
    assert lr_of[id(named["bert.encoder.layer.1.output.dense.weight"])] == 1.0
    assert lr_of[id(named["bert.encoder.layer.0.output.dense.weight"])] == 0.5
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == 0.25
    assert decay_of[id(named["bert.encoder.layer.0.output.dense.bias"])] == 0.0
    assert decay_of[id(named["bert.encoder.layer.0.output.dense.weight"])] == 0.01
    assert len(lr_of) == len(named)
    assert groups[0]["lr"] == 1.0  # the learning rate the loop logs is the full one
    lora_settings = TrainParams(
        train="lora", lora_r=4, lora_dropout=0.0, lora_targets=["query", "value"]
    )
    lora = add_adapters(model, "sequence-classification", lora_settings, total_steps=1)
    trainable = {id(p) for p in lora.parameters() if p.requires_grad}
    lora_groups = decay_groups(lora, 0.0, lr=1.0, layer_lr_decay=0.5)
    assert {id(p) for g in lora_groups for p in g["params"]} == trainable
    assert {g["lr"] for g in lora_groups} == {1.0, 0.5}  # adapters in both layers, the head


def test_layer_lr_decay_scales_the_first_adam_step(tmp_path: Path) -> None:
    state = toy_state(n_train=8)
    before = weights(state.model)
    lr = 1e-3
    settings = TrainParams(**{**FAST, "lr": lr}, max_steps=1, weight_decay=0.0, layer_lr_decay=0.5)
    ctx = RecordingContext(tmp_path)
    fit(ctx, state, settings, StandardStrategy(NoParams()))
    after = weights(state.model)

    def moved(prefix: str) -> float:
        return max(
            (after[n] - before[n]).abs().max().item() for n in before if n.startswith(prefix)
        )

    # Adam's first update moves each weight by at most (about) its learning rate.
    assert 0.5 * lr < moved("classifier") <= 1.001 * lr
    assert 0.5 * lr < moved("bert.encoder.layer.1.") <= 1.001 * lr
    assert 0.25 * lr < moved("bert.encoder.layer.0.") <= 0.501 * lr
    assert moved("bert.embeddings.") <= 0.251 * lr
    assert ctx.series("train/lr") == [(1, lr)]
