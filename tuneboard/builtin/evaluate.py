"""The `evaluate` stage's work (imports torch through the training loop)."""

from __future__ import annotations

from tuneboard.api import PipelineState, StageContext
from tuneboard.builtin.stages import EvaluateParams
from tuneboard.engine.data import split_prefix
from tuneboard.engine.training import evaluate


def run_evaluate(params: EvaluateParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Evaluate the current model on `params.split`, log and keep the values."""
    prefix = split_prefix(params.split)
    values = evaluate(
        ctx, state, params.split, prefix, batch_size=params.batch_size, precision=params.precision
    )
    ctx.log(values, 0)
    ctx.progress(1, 1, f"evaluated on {params.split}")
    summary = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
    ctx.event(f"{params.split}: {summary}")
    state.metrics.update(values)
    return state
