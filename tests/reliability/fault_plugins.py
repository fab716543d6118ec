"""Plugins that misbehave on purpose; tests copy this file into a project's `plugins/` folder.

- `ticker` logs two metrics per step at a steady pace (no model work), so a test knows
  exactly what was logged when;
- `marked_finetune` is the built-in `finetune` whose every `ctx.log` is also written to a
  marker file;
- `fail` raises the error its `kind` names (an exception, CUDA out of memory, a full disk);
- `disk_full` fine-tunes, then hits "No space left on device" while saving its checkpoint;
- `nan_at` is a training-step strategy whose loss becomes NaN from a given step on;
- `late_tokens` is a dataset that loads fine but cannot be encoded when the run starts.

Marker lines (when the environment variable `TB_MARKER` names a file) are
``<epoch time> <run id> <stage index> <step> <name>,<name>...``, written after the values
were handed to `ctx.log`.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuneboard import (
    Dataset,
    DatasetContext,
    PipelineState,
    Splits,
    Stage,
    StageContext,
    Strategy,
    TokenExample,
    TrainParams,
    TrainStep,
    hookimpl,
    param,
)


def _mark(run_id: str, stage_index: int, step: int, names: Mapping[str, float]) -> None:
    marker = os.environ.get("TB_MARKER")
    if not marker:
        return
    line = f"{time.time():.6f} {run_id} {stage_index} {step} {','.join(names)}\n"
    fd = os.open(marker, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class _MarkingContext:
    """Passes everything to the real context; writes a marker line after each `log`."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._ctx.log(metrics, step)
        _mark(self._ctx.run_id, self._ctx.stage_index, step, metrics)


@dataclass
class TickerParams:
    """Parameters of `ticker`."""

    points: int = param(100, "Steps to log", min=1)
    interval: float = param(0.01, "Seconds between steps", min=0)
    stop_file: str = param("", "Stop early once this file exists (empty: never)")


class Ticker(Stage[TickerParams]):
    """Logs `tick/value` and `tick/square` every `interval` seconds, checking for cancel."""

    name = "ticker"
    Params = TickerParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Log the points, then hand the state on unchanged."""
        p = self.params
        for step in range(1, p.points + 1):
            ctx.check_stop()
            if p.stop_file and Path(p.stop_file).exists():
                break
            values = {"tick/value": float(step), "tick/square": float(step * step)}
            ctx.log(values, step)
            _mark(ctx.run_id, ctx.stage_index, step, values)
            ctx.progress(step, p.points)
            time.sleep(p.interval)
        return state


class MarkedFinetune(Stage[TrainParams]):
    """The built-in `finetune`, with a marker line for every logged step."""

    name = "marked_finetune"
    Params = TrainParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Fine-tune through a context that marks each `log`."""
        from tuneboard.builtin.finetune import Finetune

        marking: Any = _MarkingContext(ctx)
        return Finetune(self.params).run(marking, state)


@dataclass
class FailParams:
    """Parameters of `fail`."""

    kind: Literal["error", "cuda_oom", "cuda_oom_runtime", "disk_full"] = param(
        "error", "Which failure to raise"
    )


class Fail(Stage[FailParams]):
    """Raises the failure its `kind` names."""

    name = "fail"
    Params = FailParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Raise."""
        kind = self.params.kind
        if kind == "cuda_oom":
            import torch

            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total)"
            )
        if kind == "cuda_oom_runtime":
            raise RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB")
        if kind == "disk_full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(ctx.stage_dir))
        raise ValueError("the stage blew up on purpose")


class DiskFull(Stage[TrainParams]):
    """Fine-tunes, then finds the disk full when it saves the best checkpoint."""

    name = "disk_full"
    Params = TrainParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train with a model whose `save_pretrained` raises ENOSPC."""
        from tuneboard.builtin.finetune import Finetune

        def no_space(folder: Any, *args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))

        assert state.model is not None
        state.model.save_pretrained = no_space
        return Finetune(self.params).run(ctx, state)


@dataclass
class NanParams:
    """Parameters of `nan_at`."""

    call: int = param(2, "From this micro-batch on (1-based) the loss is NaN", min=1)
    calls: int = param(1, "For this many micro-batches", min=1)


class NanAt(Strategy[NanParams]):
    """The standard step, except that the loss is NaN for `calls` micro-batches from `call`."""

    name = "nan_at"
    Params = NanParams

    def __init__(self, params: NanParams) -> None:
        super().__init__(params)
        self.calls = 0

    def step(self, inputs: TrainStep) -> float:
        """Forward and backward; poison the loss in the chosen micro-batches."""
        self.calls += 1
        loss = inputs.forward(inputs.batch).loss
        if self.params.call <= self.calls < self.params.call + self.params.calls:
            loss = loss * float("nan")
        inputs.backward(loss)
        return float(loss.detach())


@dataclass
class LateParams:
    """Parameters of `late_tokens`."""

    examples: int = param(40, "Examples per split", min=2)


class LateTokens(Dataset[LateParams]):
    """Loads token examples for a text task: accepted at load, refused when encoded."""

    name = "late_tokens"
    Params = LateParams

    def load(self, ctx: DatasetContext) -> Splits:
        """Token examples with sentence-level labels."""
        rows: list[Any] = [
            TokenExample(tokens=("good", "film"), tags=("pos", "pos"))
            if i % 2
            else TokenExample(tokens=("bad", "film"), tags=("neg", "neg"))
            for i in range(self.params.examples)
        ]
        return {"train": rows, "validation": list(rows[:10]), "test": list(rows[:10])}


@hookimpl
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Register the test stages."""
    for stage in (Ticker, MarkedFinetune, Fail, DiskFull):
        register(stage)


@hookimpl
def register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Register the test strategy."""
    register(NanAt)


@hookimpl
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    """Register the test dataset."""
    register(LateTokens)
