"""GPU: tuneboard's step against the Trainer and the best plain loop, MFU, shared and multi-GPU.

One command measures everything issue 17 asks of a GPU, in about 10 minutes on an H100/H200
(``--rows``, ``--reps``, ``--batches`` and the rest trade time for precision):

1. Encoders: the packaged MiniLM and a BERT-base sized model built from a config, at batch 16
   and 64, 4,000 SST-2 rows, 1 epoch, max length 128. Contenders (each in a fresh worker
   process, see `benchmarks.training`): ``tuneboard`` (its defaults: bf16 on a GPU that has
   it, fused AdamW, losses read every `log_every` steps, pinned batches built ahead, widths a
   multiple of 8), ``trainer_padded`` (the HF Trainer's defaults: every row padded to 128,
   bf16) and ``plain_best`` (the fastest plain loop we know how to write: the same bf16 and
   fused AdamW, no host synchronisation per step, pinned non-blocking copies, widths a
   multiple of 8). Targets: tuneboard >= 1.5x the Trainer's samples/s, and its time <= 1.03x
   the plain loop's. Samples/s count the whole stage (tokenisation, training, evaluation on
   the 872 dev sentences, saving), as in section 1.
2. Sharing: 2 and 4 tuneboard runs on the GPU at once (``slots_per_device``) against one
   (MiniLM, the first batch size), samples/s of all of them together.
3. A decoder of ~0.51B parameters (GPT-2 style from a config: 24 layers, n_embd 1280) fine-
   tuned by tuneboard's `finetune` on ``causal-lm`` in bf16 (its defaults), instruction pairs
   packed into rows of 512 tokens, batch 16: model FLOPs utilisation = 6 x parameters x
   tokens/s / the GPU's dense bf16 peak (`causal_lm.PEAK_TFLOPS`), tokens/s taken between the
   first and the last log point before the first evaluation (warm-up, evaluation and saving
   left out). Target on an H100/H200: >= 40 %.
4. Scaling: one run on ``gpus = 2, 4, 8`` (BERT-base, the last batch size per GPU, 16,000
   rows) against ``gpus = 1``: efficiency = samples/s(N) / (N x samples/s(1)), from the
   steady rate between log points. Skipped, with the reason, where fewer GPUs are visible.

The device's name, memory, driver, CUDA and library versions are recorded with the figures;
``results/gpu.json`` is written and ``BENCHMARKS.md`` re-rendered (its section 7).

Without CUDA it keeps the figures already in ``results/gpu.json`` (measured on a GPU
earlier), or else writes that it was skipped; it exits 0 either way. ``--quick`` (also
``--smoke``, which `run_all --quick` passes) runs every part at a tiny size on whatever
device there is, in this process, into ``benchmarks/.cache/quick`` unless ``--out`` says
otherwise: the GPU-only figures (MFU, scaling) are then skipped with their reason.

    python -m benchmarks.gpu                 # everything, ~10 min on an H100/H200
    python -m benchmarks.gpu --quick         # seconds to a minute: checks it runs anywhere
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Result, command_line, interleaved, median, results_folder

ENCODER_CONTENDERS = ("tuneboard", "trainer_padded", "plain_best")
QUICK_FOLDER = REPO / "benchmarks" / ".cache" / "quick"
MFU_TARGET = 40.0
"""Model FLOPs utilisation (%) the decoder should reach on an H100/H200."""
MFU_GPUS = ("H100", "H200")


def cuda_device() -> str | None:
    """``cuda:0`` when torch sees a CUDA GPU, else None."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda:0" if torch.cuda.is_available() else None


