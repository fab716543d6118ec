"""Loss sums and batched generation for generation tasks. torch is imported in the functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from tuneboard import IGNORE_INDEX, Features, GenerationParams, StageContext


def token_loss(
    ctx: StageContext,
    model: Any,
    features: Features,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    shift: bool,
) -> float:
    """Mean negative log-likelihood per labelled token over `features` (NaN when none).

    `shift`: a causal LM predicts token t+1 at position t; an encoder-decoder's logits line
    up with its labels already.
    """
    import torch
    import torch.nn.functional as F

    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    counted = 0
    model.eval()
    with torch.inference_mode():
        for batch in ctx.training.batches(features, batch_size):
            ctx.check_stop()
            labels = batch.pop("labels") if shift else batch["labels"]
            with autocast():
                # No cache: a decoder keeping one would ignore packed rows' position_ids.
                logits = model(**batch, use_cache=False).logits
            # Prompt tuning and P-tuning put virtual tokens before the input: their logits
            # come first and have no label.
            logits = logits[:, logits.shape[1] - labels.shape[1] :]
            if shift:
                logits, labels = logits[:, :-1], labels[:, 1:]
            total += F.cross_entropy(
                logits.float().flatten(0, 1),
                labels.flatten(),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            counted += int((labels != IGNORE_INDEX).sum())
    return total.item() / counted if counted else math.nan


def perplexity(loss: float) -> float:
    """exp(loss), infinite when that overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def generate(
    ctx: StageContext,
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    generation: GenerationParams,
    *,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    decoder_only: bool,
) -> list[str]:
    """Decode an output for each prompt (token ids), in order, longest prompts first.

    A decoder-only model gets its prompts padded on the left, so every output starts right
    after its prompt; only the new tokens are decoded.
    """
    import numpy as np
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = tokenizer.eos_token_id
    order = np.argsort([-len(p) for p in prompts], kind="stable")
    outputs: list[str] = [""] * len(prompts)
    options: dict[str, Any] = {
        "max_new_tokens": generation.max_new_tokens,
        "num_beams": generation.num_beams,
        "do_sample": generation.do_sample,
        "pad_token_id": pad,
    }
    if eos is not None:
        options["eos_token_id"] = eos
    if generation.do_sample:
        options.update(temperature=generation.temperature, top_p=generation.top_p)
    limit = _positions(model)
    model.eval()
    for start in range(0, len(order), batch_size):
        ctx.check_stop()
        rows = [list(prompts[i]) for i in order[start : start + batch_size]]
        if limit is not None and decoder_only:
            # Prompt and output share the model's positions: keep room for one new token
            # at least, and never ask for more new tokens than there are positions left.
            rows = [row[-(limit - 1) :] for row in rows]
            room = limit - max(len(r) for r in rows)
            options["max_new_tokens"] = min(generation.max_new_tokens, room)
        elif limit is not None:
            options["max_new_tokens"] = min(generation.max_new_tokens, limit - 1)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            span = slice(width - len(row), width) if decoder_only else slice(0, len(row))
            ids[r, span] = torch.tensor(row, dtype=torch.long)
            mask[r, span] = 1
        with torch.inference_mode(), autocast():
            out = model.generate(
                input_ids=ids.to(ctx.device), attention_mask=mask.to(ctx.device), **options
            )
        new = out[:, width:] if decoder_only else out
        texts = tokenizer.batch_decode(new.cpu(), skip_special_tokens=True)
        for i, text in zip(order[start : start + batch_size], texts, strict=True):
            outputs[int(i)] = text.strip()
    return outputs


def _positions(model: Any) -> int | None:
    """How many positions the model (its decoder) has, when it says (absolute position
    embeddings); None for models without such a limit in their config."""
    value = getattr(model.config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 1 else None
