"""The `distill` stage: a smaller student learns from the current model and replaces it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_BERT, RecordingContext, one_torch_thread, toy_state
from multistep_helpers import PluginContext, toy_ner_state

from tuneboard import IGNORE_INDEX
from tuneboard.builtin.distill import Distill, DistillParams, every_other_layer
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine.data import split_features
from tuneboard.engine.training import TrainParams, fit
from tuneboard.sdk.contracts import NoParams, PipelineState
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


FAST = {"batch_size": 8, "lr": 1e-2, "dropout": 0.0, "warmup_ratio": 0.0}


def distill(ctx: RecordingContext, state: PipelineState, **values: Any) -> PipelineState:
    params = build_params(DistillParams, {**FAST, **values}, "test (distill)")
    return Distill(params).run(ctx, state)


def validation_kl(student: Any, teacher: Any, state: PipelineState) -> float:
    """Mean KL(teacher || student) over the validation split's labelled tokens."""
    features = split_features(state, "validation", 32)
    ids = torch.from_numpy(features.input_ids)
    inputs = {"input_ids": ids, "attention_mask": (ids != features.pad_id).long()}
    keep = torch.from_numpy(features.labels) != IGNORE_INDEX
    with torch.no_grad():
        log_p = teacher.eval()(**inputs).logits[keep].log_softmax(-1)
        log_q = student.eval()(**inputs).logits[keep].log_softmax(-1)
    return float(F.kl_div(log_q, log_p, log_target=True, reduction="batchmean"))


def test_every_other_layer_copies_the_teacher(tmp_path: Path) -> None:
    teacher = toy_state(n_train=4).model
    student = every_other_layer(teacher, RecordingContext(tmp_path).training)
    assert student.config.num_hidden_layers == 1 and len(student.bert.encoder.layer) == 1
    t, s = teacher.state_dict(), student.state_dict()
    assert set(s) == {k for k in t if ".layer.1." not in k}
    assert all(torch.equal(s[k], t[k]) for k in s)


def test_student_learns_the_teachers_predictions_and_replaces_it(tmp_path: Path) -> None:
    state = toy_ner_state()
    teacher_ctx = PluginContext(tmp_path / "teacher", metric_names=("token_accuracy",))
    fit(teacher_ctx, state, TrainParams(**FAST, epochs=4), StandardStrategy(NoParams()))
    teacher = state.model
    table = {**TINY_BERT, "num_hidden_layers": 1}
    ctx = PluginContext(tmp_path, metric_names=("token_accuracy",))
    state = distill(ctx, state, student=table, epochs=1, lr=0.0)  # the untrained student
    start = validation_kl(state.model, teacher, state)
    state.model = teacher
    state = distill(ctx, state, student=table, epochs=4, alpha=1.0, temperature=1.0)
    assert state.model is not teacher and state.model.config.num_hidden_layers == 1
    assert validation_kl(state.model, teacher, state) < 0.2 * start
    assert ctx.best is not None and ctx.best[2] == "val/token_accuracy"
    assert state.best_checkpoint == ctx.stage_dir / "best"
    assert any(message.startswith("distilling ") for _, message in ctx.events)


def test_a_student_from_a_config_table_for_sequence_classification(tmp_path: Path) -> None:
    state = toy_state()
    table = {
        "model_type": "bert",
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
    }
    ctx = RecordingContext(tmp_path)
    state = distill(ctx, state, student=table, epochs=2)
    assert state.model.config.hidden_size == 16
    assert len(ctx.series("val/accuracy")) == 2
    assert all(math.isfinite(v) for _, v in ctx.series("train/loss"))


def test_distill_parameters() -> None:
    with pytest.raises(ConfigError, match="unknown key 'strategy'"):
        build_params(DistillParams, {"strategy": "fgm"}, "test")
    specs = describe_params(DistillParams)
    assert [s.name for s in specs][-3:] == ["student", "temperature", "alpha"]
    assert all(spec.help for spec in specs)