def _measured(path: Path) -> str | None:
    """When and where `path`'s GPU figures were measured, if it holds any (not a skip)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if document.get("skipped") or not document.get("figures"):
        return None
    return f"{document.get('when')} on {document.get('machine', {}).get('gpu', 'a GPU')}"


def device_info(device: str) -> dict[str, Any]:
    """The device's name, memory and count, the driver, CUDA and cuDNN versions."""
    import torch

    info: dict[str, Any] = {"device": device, "torch": torch.__version__}
    if not device.startswith("cuda"):
        return info
    props = torch.cuda.get_device_properties(torch.device(device))
    info.update(
        name=props.name,
        memory_gib=round(props.total_memory / 2**30, 1),
        count=torch.cuda.device_count(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        bf16=torch.cuda.is_bf16_supported(),
    )
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        info["driver"] = done.stdout.strip().splitlines()[0] if done.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        info["driver"] = None
    return info


# --- the parts ------------------------------------------------------------------------------


class Plan:
    """What one invocation measures (the defaults, or `--quick`'s tiny sizes)."""

    def __init__(self, args: argparse.Namespace, device: str) -> None:
        self.device = device
        self.quick = args.quick
        self.in_process = args.quick
        self.sizes = ["tiny"] if args.quick else [s for s in args.sizes.split(",") if s]
        self.batches = [int(b) for b in args.batches.split(",") if b]
        self.contenders = [c for c in args.contenders.split(",") if c]
        self.rows = 64 if args.quick else args.rows
        self.dev_rows = 64 if args.quick else 0
        self.reps = 1 if args.quick else args.reps
        self.shared = [int(k) for k in args.shared.split(",") if k]
        if args.quick:
            self.shared = self.shared[:1]
        self.decoder = "tiny" if args.quick else args.decoder_size
        self.decoder_pairs = 120 if args.quick else args.decoder_pairs
        self.decoder_epochs = 1 if args.quick else args.decoder_epochs
        self.decoder_length = 128 if args.quick else 512
        self.scaling = [int(n) for n in args.scaling.split(",") if n]
        self.scaling_rows = 64 if args.quick else args.scaling_rows


def encoders(plan: Plan, result: Result) -> list[dict[str, Any]]:
    """Part 1 and 2: every (size, batch) cell's contenders in interleaved rounds, then the
    sharing runs; prints a line per run."""
    from benchmarks import training

    runs: list[dict[str, Any]] = []

    def one(contender: str, size: str, batch: int, round_: int) -> None:
        figures = training.run_in_worker(
            contender, size, plan.rows, plan.dev_rows, plan.in_process, plan.device, batch
        )
        figures["round"] = round_
        runs.append(figures)
        print(
            f"{size:6s} b{batch:<3d} {contender:15s} {figures['seconds']:7.2f} s  "
            f"{figures['samples_per_s']:8.0f} samples/s  acc {figures['accuracy']:.4f}",
            flush=True,
        )

    for size in plan.sizes:
        for batch in plan.batches:
            order = interleaved(plan.contenders, plan.reps, seed=batch)
            for i, contender in enumerate(order):
                one(contender, size, batch, i // len(plan.contenders))
    for k in plan.shared:
        one(f"{training.SHARED}{k}", plan.sizes[0], plan.batches[0], 0)
    summarise_encoders(result, runs, plan)
    return runs


def summarise_encoders(result: Result, runs: list[dict[str, Any]], plan: Plan) -> None:
    """The samples/s of each contender per cell, the two ratios against their targets, and
    the sharing gains."""
    from benchmarks.training import SHARED

    for size in plan.sizes:
        for batch in plan.batches:
            cell = [r for r in runs if r["size"] == size and r["batch_size"] == batch]
            section = f"GPU encoders ({size}, batch {batch})"
            rates = {
                c: median(r["samples_per_s"] for r in cell if r["contender"] == c)
                for c in plan.contenders
                if any(r["contender"] == c for r in cell)
            }
            for contender, rate in rates.items():
                mine = [r for r in cell if r["contender"] == contender]
                memory = [r["peak_memory_mib"] for r in mine if r.get("peak_memory_mib")]
                note = f"dev accuracy {median(r['accuracy'] for r in mine):.4f}"
                note += f"; {median(r['seconds'] for r in mine):.1f} s"
                if memory:
                    note += f"; peak GPU memory {max(memory):.0f} MiB"
                result.add(
                    section,
                    f"{size} b{batch}: {contender}, samples/s (median of {len(mine)})",
                    round(rate, 1),
                    "samples/s",
                    note=note,
                )
            if {"tuneboard", "trainer_padded"} <= rates.keys():
                value = rates["tuneboard"] / rates["trainer_padded"]
                result.add(
                    section,
                    f"{size} b{batch}: tuneboard defaults / Trainer defaults, samples/s",
                    round(value, 3),
                    "x",
                    **_target(plan, ">=", 1.5, value),
                )
            if {"tuneboard", "plain_best"} <= rates.keys():
                value = rates["plain_best"] / rates["tuneboard"]  # time ratio
                result.add(
                    section,
                    f"{size} b{batch}: tuneboard / best plain loop, time",
                    round(value, 3),
                    "x",
                    **_target(plan, "<=", 1.03, value),
                )
    size, batch = plan.sizes[0], plan.batches[0]
    alone = [
        r["samples_per_s"]
        for r in runs
        if (r["size"], r["batch_size"], r["contender"]) == (size, batch, "tuneboard")
    ]
    for k in plan.shared:
        shared = [r for r in runs if r["contender"] == f"{SHARED}{k}"]
        if alone and shared:
            gain = shared[0]["samples_per_s"] / median(alone)
            result.add(
                f"GPU sharing ({size}, batch {batch})",
                f"{size} b{batch}: {k} runs sharing the device / 1 run, samples/s",
                round(gain, 2),
                "x",
                note=f"all {k} finished in {shared[0]['seconds']:.1f} s",
            )


def _target(plan: Plan, op: str, limit: float, value: float) -> dict[str, Any]:
    """A figure's target and whether it is met (none in a `--quick` run: tiny sizes say
    nothing about a GPU)."""
    if plan.quick:
        return {}
    met = value >= limit if op == ">=" else value <= limit
    return {"target": f"{op} {limit:g}", "met": met}


def decoder(plan: Plan, result: Result) -> dict[str, Any]:
    """Part 3: the decoder's steady tokens/s and its model FLOPs utilisation."""
    from benchmarks import causal_lm

    hyper = replace(
        causal_lm.Hyper(),
        pairs=plan.decoder_pairs,
        epochs=plan.decoder_epochs,
        batch_size=4 if plan.quick else 16,
        lr=1e-4,
        max_length=plan.decoder_length,
        packing=True,
        max_new_tokens=8,
    )
    figures = causal_lm.run_in_worker(
        "tuneboard", plan.decoder, hyper, plan.in_process, plan.device
    )
    params = causal_lm.parameters(plan.decoder)
    section = f"GPU decoder ({plan.decoder}, {params / 1e6:.0f}M parameters, packed to "
    section += f"{hyper.max_length})"
    tokens_per_row = figures["train_tokens"] / hyper.epochs / figures["train_rows"]
    steady = figures.get("steady_rows_per_s")
    tps = steady * tokens_per_row if steady else figures["tokens_per_s"]
    how = "between log points" if steady else "over the whole stage (too few log points)"
    result.add(
        section,
        f"{plan.decoder}: tuneboard, tokens/s",
        round(tps),
        "tokens/s",
        note=f"{how}; {figures['steps']} steps; {figures['seconds']:.1f} s for the stage; "
        f"{tokens_per_row:.0f} real tokens a row",
    )
    peak, gpu = causal_lm.peak_flops(plan.device)
    name = f"{plan.decoder}: tuneboard, model FLOPs utilisation (bf16)"
    if peak is None:
        reason = "no CUDA GPU" if gpu == "cpu" else f"no bf16 peak known for {gpu}"
        result.add(section, name, None, "%", note=f"not measured: {reason}")
    else:
        mfu = 100 * 6 * params * tps / peak
        checked = any(key in gpu for key in MFU_GPUS) and not plan.quick
        result.add(
            section,
            name,
            round(mfu, 1),
            "%",
            target=f">= {MFU_TARGET:g}" if checked else "",
            met=mfu >= MFU_TARGET if checked else None,
            note=f"6 x {params:,} x {tps:,.0f} tokens/s over {peak / 1e12:g} TFLOP/s ({gpu})",
        )
    return figures


def scaling(plan: Plan, result: Result) -> list[dict[str, Any]]:
    """Part 4: one run on N GPUs against one GPU, or why not."""
    from benchmarks import training

    size = "tiny" if plan.quick else "base"
    batch = plan.batches[-1]
    section = f"GPU scaling ({size}, batch {batch} per GPU)"
    import torch

    visible = torch.cuda.device_count() if plan.device.startswith("cuda") else 0
    wanted = [n for n in plan.scaling if n > 1]
    if not wanted:
        return []
    runs: list[dict[str, Any]] = []
    usable = [n for n in wanted if n <= visible]
    if usable:
        try:
            for n in [1, *usable]:
                contender = "tuneboard" if n == 1 else f"{training.GPUS}{n}"
                figures = training.run_in_worker(
                    contender, size, plan.scaling_rows, 0, plan.in_process, plan.device, batch
                )
                figures["gpus"] = n
                runs.append(figures)
                rate = figures.get("steady_samples_per_s") or figures["samples_per_s"]
                print(f"{size} gpus = {n}: {rate:8.0f} samples/s", flush=True)
        except Exception as error:  # a failed run (no `gpus` key here ...) says why
            reason = str(error).strip().splitlines()[-1]
            for n in usable:
                if not any(r["gpus"] == n for r in runs):
                    result.add(section, f"gpus = {n}: scaling efficiency", None, "", note=reason)
    base = next((r for r in runs if r["gpus"] == 1), None)
    for n in wanted:
        name = f"gpus = {n}: scaling efficiency"
        mine = next((r for r in runs if r["gpus"] == n), None)
        if n > visible:
            why = "no CUDA GPU" if not visible else f"{visible} GPU(s) visible"
            result.add(section, name, None, "", note=f"not measured: needs {n} GPUs, {why}")
        elif base is not None and mine is not None:
            rate = mine.get("steady_samples_per_s") or mine["samples_per_s"]
            one = base.get("steady_samples_per_s") or base["samples_per_s"]
            result.add(
                section,
                name,
                round(rate / (n * one), 3),
                "",
                note=f"{rate:,.0f} samples/s on {n} GPUs, {one:,.0f} on one; "
                f"end to end {mine['samples_per_s']:,.0f} and {base['samples_per_s']:,.0f}",
            )
    return runs


# --- the driver ----------------------------------------------------------------------------

PARTS: dict[str, Callable[[Plan, Result], Any]] = {
    "encoders": encoders,
    "decoder": decoder,
    "scaling": scaling,
}


def main(argv: Sequence[str] | None = None) -> None:
    """Run every part (or record that there is no GPU), save, and render BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="minilm,base")
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--contenders", default=",".join(ENCODER_CONTENDERS))
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--reps", type=int, default=1, help="interleaved rounds per cell")
    parser.add_argument("--shared", default="2,4", help="runs sharing the GPU")
    parser.add_argument("--decoder-size", default="0.5b")
    parser.add_argument("--decoder-pairs", type=int, default=12_000)
    parser.add_argument("--decoder-epochs", type=int, default=4)
    parser.add_argument("--scaling", default="2,4,8", help="gpus = N runs (where N GPUs exist)")
    parser.add_argument("--scaling-rows", type=int, default=16_000)
    parser.add_argument("--parts", default=",".join(PARTS), help="encoders,decoder,scaling")
    parser.add_argument("--quick", "--smoke", action="store_true", help="tiny, on any device")
    parser.add_argument("--no-wait", action="store_true", help="accepted; a GPU run never waits")
    parser.add_argument("--out", default=None, help="results folder")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    out = Path(args.out) if args.out else QUICK_FOLDER if args.quick else results_folder(None)
    device = cuda_device()
    result = Result("gpu", command_line("benchmarks.gpu", given))
    if device is None and not args.quick:
        kept = _measured(out / "gpu.json")
        if kept:
            print(f"no CUDA GPU here: kept the figures measured {kept}")
            return
        result.skipped = "no CUDA GPU visible to torch: nothing measured"
        print(f"skipped: {result.skipped}")
        print(f"wrote {result.save(out)}")
        return
    plan = Plan(args, device or "cpu")
    started = time.perf_counter()
    info = device_info(plan.device)
    print(f"device: {json.dumps(info)}", flush=True)
    parts = [p for p in args.parts.split(",") if p]
    details: dict[str, Any] = {"device": info, "rows": plan.rows, "failed": []}
    for part in parts:
        # A part that fails leaves the others' figures (a lent GPU's minutes are few).
        try:
            details[f"{part}_runs"] = PARTS[part](plan, result)
        except Exception as error:
            traceback.print_exc()
            lines = str(error).strip().splitlines() or [type(error).__name__]
            details["failed"].append(f"{part}: {lines[-1]}")
    details["minutes"] = round((time.perf_counter() - started) / 60, 1)
    result.details.update(details)
    for figure in result.figures:
        value = "—" if figure.value is None else f"{figure.value:g} {figure.unit}".strip()
        mark = {True: "  met", False: "  MISSED", None: ""}[figure.met]
        target = f"  (target {figure.target})" if figure.target else ""
        note = f"  [{figure.note}]" if figure.value is None else ""
        print(f"{figure.name}: {value}{target}{mark}{note}", flush=True)
    print(f"took {details['minutes']} min; wrote {result.save(out)}")
    if args.out is None:
        from benchmarks import run_all

        output = out / "BENCHMARKS.md" if args.quick else run_all.OUTPUT
        output.write_text(run_all.render(out, None if args.quick else run_all.NOTES))
        print(f"wrote {output}")
    if details["failed"]:
        sys.exit("failed: " + "; ".join(details["failed"]))


if __name__ == "__main__":
    main()
