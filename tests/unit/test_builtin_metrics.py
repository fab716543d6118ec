"""Built-in metrics against values computed by hand."""

from __future__ import annotations

import pytest

from tuneboard.builtin.metrics import BUILTIN_METRICS, register_metrics

# refs  : 0 0 1 1 2 2
# preds : 0 1 1 1 2 0
# label 0: tp 1 fp 1 fn 1 -> P 1/2 R 1/2 F1 1/2
# label 1: tp 2 fp 1 fn 0 -> P 2/3 R 1   F1 4/5
# label 2: tp 1 fp 0 fn 1 -> P 1   R 1/2 F1 2/3
REFS = [0, 0, 1, 1, 2, 2]
PREDS = [0, 1, 1, 1, 2, 0]
NAMES = ["a", "b", "c"]
EXPECTED = {
    "accuracy": 4 / 6,
    "precision_macro": (1 / 2 + 2 / 3 + 1) / 3,
    "recall_macro": (1 / 2 + 1 + 1 / 2) / 3,
    "f1_macro": (1 / 2 + 4 / 5 + 2 / 3) / 3,
    "precision_micro": 4 / 6,
    "recall_micro": 4 / 6,
    "f1_micro": 4 / 6,
}
METRICS = {m.name: m for m in BUILTIN_METRICS}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_values_match_hand_computation(name: str) -> None:
    values = METRICS[name]().compute(PREDS, REFS, NAMES)
    assert values == {name: pytest.approx(EXPECTED[name])}


def test_label_only_predicted_counts_in_macro_average() -> None:
    # label 1 is never a reference: its precision is 0 and it pulls the macro average down.
    values = METRICS["precision_macro"]().compute([0, 1], [0, 0], NAMES)
    assert values["precision_macro"] == pytest.approx((1.0 + 0.0) / 2)
    assert METRICS["recall_macro"]().compute([0, 1], [0, 0], NAMES)["recall_macro"] == 0.25


def test_perfect_and_empty_inputs() -> None:
    for metric in BUILTIN_METRICS:
        assert metric().compute([1, 0, 1], [1, 0, 1], NAMES) == {metric.name: 1.0}
        assert metric().compute([], [], NAMES) == {metric.name: 0.0}


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 predictions for 3 references"):
        METRICS["f1_macro"]().compute([0, 1], [0, 1, 1], NAMES)


def test_every_metric_is_registered_and_described() -> None:
    registered: list[type] = []
    register_metrics(registered.append)
    generation = {"exact_match", "bleu", "chrf", "rouge"}
    assert {m.name for m in registered} == set(EXPECTED) | {
        "entity_f1",
        "token_accuracy",
    } | generation
    for metric in BUILTIN_METRICS:
        assert metric.higher_is_better is True
        assert metric.description
