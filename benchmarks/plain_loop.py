"""A plain PyTorch fine-tuning loop: the baseline tuneboard's `finetune` stage is measured against.

Nothing but torch and the model: fused AdamW with weight decay 0.01 on everything but biases and
LayerNorm weights, linear warm-up then linear decay, gradient clipping at 1.0, dynamic padding
per batch (or padding to `max_length`), evaluation longest-first with batches of 64, and the
final model saved. It sees its batches in the same seeded order as tuneboard (a numpy
permutation per epoch), so both pad the same batches and the comparison measures overhead,
not the luck of the draw.

With `best` it is the fastest plain loop we know how to write for a GPU: the losses stay on
the device until the end (no host synchronisation per step), batches are pinned and copied
without blocking, and on CUDA their width is rounded up to a multiple of 8 (as tuneboard's
default ``pad_to_multiple_of = "auto"`` does).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

Example = tuple[int, str]  # (label id, text)


@dataclass(frozen=True)
class Hyper:
    """The hyperparameters every contender of the training benchmark uses."""

    epochs: int = 1
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    # tuneboard's default `max_length`, and the `max_seq_length` (padded to, by default) of
    # the Hugging Face text-classification example that the Trainer's default set-up follows.
    max_length: int = 128
    seed: int = 13


def encode(tokenizer: Any, examples: Sequence[Example], max_length: int) -> list[torch.Tensor]:
    """Token ids of each text, truncated to `max_length`, unpadded."""
    ids = tokenizer([text for _, text in examples], truncation=True, max_length=max_length)
    return [torch.tensor(row) for row in ids["input_ids"]]


def collate(pad_id: int, pad_to: int | None, multiple: int = 1) -> Any:
    """A collate function: pad a batch to its longest row rounded up to a multiple of
    `multiple` (or to `pad_to`) and build the mask."""

    def pad(batch: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
        rows = [ids for ids, _ in batch]
        input_ids = pad_sequence(rows, batch_first=True, padding_value=pad_id)
        width = pad_to if pad_to is not None else -(-input_ids.shape[1] // multiple) * multiple
        if input_ids.shape[1] < width:
            input_ids = torch.nn.functional.pad(
                input_ids, (0, width - input_ids.shape[1]), value=pad_id
            )
        lengths = torch.tensor([len(ids) for ids in rows])
        attention_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
        labels = torch.tensor([label for _, label in batch])
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    return pad


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: no weight decay on biases and LayerNorm weights."""
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    named = list(model.named_parameters())
    return [
        {
            "params": [p for n, p in named if not n.endswith(no_decay)],
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]


def linear_warmup_decay(warmup: int, total: int) -> Any:
    """The multiplier of a linear warm-up over `warmup` steps, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def train_and_evaluate(
    model: Any,
    tokenizer: Any,
    train: Sequence[Example],
    dev: Sequence[Example],
    hyper: Hyper,
    *,
    pad_to_max: bool,
    save_to: Path,
    device: str = "cpu",
    best: bool = False,
) -> dict[str, Any]:
    """Fine-tune `model` on `train`, measure accuracy on `dev`, save it; return the figures.

    The returned ``seconds`` cover tokenisation, training, evaluation and saving. `best`:
    the GPU-minded loop of the module's docstring.
    """
    started = time.perf_counter()
    torch.manual_seed(hyper.seed)
    pad_id = tokenizer.pad_token_id or 0
    cuda = device.startswith("cuda")
    multiple = 8 if best and cuda else 1
    pad = collate(pad_id, hyper.max_length if pad_to_max else None, multiple)
    train_set = list(
        zip(encode(tokenizer, train, hyper.max_length), [y for y, _ in train], strict=True)
    )
    dev_set = list(zip(encode(tokenizer, dev, hyper.max_length), [y for y, _ in dev], strict=True))

    model.to(device)
    # On a GPU: bf16 autocast where supported, as tuneboard's precision "auto" does. The fused
    # AdamW everywhere (one kernel for all parameters), as tuneboard and the Trainer use.
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cuda and torch.cuda.is_bf16_supported()
        else contextlib.nullcontext()
    )
    optimizer = torch.optim.AdamW(decay_groups(model, hyper.weight_decay), lr=hyper.lr, fused=True)
    total = hyper.epochs * -(-len(train_set) // hyper.batch_size)
    warmup = int(np.ceil(hyper.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(warmup, total))

    losses: list[Any] = []
    tokens = 0
    model.train()
    for epoch in range(hyper.epochs):
        # tuneboard's order for this epoch; a generator of its own keeps the global RNG (dropout)
        # in step with tuneboard's too.
        order = np.random.default_rng(hyper.seed + epoch).permutation(len(train_set)).tolist()
        loader = DataLoader(
            train_set,
            batch_size=hyper.batch_size,
            sampler=order,
            collate_fn=pad,
            generator=torch.Generator().manual_seed(hyper.seed),
            pin_memory=best and cuda,
        )
        for batch in loader:
            batch = {k: v.to(device, non_blocking=cuda) for k, v in batch.items()}
            tokens += batch["input_ids"].numel()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hyper.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach() if best else loss.item())

    if best:
        losses = torch.stack(losses).tolist()
    with autocast:
        accuracy = evaluate(model, dev_set, pad, hyper.eval_batch_size, device)
    model.save_pretrained(save_to)
    tokenizer.save_pretrained(save_to)
    return {
        "seconds": time.perf_counter() - started,
        "accuracy": accuracy,
        "steps": len(losses),
        "train_loss_mean": float(np.mean(losses)),
        "train_loss_last": losses[-1],
        "train_tokens": tokens,
    }


def evaluate(
    model: Any, dev_set: list[tuple[torch.Tensor, int]], pad: Any, batch_size: int, device: str
) -> float:
    """Accuracy on `dev_set`, longest rows first so each batch pads little."""
    order = sorted(range(len(dev_set)), key=lambda i: -len(dev_set[i][0]))
    loader = DataLoader(dev_set, batch_size=batch_size, sampler=order, collate_fn=pad)
    correct = 0
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
    return correct / len(dev_set)
