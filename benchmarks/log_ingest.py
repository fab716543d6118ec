"""Logging: the cost of a `log()` call, sustained ingest into DuckDB, and log-to-visible latency.

1. One `ctx.log()` (a stage's `RunContext`, the real store and writer thread behind it) and one
   `store.log_metrics()`, each call timed on its own while the writer thread runs: median and
   99th percentile, timer overhead subtracted.
2. Ingest: the writer's throughput (`Writer._apply` on a queued batch: open, one transaction,
   columnar insert, commit, close) for 1, 4 and 16 values per call; and end to end (a producer
   logging as fast as it can while the writer drains, until `flush()` returns).
3. Latency from `log_metrics()` to the point being visible in a query: in the same process (the
   app and its runs) and from another process polling the file read-only.

    python -m benchmarks.log_ingest            # add --smoke for a seconds-long check
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
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

RUN_ID = "20260101-000000-abcd"


def _timer_overhead(samples: int = 20_000) -> float:
    ns = time.perf_counter_ns
    costs = []
    for _ in range(samples):
        t = ns()
        costs.append(ns() - t)
    return statistics.median(costs)


def per_call_ns(call: Callable[[int], None], calls: int) -> list[float]:
    """Nanoseconds of each call of `call(step)`, timer overhead subtracted."""
    overhead = _timer_overhead()
    ns = time.perf_counter_ns
    costs = []
    for step in range(calls):
        t = ns()
        call(step)
        costs.append(ns() - t - overhead)
    return costs


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_context(store: Any, folder: Path) -> Any:
    """A `RunContext` of stage 0 of a run of the sentiment sample's `tiny` experiment."""
    from tuneboard.config import load_project
    from tuneboard.engine.context import RunContext, RunEnvironment
    from tuneboard.engine.observer import RunObserver
    from tuneboard.plugins import load_plugins

    project = load_project(REPO / "sample_projects" / "sentiment")
    registry = load_plugins(project.root)
    env = RunEnvironment(
        run_id=RUN_ID,
        run_dir=folder / "run",
        device="cpu",
        experiment=project.experiment("tiny", registry),
        store=store,
        registry=registry,
        observer=RunObserver(),
        cancel=threading.Event(),
    )
    return RunContext(env, 0)


def measure_call_cost(result: Result, folder: Path, calls: int) -> None:
    """Section 1: the cost of one `ctx.log()` / `store.log_metrics()` in the training thread."""
    from tuneboard.store import Store

    store = Store(folder / "calls.duckdb")
    store.create_run(RUN_ID, "bench", {})
    ctx = run_context(store, folder)
    one = {"train/loss": 0.5}
    four = {"train/loss": 0.5, "train/lr": 1e-5, "train/epoch": 0.5, "train/samples_per_s": 99.0}
    cases: list[tuple[str, Callable[[int], None]]] = [
        ("ctx.log(), 1 value", lambda step: ctx.log(one, step)),
        ("ctx.log(), 4 values", lambda step: ctx.log(four, step)),
        ("store.log_metrics(), 1 value", lambda step: store.log_metrics(RUN_ID, 0, step, one)),
        ("store.log_metrics(), 4 values", lambda step: store.log_metrics(RUN_ID, 0, step, four)),
    ]
    for name, call in cases:
        costs = per_call_ns(call, calls)
        med = statistics.median(costs) / 1000
        result.add(
            "logging",
            f"{name}: median per call",
            round(med, 2),
            "µs",
            target="< 5 µs" if name.startswith("ctx") else "",
            met=med < 5 if name.startswith("ctx") else None,
            note=f"p99 {_quantile(costs, 0.99) / 1000:.1f} µs, "
            f"mean {statistics.fmean(costs) / 1000:.2f} µs over {calls:,} calls, "
            "writer thread running",
        )
        store.flush()
    store.close()


def _ops(calls: int, k: int) -> list[tuple[Any, ...]]:
    from tuneboard.store.writer import METRICS

    names = [f"train/metric_{i}" for i in range(k)]
    return [
        (METRICS, RUN_ID, 0, step, {n: 0.5 + step * 1e-6 for n in names}, 1.7e9 + step)
        for step in range(calls)
    ]


