"""The training loop's resume checkpoints: a fit stopped in the middle and started again
goes on exactly as the same fit run without a stop (tiny BERT, one torch thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights

from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine import checkpoint
from tuneboard.engine.training import FitResult, TrainParams, fit
from tuneboard.sdk.contracts import NoParams
from tuneboard.sdk.errors import ConfigError, RunCancelled


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


# Dropout on, so the torch RNG state matters; 40 examples / 8 = 5 steps an epoch, 20 in all.
BASE: dict[str, Any] = {
    "batch_size": 8,
    "lr": 5e-3,
    "dropout": 0.1,
    "warmup_ratio": 0.2,
    "epochs": 4,
    "eval_every": 4,
    "log_every": 1,
}

Stop = Callable[[RecordingContext], bool]


def at_step(step: int) -> Stop:
    """Cancel once `step` was logged (at the next check: the next batch, or an evaluation)."""
    return lambda ctx: any(s == step for s, _ in ctx.series("train/loss"))


def run_fit(
    folder: Path, settings: dict[str, Any], stop: Stop | None = None
) -> tuple[FitResult | None, RecordingContext, Any]:
    ctx = RecordingContext(folder)
    if stop is not None:
        ctx.stop_when(stop)
    state = toy_state()  # the same seeded start every time
    try:
        result = fit(ctx, state, TrainParams(**settings), StandardStrategy(NoParams()))
    except RunCancelled:
        return None, ctx, state
    return result, ctx, state


def deterministic(ctx: RecordingContext) -> list[tuple[int, str, float]]:
    """Every logged value but the timing one, flattened."""
    return [
        (step, name, value)
        for step, values in ctx.logs
        for name, value in sorted(values.items())
        if name != "train/samples_per_s"
    ]


CASES = {
    # Cancelled between two optimizer steps: a checkpoint is written at the cancel.
    "cancel-between-steps": ({}, at_step(6), 6),
    # Cancelled inside the evaluation at step 8: the checkpoint of the evaluation at 4 is used.
    "cancel-in-evaluation": ({}, at_step(8), 4),
    "ema-accumulation-grouping": (
        {"ema_decay": 0.9, "grad_accum": 2, "group_by_length": True, "eval_every": 0},
        at_step(4),
        4,
    ),
    "lora-early-stopping": ({"train": "lora", "patience": 1, "lr": 5e-2}, at_step(5), 5),
    # A kept adapter: the checkpoint holds the virtual tokens and the head, not the base.
    "prompt-tuning": ({"train": "prompt", "num_virtual_tokens": 4, "lr": 5e-2}, at_step(6), 6),
}


@pytest.mark.parametrize("case", CASES)
def test_a_stopped_fit_resumes_to_the_uninterrupted_result(tmp_path: Path, case: str) -> None:
    extra, stop, resumed_at = CASES[case]
    settings = {**BASE, **extra}
    whole, whole_ctx, whole_state = run_fit(tmp_path / "whole", settings)
    assert whole is not None

    stopped, first_ctx, _ = run_fit(tmp_path / "resumed", settings, stop)
    assert stopped is None
    stage_dir = first_ctx.stage_dir
    folder = checkpoint.latest(stage_dir)
    assert folder is not None and folder.name == f"resume-{resumed_at:08d}"
    assert [p.name for p in stage_dir.iterdir()] == [folder.name]  # only the latest is kept

    result, ctx, state = run_fit(tmp_path / "resumed", settings)
    assert result is not None
    # The series goes on from the step after the checkpoint, exactly as without the stop.
    expected = [row for row in deterministic(whole_ctx) if row[0] > resumed_at]
    assert deterministic(ctx) == expected
    assert ctx.logs[0][0] == resumed_at + 1
    assert ("info", f"resumed training at step {resumed_at}") == (
        ctx.events[0][0],
        ctx.events[0][1].split(" (")[0],
    )
    assert (result.steps, result.stopped_early) == (whole.steps, whole.stopped_early)
    assert (result.best_step, result.best_value) == (whole.best_step, whole.best_value)
    assert result.history == whole.history
    assert ctx.best == whole_ctx.best
    a, b = weights(whole_state.model), weights(state.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert checkpoint.latest(stage_dir) is None  # removed once the stage is done
    assert sorted(p.name for p in stage_dir.iterdir()) == ["best"]


def test_a_checkpoint_for_other_data_is_refused(tmp_path: Path) -> None:
    stopped, ctx, _ = run_fit(tmp_path, BASE, at_step(3))
    assert stopped is None and checkpoint.latest(ctx.stage_dir) is not None
    state = toy_state(n_train=48)
    with pytest.raises(ConfigError, match=r"written for other data or settings \(total 20 -> 24"):
        fit(RecordingContext(tmp_path), state, TrainParams(**BASE), StandardStrategy(NoParams()))


def test_writing_is_atomic_and_keeps_only_the_latest(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()

    def write(step: int) -> Path:
        return checkpoint.write(
            tmp_path,
            step,
            model=model,
            trainer={"optimizer": optimizer.state_dict(), "rng": {"torch": torch.get_rng_state()}},
            best={"weight": model.weight},
            ema={},
            meta={"step": step},
        )

    write(5)
    # A kill while writing step 9 leaves a temporary folder and the previous checkpoint.
    broken = tmp_path / ".resume-00000009.tmp"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"half")
    assert checkpoint.latest(tmp_path) == tmp_path / "resume-00000005"
    assert checkpoint.read_meta(tmp_path / "resume-00000005")["step"] == 5

    newest = write(9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume-00000009"]
    assert checkpoint.latest(tmp_path) == newest
    assert set(checkpoint.load_tensors(newest, checkpoint.BEST, "cpu")) == {"weight"}
    assert checkpoint.load_tensors(newest, checkpoint.EMA, "cpu") == {}
    trainer = checkpoint.load_trainer(newest)
    assert trainer["optimizer"]["state"][0]["exp_avg"].shape == (2, 3)

    checkpoint.clear(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_pickled_object_in_the_trainer_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "resume-00000001"
    folder.mkdir()
    torch.save({"optimizer": Path("x")}, folder / checkpoint.TRAINER)  # not tensors/plain
    with pytest.raises(Exception, match=r"[Ww]eights only load failed|Unsupported global"):
        checkpoint.load_trainer(folder)


def test_resumable_off_writes_no_checkpoint(tmp_path: Path) -> None:
    stopped, ctx, _ = run_fit(tmp_path, {**BASE, "resumable": False}, at_step(9))
    assert stopped is None
    assert list(ctx.stage_dir.iterdir()) == []
