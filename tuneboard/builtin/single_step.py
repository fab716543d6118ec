"""The `single_step` stage: one gradient update over the whole training split, the baseline
that multi-step runs are compared against."""

from __future__ import annotations

from dataclasses import dataclass

from tuneboard import (
    PRECISION_HELP,
    PipelineState,
    Precision,
    Stage,
    StageContext,
    TrainParams,
    param,
)


@dataclass
class SingleStepParams:
    """Parameters of the `single_step` stage."""

    lr: float = param(5e-5, "Learning rate of the one update (AdamW)", min=0, max=10)
    batch_size: int = param(
        16, "Examples per micro-batch (gradients add up over all)", min=1, max=65_536
    )
    eval_batch_size: int = param(64, "Examples per batch when evaluating", min=1, max=65_536)
    weight_decay: float = param(0.01, "AdamW weight decay", min=0, max=10)
    max_grad_norm: float = param(
        1.0, "Clip the gradient norm to this (0 = no clipping)", min=0, max=1_000_000
    )
    precision: Precision = param("auto", PRECISION_HELP)


class SingleStep(Stage[SingleStepParams]):
    """One gradient update over the whole training split: the baseline for multi-step runs."""

    name = "single_step"
    Params = SingleStepParams
    description = "One optimizer step on gradients of the whole training split (a baseline)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Accumulate gradients over the whole training split, take one step, evaluate."""
        p = self.params
        loop = TrainParams(
            epochs=1,
            batch_size=p.batch_size,
            eval_batch_size=p.eval_batch_size,
            lr=p.lr,
            weight_decay=p.weight_decay,
            warmup_ratio=0.0,
            scheduler="constant",
            max_grad_norm=p.max_grad_norm,
            grad_accum=0,  # the whole epoch is one optimizer step
            precision=p.precision,
        )
        ctx.training.fit(state, loop)
        return state
