"""The Hugging Face `Trainer` contender of the training benchmark.

Two set-ups: its best (`dynamic=True`: `DataCollatorWithPadding` pads each batch to its longest
row and ``train_sampling_strategy="group_by_length"``, the 5.x name of ``group_by_length=True``,
batches rows of similar length), and its default (`dynamic=False`: every row tokenised with
``padding="max_length"`` to `Hyper.max_length` = 128, random batches, as in the Hugging Face
text-classification example, whose defaults are ``pad_to_max_length=True`` and
``max_seq_length=128``). Same hyperparameters as the other contenders;
evaluation on the dev set and saving the model are inside the timed region, as for them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.plain_loop import Example, Hyper


class _Rows:
    """A map-style dataset over pre-tokenised rows (what `datasets.Dataset` would give)."""

    def __init__(self, encoded: Any, labels: Sequence[int]) -> None:
        self._ids = encoded["input_ids"]
        self._mask = encoded["attention_mask"]
        self._labels = list(labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "input_ids": self._ids[i],
            "attention_mask": self._mask[i],
            "labels": self._labels[i],
        }


def train_and_evaluate(
    model: Any,
    tokenizer: Any,
    train: Sequence[Example],
    dev: Sequence[Example],
    hyper: Hyper,
    *,
    dynamic: bool,
    output_dir: Path,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fine-tune with `Trainer`, evaluate on `dev`, save; ``seconds`` covers all of it
    (tokenisation included)."""
    import torch
    from transformers import (
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    started = time.perf_counter()
    padding: bool | str = False if dynamic else "max_length"

    def rows(examples: Sequence[Example]) -> _Rows:
        texts = [text for _, text in examples]
        encoded = tokenizer(texts, truncation=True, max_length=hyper.max_length, padding=padding)
        return _Rows(encoded, [label for label, _ in examples])

    train_set, dev_set = rows(train), rows(dev)
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=hyper.epochs,
        per_device_train_batch_size=hyper.batch_size,
        per_device_eval_batch_size=hyper.eval_batch_size,
        learning_rate=hyper.lr,
        weight_decay=hyper.weight_decay,
        warmup_steps=hyper.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type="linear",
        max_grad_norm=hyper.max_grad_norm,
        train_sampling_strategy="group_by_length" if dynamic else "random",
        seed=hyper.seed,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_pin_memory=device != "cpu",
        bf16=device != "cpu" and torch.cuda.is_bf16_supported(),  # as tuneboard's "auto"
    )

    def accuracy(prediction: Any) -> dict[str, float]:
        logits, labels = prediction.predictions, prediction.label_ids
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=dev_set,
        data_collator=DataCollatorWithPadding(tokenizer) if dynamic else default_data_collator,
        processing_class=tokenizer,
        compute_metrics=accuracy,
    )
    trainer.remove_callback(PrinterCallback)  # no metric dicts on stdout
    output = trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(str(output_dir / "final"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "seconds": time.perf_counter() - started,
        "accuracy": metrics["eval_accuracy"],
        "steps": output.global_step,
        "train_loss_mean": output.training_loss,
        "train_loss_last": losses[-1] if losses else None,
    }
