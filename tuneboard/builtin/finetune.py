"""The `finetune` stage: multi-step fine-tuning with evaluation, best checkpoint and early
stopping, on the one training loop (`ctx.training.fit`). Its parameters are `TrainParams`."""

from __future__ import annotations

from tuneboard import PipelineState, Stage, StageContext, TrainParams


class Finetune(Stage[TrainParams]):
    """Multi-step fine-tuning with evaluation, best checkpoint and early stopping."""

    name = "finetune"
    Params = TrainParams
    description = "Fine-tune with warm-up and decay, keep the best checkpoint, stop early"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train, then hand the best weights on."""
        ctx.training.fit(state, self.params)
        return state
