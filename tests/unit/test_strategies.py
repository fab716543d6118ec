"""The training-step strategies on a tiny BERT: FGM, PGD, FreeLB and R-Drop against standard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import one_torch_thread, toy_state
from multistep_helpers import ALL_STRATEGIES, PluginContext, toy_ner_state

from tuneboard import TrainParams
from tuneboard.builtin.adversarial import find_embedding, project, unit_direction
from tuneboard.builtin.finetune import Finetune
from tuneboard.engine.data import batch_order, batches, split_features
from tuneboard.engine.trainable import set_dropout
from tuneboard.sdk.contracts import PipelineState, Strategy, TrainStep
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


ADVERSARIAL = ("fgm", "pgd", "freelb")


def make(name: str, **params: Any) -> Strategy[Any]:
    cls = ALL_STRATEGIES[name]
    return cls(build_params(cls.Params, params, f"test ({name})"))


def first_batch(state: PipelineState) -> dict[str, Any]:
    features = split_features(state, "train", 32)
    order = batch_order(features, shuffle=False, seed=0)
    return next(batches(features, 8, order, "cpu"))


def gradients(state: PipelineState, strategy: Strategy[Any], seed: int = 0) -> tuple[float, dict]:
    """Run one strategy step on the first training batch; its loss and every gradient."""
    model = state.model
    model.train()
    model.zero_grad(set_to_none=True)
    strategy.setup(model)
    torch.manual_seed(seed)
    batch = first_batch(state)
    inputs = TrainStep(model, batch, lambda b: model(**b), lambda loss: loss.backward(), 0)
    loss = strategy.step(inputs)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss, grads


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    assert a.keys() == b.keys()
    return any(not torch.allclose(a[n], b[n], atol=1e-7) for n in a)


def test_registration_and_parameter_help() -> None:
    assert list(ALL_STRATEGIES) == ["standard", "fgm", "pgd", "freelb", "rdrop"]
    for cls in ALL_STRATEGIES.values():
        assert cls.description
        assert all(spec.help for spec in describe_params(cls.Params)), cls.name


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_strategies_change_gradients_and_leave_the_model_as_it_was(
    name: str,
) -> None:
    state = toy_state(n_train=16)
    set_dropout(state.model, 0.0)
    embedding = find_embedding(state.model, "word_embeddings")
    weights_before = embedding.weight.detach().clone()
    batch = first_batch(state)
    state.model.eval()
    with torch.no_grad():
        logits_before = state.model(**batch).logits

    clean_loss, clean = gradients(state, make("standard"))
    loss, grads = gradients(state, make(name))

    assert differs(clean, grads)
    if name == "freelb":  # no clean pass: the mean loss along the perturbations
        assert loss == pytest.approx(clean_loss, rel=0.2) and loss != clean_loss
    else:
        assert loss == pytest.approx(clean_loss, rel=1e-5)
    # The perturbation lives in a forward hook, removed after the step: nothing is left over.
    assert torch.equal(embedding.weight, weights_before)
    assert not embedding._forward_hooks
    state.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(state.model(**batch).logits, logits_before)


def test_epsilon_zero_fgm_doubles_the_clean_gradients() -> None:
    state = toy_state(n_train=16)
    set_dropout(state.model, 0.0)
    _, clean = gradients(state, make("standard"))
    _, grads = gradients(state, make("fgm", epsilon=0.0))
    for name, grad in clean.items():
        torch.testing.assert_close(grads[name], 2 * grad)


def test_rdrop_adds_a_kl_term_between_dropout_passes() -> None:
    state = toy_state(n_train=16)
    set_dropout(state.model, 0.0)
    # Without dropout both passes agree: the KL term is 0, gradients are the standard ones.
    clean_loss, clean = gradients(state, make("standard"))
    loss, grads = gradients(state, make("rdrop", alpha=4.0))
    assert loss == pytest.approx(clean_loss, rel=1e-5)
    assert not differs(clean, grads)
    set_dropout(state.model, 0.2)
    _, with_dropout = gradients(state, make("rdrop", alpha=0.0), seed=1)
    _, with_kl = gradients(state, make("rdrop", alpha=4.0), seed=1)
    assert differs(with_dropout, with_kl)


def test_strategies_work_for_token_classification_and_frozen_embeddings() -> None:
    state = toy_ner_state(n_train=16)
    set_dropout(state.model, 0.1)
    for name, param in state.model.named_parameters():
        param.requires_grad_(name.startswith("classifier"))  # head only: embeddings frozen
    _, clean = gradients(state, make("standard"), seed=3)
    for name in (*ADVERSARIAL, "rdrop"):
        loss, grads = gradients(state, make(name), seed=3)
        assert np.isfinite(loss) and set(grads) == {"classifier.weight", "classifier.bias"}
        assert differs(clean, grads), name


def test_perturbation_helpers() -> None:
    grad = torch.randn(3, 4, 5)
    mask = torch.ones(3, 4, 1)
    mask[0, 2:] = 0
    unit = unit_direction(grad, mask)
    torch.testing.assert_close(unit.flatten(1).norm(dim=1), torch.ones(3))
    assert torch.equal(unit[0, 2:], torch.zeros(2, 5))
    bad = grad.clone()
    bad[1] = float("nan")
    assert torch.equal(unit_direction(bad, mask)[1], torch.zeros(4, 5))
    projected = project(torch.stack([unit[0] * 3, unit[1] * 0.5, unit[2]]), 1.0)
    torch.testing.assert_close(projected.flatten(1).norm(dim=1), torch.tensor([1.0, 0.5, 1.0]))


def test_embedding_names_that_fit_none_or_several() -> None:
    state = toy_state(n_train=4)
    with pytest.raises(ConfigError, match="'nope' matches no embedding module; the model has:"):
        make("fgm", embedding="nope").setup(state.model)
    with pytest.raises(ConfigError, match="'embeddings' matches 3 embedding modules"):
        make("pgd", embedding="embeddings").setup(state.model)


# The tiny model's embeddings are small (norm ~0.1 per token): perturbations must be too.
TINY_PARAMS: dict[str, dict[str, Any]] = {
    "fgm": {"epsilon": 0.05},
    "pgd": {"epsilon": 0.05, "alpha": 0.02},
    "freelb": {"adv_init_mag": 0.01, "adv_lr": 0.02, "adv_steps": 2},
    "rdrop": {"alpha": 1.0},
}


@pytest.mark.parametrize("name", [*ADVERSARIAL, "rdrop"])
def test_training_with_each_strategy_still_learns(tmp_path: Path, name: str) -> None:
    state = toy_ner_state(n_train=32, n_val=8)
    ctx = PluginContext(tmp_path, metric_names=("token_accuracy",))
    values = {"epochs": 4, "batch_size": 8, "lr": 1e-2, "warmup_ratio": 0.0, "strategy": name}
    values["strategy_params"] = TINY_PARAMS[name]
    values["dropout"] = 0.1 if name == "rdrop" else 0.0
    Finetune(build_params(TrainParams, values, "test")).run(ctx, state)
    losses = [v for _, v in ctx.series("train/loss")]
    assert len(losses) == 16
    assert np.mean(losses[-3:]) < 0.3 * np.mean(losses[:3])
    assert ctx.series("val/token_accuracy")[-1][1] >= 0.9
