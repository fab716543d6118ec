"""The `repeat` stage: run the stages before it again, round after round, keeping the best.

The stages just before `repeat` (the last `stages` of them, or those from `from_stage` on)
have run once when it starts: that is round 1. Each further round runs them again through
`StageContext.run_stages`, so each round's stages are stage rows of their own
(``finetune · round 2``) with their metrics, events and checkpoints. A round starts from the
best model so far: after a round that did not improve `metric`, the best round's model is
put back first. The rounds stop when `metric` reaches `target`, after `rounds` more rounds, or
after `patience` rounds without improvement; the best round's model goes on to the next
stage. No torch import: models are copied with `copy.deepcopy`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal

from tuneboard import ConfigError, PipelineState, Stage, StageContext, param


@dataclass
class RepeatParams:
    """Parameters of the `repeat` stage."""

    stages: int = param(
        1, "How many of the stages just before this one make a round", min=1, max=1_000
    )
    from_stage: str = param(
        "", "Or: the name of the first stage of a round (it and the stages after it, up to here)"
    )
    rounds: int = param(2, "Most rounds to run after the first pass (round 1)", min=1, max=1000)
    metric: str = param(
        "", "Value compared between rounds, as a round leaves it (empty = val/<first metric>)"
    )
    target: float | None = param(
        None, "Stop once a round's metric reaches this (unset = run every round)"
    )
    mode: Literal["auto", "max", "min"] = param(
        "auto", "Whether the metric should go up or down (auto = from the metric)"
    )
    patience: int = param(
        0, "Stop after this many rounds in a row without improvement (0 = never)", min=0, max=1_000
    )
    min_delta: float = param(
        0.0, "Smallest improvement of the metric that counts", min=0, max=1_000_000
    )


@dataclass
class _Best:
    """The best round so far: its number, metric value and a copy of what it handed on."""

    round: int
    value: float
    model: Any
    checkpoint: Any
    metrics: dict[str, float]


class Repeat(Stage[RepeatParams]):
    """Run a group of earlier stages again until a target is reached or the rounds run out."""

    name = "repeat"
    Params = RepeatParams
    description = "Run the stages before it again, each round from the best so far, to a target"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Run the rounds; hand on the best round's model."""
        return run_repeat(self.params, ctx, state)


def round_positions(params: RepeatParams, pipeline: tuple[str, ...], here: int) -> list[int]:
    """The pipeline positions of the stages a round runs."""
    if params.from_stage:
        named = [i for i, name in enumerate(pipeline[:here]) if name == params.from_stage]
        if not named:
            before = ", ".join(pipeline[:here]) or "none"
            raise ConfigError(
                f"repeat: key 'from_stage': no stage {params.from_stage!r} before it "
                f"(stages before it: {before})"
            )
        if len(named) > 1:
            raise ConfigError(
                f"repeat: key 'from_stage': {len(named)} stages before it are named "
                f"{params.from_stage!r}; give them distinct names"
            )
        first = named[0]
    else:
        first = here - params.stages
        if first < 0:
            raise ConfigError(
                f"repeat: key 'stages' is {params.stages} but only {here} stages come before it"
            )
    return list(range(first, here))


def run_repeat(params: RepeatParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Run rounds 2, 3, ... of the stages before this one; see the module's docstring."""
    positions = round_positions(params, ctx.pipeline, ctx.pipeline_index)
    metric = params.metric or (f"val/{ctx.metric_names[0]}" if ctx.metric_names else "val/loss")
    higher = ctx.higher_is_better(metric) if params.mode == "auto" else params.mode == "max"
    group = ", ".join(ctx.pipeline[i] for i in positions)

    value = _measured(state, metric, 1, group)
    best = _Best(1, value, None, state.best_checkpoint, dict(state.metrics))
    ctx.log({"repeat/value": value, "repeat/best": value}, 1)
    ctx.event(f"round 1 ({group}): {metric} = {value:.4f}")
    last, stale = 1, 0
    for number in range(2, params.rounds + 2):
        if params.target is not None and _reached(best.value, params.target, higher):
            ctx.event(f"target {metric} {'>=' if higher else '<='} {params.target} reached")
            break
        if params.patience and stale >= params.patience:
            ctx.event(f"no improvement of {metric} in {stale} rounds: stopping")
            break
        ctx.check_stop()
        ctx.progress(number - 2, params.rounds, f"round {number}")
        if best.round == last:
            best.model = _copy_model(state.model)  # to come back to if this round is worse
        else:
            _restore(best, state, ctx.device)  # a round starts from the best model so far
        state.metrics.pop(metric, None)
        state = ctx.run_stages(positions, state, f" · round {number}")
        last = number
        value = _measured(state, metric, number, group)
        if _better(value, best.value, higher, params.min_delta):
            best, stale = _Best(number, value, None, state.best_checkpoint, dict(state.metrics)), 0
        else:
            stale += 1
        ctx.log({"repeat/value": value, "repeat/best": best.value}, number)
        ctx.event(f"round {number}: {metric} = {value:.4f} (best: round {best.round})")
    ctx.progress(params.rounds, params.rounds, f"{last} rounds run")
    if best.round != last:
        _restore(best, state, ctx.device)
    ctx.report_best(best.round, best.value, metric)
    ctx.event(f"best {metric} = {best.value:.4f} in round {best.round}; its model goes on")
    return state


def _measured(state: PipelineState, metric: str, number: int, group: str) -> float:
    value = state.metrics.get(metric)
    if value is None:
        found = ", ".join(sorted(state.metrics)) or "nothing"
        raise ConfigError(
            f"repeat: round {number} ({group}) did not measure {metric!r} (measured: {found}); "
            "set key 'metric', or make the round end with a stage that measures it"
        )
    return float(value)


def _reached(value: float, target: float, higher: bool) -> bool:
    return value >= target if higher else value <= target


def _better(value: float, best: float, higher: bool, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best + min_delta if higher else value < best - min_delta


def _copy_model(model: Any) -> Any:
    """A copy of `model` kept on the CPU (None stays None)."""
    if model is None:
        return None
    copied = copy.deepcopy(model)
    return copied.to("cpu") if hasattr(copied, "to") else copied


def _restore(best: _Best, state: PipelineState, device: str) -> None:
    """Put the best round's model, checkpoint and values back into `state` (a copy of the
    model, so the kept one stays as it was)."""
    model = copy.deepcopy(best.model)
    state.model = model.to(device) if hasattr(model, "to") else model
    state.best_checkpoint = best.checkpoint
    state.metrics = dict(best.metrics)
