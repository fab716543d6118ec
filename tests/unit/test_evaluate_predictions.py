"""The `evaluate` stage writes each example's prediction for reviews (sequence classification)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import RecordingContext, one_torch_thread, toy_state
from multistep_helpers import PluginContext, toy_ner_state

from tuneboard.builtin.evaluate import Evaluate, EvaluateParams
from tuneboard.review.items import read_predictions
from tuneboard.sdk.params import build_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def test_predictions_file_matches_the_scores(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    params = build_params(EvaluateParams, {"split": "validation"}, "test (evaluate)")
    Evaluate(params).run(ctx, state)
    [(path, kind)] = ctx.artifacts
    assert (path, kind) == (ctx.stage_dir / "predictions-validation.jsonl", "predictions")
    found = read_predictions(path)
    assert found.labels == ("neg", "pos")
    assert [i.text for i in found.items] == [ex.text for ex in state.splits["validation"]]
    assert [i.label for i in found.items] == [ex.label for ex in state.splits["validation"]]
    for entry in found.items:
        assert sum(entry.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert entry.confidence == max(entry.probabilities.values())
    right = sum(not i.wrong for i in found.items) / len(found.items)
    assert state.metrics["val/accuracy"] == pytest.approx(right)


def test_no_file_when_turned_off_or_for_token_classification(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path)
    off = build_params(EvaluateParams, {"predictions": False}, "test (evaluate)")
    Evaluate(off).run(ctx, toy_state())
    ner = PluginContext(tmp_path / "ner", metric_names=("entity_f1",))
    state = toy_ner_state()
    Evaluate(EvaluateParams()).run(ner, state)
    assert ctx.artifacts == ner.artifacts == []
    assert not list(tmp_path.rglob("predictions-*"))
    assert "test/loss" in state.metrics
