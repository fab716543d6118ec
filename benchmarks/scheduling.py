"""Scheduling: slot utilisation, CPU threads per run, and training under CPU contention.

1. Utilisation: N jobs of random length (50-250 ms) over S slots through the `Scheduler`, and
   N short runs of a real project through the `Engine` (the ticker stage of `live_ui`, 2 s
   each); utilisation = time the slots spent running jobs / (S x makespan), and the makespan
   against its lower bound max(total / S, longest job).
2. Threads: torch's intra-op threads inside a run with ``devices = "auto"`` and with
   ``devices = ["cpu"]``, ``cpu_slots = 2`` (each run should get cores / slots).
3. Contention: one training process (a 4-layer, hidden-384 BERT, batch 16 x 64 tokens, AdamW)
   alone and with a competitor on the 2 cores (a busy Python loop, or a second training
   process), under OpenMP's default wait policy, ``OMP_WAIT_POLICY=PASSIVE``,
   ``GOMP_SPINCOUNT=10000``, and 1 thread. Median step time of each.

    python -m benchmarks.scheduling          # add --smoke for a seconds-long check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    Result,
    command_line,
    median,
    other_load,
    results_folder,
)

VARIANTS: dict[str, dict[str, str]] = {
    "default (2 threads)": {},
    "OMP_WAIT_POLICY=PASSIVE (2 threads)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000 (2 threads)": {"GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000 (2 threads)": {"GOMP_SPINCOUNT": "1000"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v != "GOMP_SPINCOUNT=1000 (2 threads)")
COMPETITORS = ("none", "busy loop (1 core)", "another training process")


# --- 1. utilisation ------------------------------------------------------------------------


def scheduler_utilisation(jobs: int, slots: int, seed: int = 3) -> dict[str, float]:
    """Sleep jobs through the real `Scheduler` on `slots` fake GPU slots."""
    from tuneboard.sdk.scheduler import Scheduler

    rng = random.Random(seed)
    lengths = [rng.uniform(0.05, 0.25) for _ in range(jobs)]
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def job(length: float) -> Any:
        def run(device: str, cancel: threading.Event) -> None:
            start = time.perf_counter()
            time.sleep(length)
            with lock:
                spans.append((start, time.perf_counter()))

        return run

    scheduler = Scheduler([f"cuda:{i}" for i in range(slots)])
    started = time.perf_counter()
    for i, length in enumerate(lengths):
        scheduler.submit(f"job-{i}", job(length), lambda: None)
    scheduler.wait()
    makespan = time.perf_counter() - started
    scheduler.shutdown()
    busy = sum(end - start for start, end in spans)
    bound = max(sum(lengths) / slots, max(lengths))
    return {"utilisation": busy / (slots * makespan), "makespan_over_bound": makespan / bound}


def engine_utilisation(runs: int, slots: int, folder: Path, steps: int = 40) -> dict[str, float]:
    """Short real runs (ticker stage, `steps` steps at 20 steps/s) through the `Engine`."""
    from benchmarks.live_ui import ticker_project
    from tuneboard.config import load_project
    from tuneboard.engine.engine import Engine
    from tuneboard.plugins import load_plugins
    from tuneboard.store import Store

    root = ticker_project(folder / "util", rate=20.0)
    text = (root / "tuneboard.toml").read_text()
    text = text.replace("cpu_slots = 8", f'cpu_slots = {slots}\ndevices = ["cpu"]')
    (root / "tuneboard.toml").write_text(
        text.replace("rate = 20.0", f"rate = 20.0\nsteps = {steps}")
    )
    project = load_project(root)
    registry = load_plugins(project.root)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    prepared = engine.prepare(project.experiment("ticker", registry))
    ids = [engine.launch(prepared) for _ in range(runs)]
    engine.wait(ids)
    engine.shutdown(cancel=False)
    rows = [store.get_run(i) for i in ids]
    store.close()
    spans = [(r.started_at, r.finished_at) for r in rows]
    assert all(s is not None and e is not None for s, e in spans), "a run did not finish"
    first = min(s for s, _ in spans if s is not None)
    last = max(e for _, e in spans if e is not None)
    busy = sum(e - s for s, e in spans if s is not None and e is not None)
    longest = max(e - s for s, e in spans if s is not None and e is not None)
    bound = max(busy / slots, longest)
    return {
        "utilisation": busy / (slots * (last - first)),
        "makespan_over_bound": (last - first) / bound,
    }


# --- 2. threads per run --------------------------------------------------------------------

THREADS_CHILD = """
import json, sys, threading
from tuneboard.sdk.scheduler import Scheduler
devices = json.loads(sys.argv[1]); slots = int(sys.argv[2])
seen = []
def job(device, cancel):
    import torch
    seen.append(torch.get_num_threads())
scheduler = Scheduler(devices, cpu_slots=slots)
for i in range(slots):
    scheduler.submit(f"r{i}", job, lambda: None)
