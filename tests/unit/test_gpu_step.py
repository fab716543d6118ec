"""The GPU step close to the hardware, checked on the CPU: step losses read at log points only,
a non-finite step dropped on the device as on the host, batch widths rounded up to a multiple,
batches built ahead on a thread, and `compile = true` falling back when compiling fails.

torch.compile itself works here but takes minutes for the tiny BERT on two cores, so the test
of `compile = true` breaks the C++ compiler it needs and checks the fallback."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import RecordingContext, one_torch_thread, toy_state, weights

from tuneboard import Features
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine.data import batches, pad_multiple, prefetched
from tuneboard.engine.training import TrainParams, fit
from tuneboard.sdk.contracts import NoParams, TrainStep
from tuneboard.sdk.errors import ConfigError, DataError
from tuneboard.sdk.params import build_params
from tuneboard.sdk.training import NonFiniteLoss


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


FAST = {"batch_size": 8, "lr": 5e-3, "dropout": 0.0, "warmup_ratio": 0.0}
"""40 toy examples in batches of 8: 5 optimizer steps an epoch."""


class Losses(StandardStrategy):
    """The standard step, keeping each loss it returns and the weights after each optimizer
    step; the loss is NaN at the micro-batches in `nan_at` (1-based), returned as a tensor
    or, with `as_float`, as a float."""

    def __init__(self, nan_at: frozenset[int] = frozenset(), as_float: bool = False) -> None:
        super().__init__(NoParams())
        self.nan_at, self.as_float = nan_at, as_float
        self.losses: list[float] = []
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def step(self, inputs: TrainStep) -> Any:
        loss = inputs.forward(inputs.batch).loss
        if len(self.losses) + 1 in self.nan_at:
            loss = loss * float("nan")
        inputs.backward(loss)
        self.losses.append(float(loss.detach()))
        return float(loss.detach()) if self.as_float else loss.detach()

    def after_optimizer_step(self, model: Any) -> None:
        self.snapshots.append(weights(model))


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(value, after[name]) for name, value in before.items())


# --- losses on the device -----------------------------------------------------------------


def test_train_loss_is_read_at_log_points_and_logged_for_every_step(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path)
    seen: list[tuple[int, int]] = []  # (step, optimizer steps reported done) per train/loss
    ctx.on_log = lambda step, values: (
        seen.append((step, len(ctx.progress_calls))) if "train/loss" in values else None
    )
    strategy = Losses()
    result = fit(ctx, toy_state(), TrainParams(**{**FAST, "epochs": 2, "log_every": 3}), strategy)
    assert result.steps == 10
    # Log points: every 3 steps and each epoch's end (5, 10); a point logs the losses of the
    # steps since the last one, before it reports its own step done.
    assert seen == [(1, 2), (2, 2), (3, 2), (4, 4), (5, 4), (6, 5), (7, 8), (8, 8), (9, 8), (10, 9)]
    assert [v for _, v in ctx.series("train/loss")] == strategy.losses
    assert [s for s, _ in ctx.series("train/lr")] == [3, 5, 6, 9, 10]


@pytest.mark.parametrize(
    ("as_float", "extra"),
    [(False, {}), (True, {}), (False, {"ema_decay": 0.9})],
    ids=["on-the-device", "float-loss", "read-each-step"],
)
def test_a_non_finite_step_is_dropped_and_keeps_its_place(
    tmp_path: Path, as_float: bool, extra: dict[str, Any]
) -> None:
    ctx = RecordingContext(tmp_path)
    strategy = Losses(frozenset({2}), as_float)
    settings = TrainParams(**{**FAST, "epochs": 1, "nan_policy": "skip", **extra})
    result = fit(ctx, toy_state(), settings, strategy)
    assert result.steps == 5
    assert len(strategy.snapshots) == 5
    assert not changed(strategy.snapshots[0], strategy.snapshots[1])  # step 2: no update
    assert changed(strategy.snapshots[1], strategy.snapshots[2])
    assert [s for s, _ in ctx.series("train/loss")] == [1, 3, 4, 5]
    warnings = [message for level, message in ctx.events if level == "warning"]
    assert any(m.startswith("skipped step 2: the training loss is nan") for m in warnings)


def test_the_device_skip_trains_exactly_as_the_host_skip(tmp_path: Path) -> None:
    final = []
    for as_float in (False, True):
        state = toy_state()
        settings = TrainParams(**{**FAST, "epochs": 1, "nan_policy": "skip"})
        ctx = RecordingContext(tmp_path / str(as_float))
        fit(ctx, state, settings, Losses(frozenset({2}), as_float))
        final.append(weights(state.model))
    assert not changed(*final)


@pytest.mark.parametrize(
    ("nan_at", "policy", "message"),
    [
        ({2}, "stop", "the training loss is nan at step 2; stopped"),
        (set(range(1, 100)), "skip", r"for 10 steps in a row \(up to step 10\)"),
    ],
)
def test_non_finite_losses_read_later_still_stop_at_their_step(
    tmp_path: Path, nan_at: set[int], policy: str, message: str
) -> None:
    ctx = RecordingContext(tmp_path)
    settings = TrainParams(**{**FAST, "epochs": 3, "log_every": 20, "nan_policy": policy})
    with pytest.raises(NonFiniteLoss, match=message):
        fit(ctx, toy_state(), settings, Losses(frozenset(nan_at)))
    finite = [s for s, _ in ctx.series("train/loss")]
    assert finite == ([1] if policy == "stop" else [])


# --- batches ------------------------------------------------------------------------------


def features(lengths: list[int]) -> Features:
    width = max(lengths)
    ids = np.array([[1] * n + [0] * (width - n) for n in lengths], np.int64)
    return Features(ids, np.array(lengths, np.int64), np.zeros(len(lengths), np.int64), None, 0)


def test_batch_widths_round_up_to_the_multiple_within_the_padded_width() -> None:
    data = features([3, 9, 17, 5])
    order = np.arange(4)
    rounded = list(batches(data, 1, order, "cpu", 8))
    assert [b["input_ids"].shape[1] for b in rounded] == [8, 16, 17, 8]
    assert [int(b["attention_mask"].sum()) for b in rounded] == [3, 9, 17, 5]
    assert [int(b["input_ids"].sum()) for b in rounded] == [3, 9, 17, 5]  # padded with pad_id
    plain = [b["input_ids"].shape[1] for b in batches(data, 1, order, "cpu")]
    assert plain == [3, 9, 17, 5]
    assert pad_multiple("auto", "cuda:0") == 8
    assert pad_multiple("auto", "cpu") == 1
    assert pad_multiple(4, "cpu") == 4


def test_padding_to_a_multiple_leaves_the_results_alone(tmp_path: Path) -> None:
    series = []
    for multiple in (1, 8):
        ctx = RecordingContext(tmp_path / str(multiple))
        settings = TrainParams(**{**FAST, "epochs": 2, "pad_to_multiple_of": multiple})
        fit(ctx, toy_state(), settings, StandardStrategy(NoParams()))
        series.append([v for _, v in ctx.series("train/loss") + ctx.series("val/loss")])
    assert series[1] == pytest.approx(series[0], rel=1e-4)


def test_prefetched_keeps_the_order_raises_errors_and_stops_its_thread() -> None:
    assert list(prefetched(iter(range(100)))) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise DataError("bad row")

    ahead = prefetched(failing())
    assert next(ahead) == 1
    with pytest.raises(DataError, match="bad row"):
        next(ahead)
    endless = prefetched(itertools.count())
    assert next(endless) == 0
    endless.close()
    assert not [t for t in threading.enumerate() if t.name == "tuneboard-batches"]


# --- compile and the new keys -------------------------------------------------------------


def test_compile_and_pad_keys_are_validated() -> None:
    where = "tuneboard.toml: [experiments.x.stages.0] (finetune)"
    assert build_params(TrainParams, {}, where).pad_to_multiple_of == "auto"
    assert build_params(TrainParams, {"pad_to_multiple_of": 16}, where).pad_to_multiple_of == 16
    assert build_params(TrainParams, {"compile": True}, where).compile
    bad = [
        ({"compile": "yes"}, "key 'compile'"),
        ({"pad_to_multiple_of": 0}, "key 'pad_to_multiple_of' must be >= 1, got 0"),
        ({"pad_to_multiple_of": "eight"}, "key 'pad_to_multiple_of'"),
    ]
    for values, message in bad:
        with pytest.raises(ConfigError, match=message):
            build_params(TrainParams, values, where)


@pytest.mark.slow
def test_compile_that_fails_trains_uncompiled_with_a_warning(tmp_path: Path) -> None:
    import torch._inductor.config as inductor

    results = []
    for compile_ in (False, True):
        ctx = RecordingContext(tmp_path / str(compile_))
        settings = TrainParams(**{**FAST, "epochs": 1, "compile": compile_})
        with inductor.patch({"cpp.cxx": (None, "/nonexistent/c++")}):
            fit(ctx, toy_state(), settings, StandardStrategy(NoParams()))
        results.append(ctx)
    plain, compiled = results
    warnings = [message for level, message in compiled.events if level == "warning"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("compile = true: torch.compile failed (")
    assert warnings[0].endswith("training without compiling")
    assert compiled.series("val/loss") == plain.series("val/loss")
