"""Handoffs: what each completed stage hands on is kept on disk, and a resumed run gets it
back; `plan_resume` finds where a run goes on (tiny BERT, real files, no database)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from helpers import one_torch_thread, toy_state, weights

from tuneboard.config import DatasetSpec, ExperimentConfig, ModelSpec, StageSpec
from tuneboard.engine import checkpoint
from tuneboard.engine.resume import (
    RunRecovery,
    StageCompleted,
    StageOutcome,
    handoff_path,
    plan_resume,
    read_handoff,
    read_splits,
    write_splits,
)
from tuneboard.sdk.contracts import PipelineState, TokenExample
from tuneboard.sdk.errors import TuneboardError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


PLUGINS = ("changes_model", "does_nothing", "changes_splits", "finetune")


def experiment() -> ExperimentConfig:
    stages = tuple(StageSpec(i, plugin, f"s{i}", None) for i, plugin in enumerate(PLUGINS))
    return ExperimentConfig(
        name="exp",
        description="",
        model=ModelSpec(source=None),
        task="sequence-classification",
        dataset=DatasetSpec("tsv", None),
        metrics=("accuracy",),
        max_length=32,
        seed=0,
        stages=stages,
        headline="test/accuracy",
        raw={},
    )


def environment() -> Any:
    events: list[str] = []
    store = SimpleNamespace(log_event=lambda run_id, message, **kw: events.append(message))
    return SimpleNamespace(
        run_id="r", device="cpu", next_row=0, last_values={}, store=store, events=events, task=None
    )


def run_stage(
    env: Any,
    position: int,
    state: PipelineState,
    suffix: str = "",
    *,
    completed: StageCompleted | None = None,
) -> PipelineState:
    """What the stages of `PLUGINS` do, numbering rows and calling `completed` as the
    runner does."""
    row = max(position, env.next_row)
    env.next_row = row + 1
    env.last_values[f"s{position}/value"] = float(position)
    if position == 0:
        with torch.no_grad():
            next(state.model.parameters()).add_(1.0)  # changed, but no checkpoint saved
    if position == 2:
        state.splits["train"] = [*state.splits["train"][:5]]
        state.extras.update({"note": "kept", "object": object()})
    if completed is not None:
        completed(state, StageOutcome(row, "val/accuracy", 7, 0.5 + position))
    return state


def test_handoffs_restore_what_each_stage_handed_on(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    exp = experiment()
    state = toy_state()
    prepared: Any = SimpleNamespace(
        project=SimpleNamespace(root=tmp_path),
        experiment=exp,
        splits=state.splits,
        labels=state.labels,
    )
    recovery = RunRecovery(run_dir, prepared, None)
    env = environment()
    for spec in exp.stages[:3]:
        state = recovery.run_stage(env, spec, state, run_stage)

    first, second, third = (read_handoff(run_dir, i) for i in range(3))
    assert first and second and third
    assert first.model == second.model == third.model == "handoff/model-0"
    assert (first.splits, second.splits, third.splits) == (None, None, "handoff/splits-2.jsonl")
    assert third.extras == {"note": "kept"}  # not JSON: left out
    assert third.last_values == {"s0/value": 0.0, "s1/value": 1.0, "s2/value": 2.0}
    assert third.next_row == 3 and third.labels == ["neg", "pos"]
    assert (third.row, third.best_metric, third.best_step, third.best_value) == (
        2,
        "val/accuracy",
        7,
        2.5,
    )

    # Stage 3 had started and written a resume checkpoint when the run stopped.
    (run_dir / "stage-3" / "resume-00000004").mkdir(parents=True)
    (run_dir / "stage-3" / "resume-00000004" / checkpoint.META).write_text(
        json.dumps({"format": checkpoint.FORMAT, "step": 4})
    )
    plan = plan_resume("r", run_dir, exp)
    assert (plan.position, plan.row, plan.step) == (3, 3, 4)
    assert plan.completed == (first, second, third)
    assert plan.describe() == "stage 3 s3 at step 4"

    resumed_env = environment()
    fresh = toy_state()
    prepared.splits = fresh.splits  # as the dataset loads them again
    restored = RunRecovery(run_dir, prepared, plan).initial_state(
        resumed_env, lambda e: pytest.fail("the model should come from the handoff")
    )
    a, b = weights(state.model), weights(restored.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert restored.splits == state.splits and len(restored.splits["train"]) == 5
    assert restored.extras == {"note": "kept"}
    assert (resumed_env.next_row, resumed_env.last_values) == (3, third.last_values)
    assert resumed_env.events[0].startswith("restored what stage 2 s2 handed on (model: handoff/")
    # Stages 0-2 are skipped: the runner's stage function is not called for them.
    skipped = RunRecovery(run_dir, prepared, plan)
    for spec in exp.stages[:3]:
        assert skipped.run_stage(env, spec, restored, lambda *a: pytest.fail("ran")) is restored


def test_a_run_that_saved_nothing_starts_over_from_its_first_stage(tmp_path: Path) -> None:
    plan = plan_resume("r", tmp_path, experiment())
    assert (plan.position, plan.row, plan.step, plan.handoff, plan.completed) == (
        0,
        0,
        None,
        None,
        (),
    )
    assert plan.describe() == "stage 0 s0 (from its beginning)"


def test_plan_resume_refuses_a_handoff_whose_model_is_gone(tmp_path: Path) -> None:
    path = handoff_path(tmp_path, 0)
    path.parent.mkdir(parents=True)
    handoff = {
        "format": 1,
        "position": 0,
        "name": "s0",
        "plugin": "changes_model",
        "next_row": 1,
        "labels": ["a", "b"],
        "model": "stage-0/best",
        "best_checkpoint": "stage-0/best",
        "splits": None,
    }
    path.write_text(json.dumps(handoff))
    with pytest.raises(TuneboardError, match=r"stage-0/best \(the model stage 0 handed on\) is"):
        plan_resume("r", tmp_path, experiment())


def test_splits_round_trip_token_and_text_examples(tmp_path: Path) -> None:
    splits: Any = {
        "train": [TokenExample(("a", "b"), ("O", "B-X"), 0.5), TokenExample(("c",), None)],
        "test": toy_state().splits["test"][:2],
    }
    write_splits(tmp_path / "s.jsonl", splits)
    back = read_splits(tmp_path / "s.jsonl")
    assert back == splits
    assert [dataclasses.asdict(e) for e in back["test"]] == [
        dataclasses.asdict(e) for e in splits["test"]
    ]