scheduler.wait(); scheduler.shutdown()
print(json.dumps(seen))
"""


def threads_in_runs(devices: Any, slots: int) -> list[int]:
    """torch.get_num_threads() inside each run of a fresh process's scheduler."""
    out = subprocess.run(
        [sys.executable, "-c", THREADS_CHILD, json.dumps(devices), str(slots)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen: list[int] = json.loads(out.strip().splitlines()[-1])
    return seen


# --- 3. contention -------------------------------------------------------------------------


def probe(steps: int, threads: int | None, hidden: int = 384) -> dict[str, float]:
    """Train a small BERT for `steps` steps in this process; median step time in ms."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8000,
        hidden_size=hidden,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=4 * hidden,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = {
        "input_ids": torch.randint(0, 8000, (16, 64)),
        "attention_mask": torch.ones(16, 64, dtype=torch.long),
        "labels": torch.randint(0, 2, (16,)),
    }
    times = []
    for step in range(steps + 3):
        started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= 3:
            times.append(time.perf_counter() - started)
    return {"step_ms": 1000 * median(times), "threads": torch.get_num_threads()}


def run_probe(
    env_extra: dict[str, str], steps: int, competitor: str, hidden: int = 384
) -> dict[str, float]:
    """The probe in a fresh process with `env_extra`, next to `competitor`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    rival: subprocess.Popen[bytes] | None = None
    if competitor.startswith("busy"):
        rival = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    elif competitor.startswith("another"):
        rival = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scheduling", "--probe", "100000"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(4)  # let it import torch and start training
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.scheduling",
                "--probe",
                str(steps),
                "--probe-hidden",
                str(hidden),
            ],
            cwd=REPO,
            env={**env, **env_extra},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def measure_contention(
    result: Result,
    steps: int,
    reps: int,
    wait: bool,
    competitors: Sequence[str] = COMPETITORS,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    hidden: int = 384,
) -> None:
    """Every (competitor, variant) pair, `reps` interleaved rounds; median step times."""
    cells: dict[tuple[str, str], list[float]] = {}
    for _ in range(reps):
        for competitor in competitors:
            result.loads.append(other_load(wait))
            for variant in random.sample(list(variants), len(variants)):
                env = VARIANTS[variant]
                figures = run_probe(env, steps, competitor, hidden)
                cells.setdefault((competitor, variant), []).append(figures["step_ms"])
                print(f"{competitor:26s} {variant:36s} {figures['step_ms']:8.1f} ms", flush=True)
    alone = median(cells[("none", "default (2 threads)")])
    for (competitor, variant), times in cells.items():
        value = median(times)
        result.add(
            "contention",
            f"step time, competitor: {competitor}, {variant}",
            round(value, 1),
            "ms",
            note=f"{value / alone:.2f}x the default alone; median of {len(times)}",
        )
    result.details["contention_ms"] = {f"{c} | {v}": t for (c, v), t in cells.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/scheduling.json`` (or, with --probe, train and print)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="probe steps per measurement")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument(
        "--all-variants", action="store_true", help="also GOMP_SPINCOUNT=1000 (one more column)"
    )
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--probe", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--probe-hidden", type=int, default=384, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, None, args.probe_hidden)))
        return
    if args.smoke:
        args.jobs, args.runs, args.no_wait = 8, 2, True
    result = Result("scheduling", command_line("benchmarks.scheduling", argv or sys.argv[1:]))

    result.loads.append(other_load(not args.no_wait))
    util = scheduler_utilisation(args.jobs, args.slots)
    result.add(
        "scheduling",
        f"slot utilisation, scheduler: {args.jobs} jobs of 50-250 ms over {args.slots} slots",
        round(100 * util["utilisation"], 1),
        "%",
        target="> 95%",
        met=util["utilisation"] > 0.95,
        note=f"makespan {util['makespan_over_bound']:.3f}x its lower bound",
    )
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        engine = engine_utilisation(args.runs, 2, Path(tmp), 10 if args.smoke else 40)
    result.add(
        "scheduling",
        f"slot utilisation, engine: {args.runs} runs of ~2 s over 2 CPU slots",
        round(100 * engine["utilisation"], 1),
        "%",
        target="> 95%",
        met=engine["utilisation"] > 0.95,
        note=f"makespan {engine['makespan_over_bound']:.3f}x its lower bound",
    )
    cores = os.cpu_count() or 1
    combos: list[tuple[Any, int]] = [("auto", 1), ("auto", 2), (["cpu"], 1), (["cpu"], 2)]
    for devices, slots in combos[-1:] if args.smoke else combos:
        seen = threads_in_runs(devices, slots)
        want = max(1, cores // slots)
        result.add(
            "scheduling",
            f"torch threads per run, devices = {json.dumps(devices)}, cpu_slots = {slots}",
            max(seen),
            "threads",
            target=f"{want} ({cores} cores / {slots} slots)",
            met=all(n == want for n in seen),
        )
    if args.smoke:
        measure_contention(result, 1, 1, False, COMPETITORS[:1], list(VARIANTS)[:1], hidden=16)
    else:
        variants = tuple(VARIANTS) if args.all_variants else DEFAULT_VARIANTS
        measure_contention(result, args.steps, args.reps, not args.no_wait, COMPETITORS, variants)
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    main()
