"""The `evaluate` stage's work (imports torch through the training loop).

For sequence classification it also writes each example's prediction to
``predictions-<split>.jsonl`` in the stage's folder (a `predictions` artifact): what
`tuneboard review` and the app's Review screen read.
"""

from __future__ import annotations

from tuneboard.builtin.predict import text_row, write_jsonl
from tuneboard.builtin.stages import EvaluateParams
from tuneboard.engine.data import split_features, split_prefix
from tuneboard.engine.training import autocast_dtype, evaluate, predict, score
from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    PipelineState,
    StageContext,
    TextExample,
)
from tuneboard.sdk.errors import ConfigError


def run_evaluate(params: EvaluateParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Evaluate the current model on `params.split`, log and keep the values."""
    prefix = split_prefix(params.split)
    if params.predictions and state.task == SEQUENCE_CLASSIFICATION:
        values = _evaluate_and_write(params, ctx, state, prefix)
    else:
        values = evaluate(
            ctx,
            state,
            params.split,
            prefix,
            batch_size=params.batch_size,
            precision=params.precision,
        )
    ctx.log(values, 0)
    ctx.progress(1, 1, f"evaluated on {params.split}")
    summary = ", ".join(f"{name} {value:.4f}" for name, value in values.items())
    ctx.event(f"{params.split}: {summary}")
    state.metrics.update(values)
    return state


def _evaluate_and_write(
    params: EvaluateParams, ctx: StageContext, state: PipelineState, prefix: str
) -> dict[str, float]:
    """Score the split with one pass that keeps the probabilities, and write them."""
    if state.model is None or state.tokenizer is None:
        raise ConfigError("no model in the pipeline state (the run did not load one)")
    features = split_features(state, params.split, ctx.max_length)
    state.model.to(ctx.device)
    result = predict(
        state.model,
        features,
        batch_size=params.batch_size,
        device=ctx.device,
        dtype=autocast_dtype(params.precision, ctx.device),
        with_probabilities=True,
        check_stop=ctx.check_stop,
    )
    values = score(ctx, result, features, state.labels, prefix)
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
