"""The SupCon loss, pooling, the strategy's step and the centroid accuracy, on small cases
computed by hand (no model, no run). The package is imported inside each test: it becomes
importable when conftest's `installed` fixture has run."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from tuneboard import IGNORE_INDEX, ConfigError, TrainStep

# Three sentence embeddings (not unit length: the loss normalises them); rows 0 and 1 share
# label 0 and are orthogonal, row 2 points like row 0 and is alone in label 1.
EMBEDDINGS = [[3.0, 0.0], [0.0, 2.0], [0.5, 0.0]]
LABELS = [0, 0, 1]


def hand_computed(temperature: float) -> float:
    """SupCon of EMBEDDINGS by hand. Cosines: z0·z1 = 0, z0·z2 = 1, z1·z2 = 0.
    Anchor 0 (positive 1): -log(e^0 / (e^0 + e^(1/T))) = log(1 + e^(1/T)).
    Anchor 1 (positive 0): -log(e^0 / (e^0 + e^0)) = log 2.
    Anchor 2 has no positive: skipped, so the mean is over two anchors."""
    return (math.log(1 + math.exp(1 / temperature)) + math.log(2)) / 2


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.1])
def test_supcon_loss_matches_the_hand_computed_value(temperature: float) -> None:
    from tuneboard_contrastive.supcon import supcon_loss

    loss = supcon_loss(torch.tensor(EMBEDDINGS), torch.tensor(LABELS), temperature)
    assert float(loss) == pytest.approx(hand_computed(temperature), rel=1e-6)


def test_rows_without_a_positive_or_a_label_are_left_out() -> None:
    from tuneboard_contrastive.supcon import supcon_loss

    # Every label once: no anchor has a positive, so there is no SupCon term at all.
    assert supcon_loss(torch.tensor(EMBEDDINGS), torch.tensor([0, 1, 2]), 1.0) is None
    # An unlabelled row is not even a negative: two orthogonal positives alone give
    # -log(e^0 / e^0) = 0 (with row 2 as a negative it would be log(1 + e) for anchor 0).
    labels = torch.tensor([0, 0, IGNORE_INDEX])
    assert float(supcon_loss(torch.tensor(EMBEDDINGS), labels, 1.0)) == pytest.approx(0.0)


def test_supcon_gradients_are_finite_with_a_lonely_row() -> None:
    from tuneboard_contrastive.supcon import supcon_loss

    embeddings = torch.tensor(EMBEDDINGS, requires_grad=True)
    supcon_loss(embeddings, torch.tensor(LABELS), 0.3).backward()
    assert embeddings.grad is not None and bool(torch.isfinite(embeddings.grad).all())
    assert float(embeddings.grad.abs().sum()) > 0


def test_pooling_means_real_tokens_or_takes_the_first() -> None:
    from tuneboard_contrastive.supcon import pool

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]


class FakeModelStep:
    """A `TrainStep` whose forward returns a fixed cross-entropy and last-layer states, and
    whose backward records the loss it is given."""

    def __init__(self, labels: list[int], ce: float = 0.7) -> None:
        # One real token per row (then padding): the mean pooling is the first state.
        states = torch.tensor([[row, [9.0, 9.0]] for row in EMBEDDINGS], requires_grad=True)
        self.ce = torch.tensor(ce, requires_grad=True)
        self.states = states
        self.seen: list[dict[str, Any]] = []
        self.backwarded: list[float] = []
        batch = {
            "input_ids": torch.ones(3, 2, dtype=torch.long),
            "attention_mask": torch.tensor([[1, 0]] * 3),
            "labels": torch.tensor(labels),
        }
        self.step = TrainStep(None, batch, self.forward, self.backward, 0)

    def forward(self, batch: dict[str, Any]) -> Any:
        self.seen.append(batch)
        return SimpleNamespace(loss=self.ce, logits=None, hidden_states=(self.states,))

    def backward(self, loss: Any) -> None:
        loss.backward()
        self.backwarded.append(float(loss.detach()))


@pytest.mark.parametrize("lam", [0.0, 0.25, 1.0])
def test_the_step_mixes_cross_entropy_and_supcon(lam: float) -> None:
    from tuneboard_contrastive.supcon import SupCon, SupConParams

    fake = FakeModelStep(LABELS)
    strategy = SupCon(SupConParams(temperature=0.5, lam=lam))
    returned = strategy.step(fake.step)
    expected = (1 - lam) * 0.7 + lam * hand_computed(0.5)
    assert fake.backwarded == [pytest.approx(expected, rel=1e-6)]
    assert returned == pytest.approx(expected, rel=1e-6)
    assert [b.get("output_hidden_states") for b in fake.seen] == [True]
    assert "output_hidden_states" not in fake.step.batch  # the loop's batch is left alone
    # The embeddings get gradients exactly when the contrastive term counts.
    grad = fake.states.grad
    assert (grad is not None and float(grad.abs().sum()) > 0) == (lam > 0)


def test_a_batch_without_positives_trains_on_cross_entropy_alone() -> None:
    from tuneboard_contrastive.supcon import SupCon, SupConParams

    fake = FakeModelStep([0, 1, 2])
    assert SupCon(SupConParams(lam=0.9)).step(fake.step) == pytest.approx(0.7)
    assert fake.backwarded == [pytest.approx(0.7)]


def test_token_labels_are_refused() -> None:
    from tuneboard_contrastive.supcon import SupCon, SupConParams

    fake = FakeModelStep(LABELS)
    fake.step.batch["labels"] = torch.zeros(3, 2, dtype=torch.long)
    with pytest.raises(ConfigError, match="sequence classification"):
        SupCon(SupConParams()).step(fake.step)


def test_centroid_accuracy_by_hand() -> None:
    from tuneboard_contrastive.centroids import centroid_accuracy

    # Centroids: class 0 along x (rows 0, 1 after normalising), class 1 along y.
    train = np.array([[1.0, 0.0], [5.0, 0.0], [0.0, 2.0]])
    train_labels = np.array([0, 0, 1])
    held_out = np.array([[0.9, 0.1], [0.1, 0.9], [1.0, 0.2], [0.0, 1.0]])
    # Nearest centroids: 0, 1, 0, 1; the truth: 0, 1, 1 (wrong), unlabelled (not counted).
    labels = np.array([0, 1, 1, IGNORE_INDEX])
    assert centroid_accuracy(train, train_labels, held_out, labels) == pytest.approx(2 / 3)
    assert math.isnan(centroid_accuracy(train, train_labels, held_out, np.full(4, IGNORE_INDEX)))
