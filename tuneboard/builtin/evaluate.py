"""The `evaluate` stage: loss and every configured metric of the current model on one split.

For sequence classification it also writes each example's prediction to
``predictions-<split>.jsonl`` in the stage's folder (a `predictions` artifact): what
`tuneboard review` and the app's Review screen read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneboard import (
    PRECISION_HELP,
    SEQUENCE_CLASSIFICATION,
    ConfigError,
    GenerationParams,
    PipelineState,
    Precision,
    Stage,
    StageContext,
    TextExample,
    param,
    split_prefix,
)
from tuneboard.builtin.predict import text_row, write_jsonl


@dataclass
class EvaluateParams:
    """Parameters of the `evaluate` stage."""

    split: Literal["test", "validation", "train"] = param("test", "Split to evaluate on")
    batch_size: int = param(64, "Examples per batch", min=1, max=65_536)
    precision: Precision = param("auto", PRECISION_HELP)
    predictions: bool = param(
        True,
        "Write each example's label, prediction and probabilities to predictions-<split>.jsonl "
        "in the stage's folder (what `tuneboard review` reads; sequence classification)",
    )
    max_new_tokens: int = param(
        64,
        "Generation tasks: longest output generated for the metrics, in tokens",
        min=1,
        max=8_192,
    )
    num_beams: int = param(1, "Generation tasks: beam search width (1 = greedy)", min=1, max=64)


class Evaluate(Stage[EvaluateParams]):
    """Loss and every configured metric of the current model on one split."""

    name = "evaluate"
    Params = EvaluateParams
    description = "Measure the current model on a split (test by default)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Evaluate on `split`, log ``<split>/<metric>`` values and keep them."""
        p = self.params
        if p.predictions and state.task == SEQUENCE_CLASSIFICATION:
            values = _evaluate_and_write(p, ctx, state)
        else:
            generation = GenerationParams(max_new_tokens=p.max_new_tokens, num_beams=p.num_beams)
            values = ctx.training.evaluate(
                state,
                p.split,
                batch_size=p.batch_size,
                precision=p.precision,
                generation=generation,
            )
        ctx.log(values, 0)
        ctx.progress(1, 1, f"evaluated on {p.split}")
        summary = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
        ctx.event(f"{p.split}: {summary}")
        state.metrics.update(values)
        return state


def _evaluate_and_write(
    params: EvaluateParams, ctx: StageContext, state: PipelineState
) -> dict[str, float]:
    """Score the split with one pass that keeps the probabilities, and write them."""
    if state.model is None or state.tokenizer is None:
        raise ConfigError("no model in the pipeline state (the run did not load one)")
    training = ctx.training
    features = training.features(state, params.split)
    result = training.predict(
        state.model,
        features,
        batch_size=params.batch_size,
        precision=params.precision,
        with_probabilities=True,
    )
    values = training.score(result, features, state.labels, split_prefix(params.split))
    assert result.probabilities is not None
    rows = [
        text_row(example, state.labels, int(label_id), probabilities)
        for example, label_id, probabilities in zip(
            state.splits[params.split], result.label_ids, result.probabilities, strict=True
        )
        if isinstance(example, TextExample)
    ]
    path = ctx.stage_dir / f"predictions-{params.split}.jsonl"
    write_jsonl(path, rows)
    ctx.artifact(path, "predictions")
    return values