def measure_ingest(result: Result, folder: Path, points: int, reps: int) -> None:
    """Section 2: points per second through the writer, and end to end."""
    from tuneboard.store import Store

    for k in (1, 4, 16):
        store = Store(folder / f"ingest-{k}.duckdb")
        store.create_run(RUN_ID, "bench", {})
        store.flush()
        writer = store.writer
        assert writer is not None
        ops = _ops(points // k, k)
        rates = []
        for _ in range(reps):
            started = time.perf_counter()
            writer._apply(ops)
            rates.append(points / (time.perf_counter() - started))
        rate = median(rates)
        result.add(
            "logging",
            f"ingest, writer thread, {k} value(s) per call",
            round(rate / 1e6, 2),
            "M points/s",
            target=">= 1 M points/s",
            met=rate >= 1e6,
            note=f"median of {reps} batches of {points:,} points",
        )
        names = [f"train/metric_{i}" for i in range(k)]
        rates = []
        for _ in range(reps):
            started = time.perf_counter()
            for step in range(points // k):
                store.log_metrics(RUN_ID, 0, step, dict.fromkeys(names, 0.5))
            store.flush()
            rates.append(points / (time.perf_counter() - started))
        result.add(
            "logging",
            f"ingest end to end (log_metrics + writer, one process), {k} value(s) per call",
            round(median(rates) / 1e6, 2),
            "M points/s",
            note=f"median of {reps}; {points:,} points logged as fast as possible, then flush()",
        )
        store.close()


POLL_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tuneboard.store import Store
    path, run_id, step = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = Store(path, read_only=True, lock_timeout=30)
    print("ready", flush=True)
    while True:
        rows = store.series(run_id, "probe", max_points=100000)
        if rows.xs and rows.xs[-1] >= step:
            print(time.time(), flush=True)
            break
        time.sleep(0.005)
    """
)


def measure_latency(result: Result, folder: Path, trials: int) -> None:
    """Section 3: seconds from `log_metrics()` to visible, same process and another one."""
    from tuneboard.store import Store

    path = folder / "latency.duckdb"
    store = Store(path)
    store.create_run(RUN_ID, "bench", {})
    store.flush()
    same: list[float] = []
    for trial in range(trials):
        time.sleep(random.uniform(0.0, 0.25))  # land anywhere in the writer's cycle
        started = time.time()
        store.log_metrics(RUN_ID, 0, trial, {"probe": 1.0})
        while True:
            xs = store.series(RUN_ID, "probe", max_points=100000).xs
            if xs and xs[-1] >= trial:
                break
            time.sleep(0.002)
        same.append(time.time() - started)
    result.add(
        "logging",
        "log() to visible in a query, same process",
        round(median(same), 3),
        "s",
        target="< 1 s",
        met=max(same) < 1.0,
        note=f"median of {trials}; max {max(same):.3f} s (writer flush interval "
        f"{store.writer.flush_interval if store.writer else float('nan'):g} s)",
    )
    other: list[float] = []
    for trial in range(max(2, trials // 4)):
        step = 1000 + trial
        child = subprocess.Popen(
            [sys.executable, "-c", POLL_CHILD, str(path), RUN_ID, str(step)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        child.stdout.readline()  # ready
        time.sleep(random.uniform(0.05, 0.3))
        started = time.time()
        store.log_metrics(RUN_ID, 0, step, {"probe": 1.0})
        seen = float(child.stdout.readline())
        child.wait()
        other.append(seen - started)
    result.add(
        "logging",
        "log() to visible in a query, another process polling",
        round(median(other), 3),
        "s",
        target="< 1 s",
        met=max(other) < 1.0,
        note=f"median of {len(other)}; max {max(other):.3f} s",
    )
    store.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/log_ingest.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.points, args.reps, args.trials, args.no_wait = 2000, 20_000, 1, 2, True
    result = Result("log_ingest", command_line("benchmarks.log_ingest", argv or sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        folder = Path(tmp)
        for section in (
            lambda: measure_call_cost(result, folder, args.calls),
            lambda: measure_ingest(result, folder, args.points, args.reps),
            lambda: measure_latency(result, folder, args.trials),
        ):
            result.loads.append(other_load(not args.no_wait))
            section()
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    main()
