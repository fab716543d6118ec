"""The `finetune` and `single_step` stages' work (imports torch through the training loop)."""

from __future__ import annotations

import dataclasses

from tuneboard.builtin.stages import FinetuneParams, SingleStepParams
from tuneboard.engine.training import TrainSettings, fit
from tuneboard.sdk.contracts import PipelineState, StageContext


def finetune_settings(params: FinetuneParams) -> TrainSettings:
    """The training-loop settings of a `finetune` stage."""
    values = dataclasses.asdict(params)
    del values["strategy"], values["strategy_params"]
    values["lora_targets"] = tuple(params.lora_targets)
    return TrainSettings(**values)


def run_finetune(params: FinetuneParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Fine-tune `state.model`; the best weights go on to the next stage."""
    strategy = ctx.strategy(params.strategy, params.strategy_params)
    fit(ctx, state, finetune_settings(params), strategy)
    return state


def run_single_step(
    params: SingleStepParams, ctx: StageContext, state: PipelineState
) -> PipelineState:
    """Accumulate gradients over the whole training split, take one step, evaluate."""
    settings = TrainSettings(
        epochs=1,
        batch_size=params.batch_size,
        eval_batch_size=params.eval_batch_size,
        lr=params.lr,
        weight_decay=params.weight_decay,
        warmup_ratio=0.0,
        scheduler="constant",
        max_grad_norm=params.max_grad_norm,
        grad_accum=0,  # the whole epoch is one optimizer step
        precision=params.precision,
    )
    fit(ctx, state, settings, ctx.strategy("standard"))
    return state
