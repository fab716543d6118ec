"""The `contrastive` stage: fine-tune with the `supcon` strategy, then measure the embeddings.

It trains like `finetune` (the one training loop through `ctx.training.fit`: evaluation,
best checkpoint, early stopping, resume) with ``(1 - lam) * CE + lam * SupCon``, then logs
``val/centroid_accuracy``: how often a validation example's embedding is nearest (cosine) to
its own class's centroid of training embeddings. The best model is handed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuneboard import (
    SEQUENCE_CLASSIFICATION,
    ConfigError,
    PipelineState,
    Stage,
    StageContext,
    TrainParams,
)
from tuneboard_contrastive.centroids import centroid_accuracy, embed
from tuneboard_contrastive.supcon import SupCon, SupConParams

METRIC = "val/centroid_accuracy"


@dataclass
class ContrastiveParams(SupConParams, TrainParams):
    """Parameters of the `contrastive` stage: those of `finetune` (but `strategy`: it always
    trains with `supcon`) and those of the `supcon` strategy (temperature, lam, pooling)."""

    strategy: str = field(default="supcon", init=False)
    strategy_params: dict[str, Any] = field(default_factory=dict, init=False)


class Contrastive(Stage[ContrastiveParams]):
    """Supervised contrastive fine-tuning, then the nearest-centroid accuracy of the
    embeddings on the validation split."""

    name = "contrastive"
    Params = ContrastiveParams
    description = "Fine-tune with cross-entropy + supervised contrastive loss (SupCon)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train with `supcon`, log ``val/centroid_accuracy``, hand the best model on."""
        if state.task != SEQUENCE_CLASSIFICATION:
            raise ConfigError(f"contrastive trains sequence classification, not {state.task}")
        if state.model is None or state.tokenizer is None:
            raise ConfigError("contrastive: no model in the pipeline state")
        params = self.params
        result = ctx.training.fit(state, params, SupCon(SupConParams.of(params)))
        value = measure(ctx, state, params)
        ctx.log({METRIC: value}, result.steps)
        state.metrics[METRIC] = value
        ctx.event(f"{METRIC} {value:.4f} (best model, {params.pooling} pooling)")
        return state


def measure(ctx: StageContext, state: PipelineState, params: ContrastiveParams) -> float:
    """The nearest-centroid accuracy of `state.model`'s embeddings on the validation split,
    with centroids from the train split."""
    embeddings = {}
    for split in ("train", "validation"):
        features = ctx.training.features(state, split)
        vectors = embed(
            ctx,
            state.model,
            features,
            pooling=params.pooling,
            batch_size=params.eval_batch_size,
            precision=params.precision,
        )
        embeddings[split] = (vectors, features.labels)
    return centroid_accuracy(*embeddings["train"], *embeddings["validation"])
