"""Queries over a big project: a chart's downsampled series and the runs table.

The database is made by `Store` (so the migrations make the schema) and filled by DuckDB SQL
over `range()`: 1,000 runs x 10,000 steps x 5 metrics = 50M points by default, laid out as
tuneboard writes them: runs started 10 minutes apart, 8 running at a time, their points
interleaved step by step (so a row group holds a few runs, as in real life).

Measured: `Store.series()` (min/max-preserving buckets, 400 points) for random runs and
metrics, each call on its own (opening the file, as a one-off CLI read does) and inside
`Store.hold()` (the file kept open, as the app does for a screen's reads); and
`Store.list_runs()` (the runs table with status, current stage, progress and headline value).

    python -m benchmarks.queries                       # 1,000 runs (builds a ~500 MiB file once)
    python -m benchmarks.queries --runs 20 --steps 500  # seconds

The database is kept in ``benchmarks/.cache/`` (gitignored) and reused while its size and the
schema's migrations are the same; ``--db PATH`` puts it elsewhere, ``--rebuild`` makes it anew.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import (
    REPO,
    Result,
    command_line,
    median,
    other_load,
    results_folder,
)

METRICS = ("train/loss", "train/lr", "train/grad_norm", "val/loss", "val/accuracy")
CONCURRENT = 8
BASE_EPOCH = 1_767_225_600  # 2026-01-01 00:00 UTC
CACHE = REPO / "benchmarks" / ".cache"


def run_id_sql(i: str) -> str:
    """SQL for the id of run number `i`: tuneboard's sortable `YYYYMMDD-HHMMSS-xxxx` form."""
    return (
        f"strftime(to_timestamp({BASE_EPOCH} + {i} * 600), '%Y%m%d-%H%M%S')"
        f" || '-' || lpad(lower(hex({i})), 4, '0')"
    )


def cached_database(runs: int, steps: int) -> Path:
    """Where the database of `runs` x `steps` lives in the cache (schema version in its name)."""
    from tuneboard.store.migrations import MIGRATIONS

    return CACHE / f"queries-{runs}x{steps}-m{len(MIGRATIONS)}.duckdb"


def ensure_database(path: Path, runs: int, steps: int, rebuild: bool = False) -> float | None:
    """Build the database at `path` unless it is there already; the seconds it took, or None.

    Built under a temporary name and renamed when complete, so an interrupted build is never
    reused; older versions of the same cached database are deleted (~500 MiB each).
    """
    if path.exists() and not rebuild:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent == CACHE:
        for old in CACHE.glob(f"queries-{runs}x{steps}-m*.duckdb*"):
            old.unlink()
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, partial.with_name(partial.name + ".wal"), path):
        leftover.unlink(missing_ok=True)
    seconds = build(partial, runs, steps)  # closes the file when done
    partial.rename(path)
    return seconds


def build(path: Path, runs: int, steps: int) -> float:
    """Create the database at `path` and fill it; return the seconds it took."""
    from tuneboard.store import Store

    started = time.perf_counter()
    store = Store(path)
    store.close()
    names = ", ".join(f"('{name}', {i})" for i, name in enumerate(METRICS))
    with store.database.cursor(write=True) as cur:
        cur.execute(
            f"""
            INSERT INTO runs (run_id, experiment, status, config, created_at, started_at,
                              finished_at, device, headline, headline_value)
            SELECT {run_id_sql("i")}, 'exp-' || (i % 7), 'completed',
                   '{{"seed": ' || i || '}}', to_timestamp({BASE_EPOCH} + i * 600),
                   to_timestamp({BASE_EPOCH} + i * 600 + 1),
                   to_timestamp({BASE_EPOCH} + i * 600 + 1 + {steps} * 0.5), 'cpu',
                   'val/accuracy', 0.7 + 0.2 * random()
            FROM range({runs}) t(i)
            """
        )
        cur.execute(
            f"""
            INSERT INTO stages (run_id, stage_index, name, plugin, params, status, started_at,
                                finished_at, steps, total_steps, best_metric, best_step,
                                best_value)
            SELECT {run_id_sql("i")}, 0, 'finetune', 'finetune', '{{}}', 'completed',
                   to_timestamp({BASE_EPOCH} + i * 600 + 1),
                   to_timestamp({BASE_EPOCH} + i * 600 + 1 + {steps} * 0.5),
                   {steps}, {steps}, 'val/accuracy', {steps}, 0.8
            FROM range({runs}) t(i)
            """
        )
        # One insert per group of concurrent runs, ordered step by step inside the group.
        for first in range(0, runs, CONCURRENT):
            cur.execute(
                f"""
                INSERT INTO metrics
                SELECT {run_id_sql("r")}, 0, s, n.name,
                       CASE n.k WHEN 1 THEN 5e-5 * (1 - s / {steps})
                                WHEN 4 THEN 0.5 + 0.4 * (1 - exp(-s / 2000)) + 0.02 * random()
                                ELSE exp(-s / 3000) + 0.05 * random() END,
                       to_timestamp({BASE_EPOCH} + r * 600 + 1 + s * 0.5)
                FROM range({first}, {min(first + CONCURRENT, runs)}) a(r),
                     range({steps}) b(s), (VALUES {names}) n(name, k)
                ORDER BY s, r, n.k
                """
            )
        cur.execute("CHECKPOINT")
    return time.perf_counter() - started


def measure(result: Result, path: Path, runs: int, samples: int, wait: bool) -> None:
    """Time `series()` (cold and held) and `list_runs()` on the built database."""
    from tuneboard.store import Store

    store = Store(path, read_only=True)
    rng = random.Random(7)
    with store.database.cursor() as cur:
        ids = [row[0] for row in cur.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
    picks = [(rng.choice(ids), rng.choice(METRICS)) for _ in range(samples)]
    store.series(*picks[0])  # warm the OS page cache once

    result.loads.append(other_load(wait))
    cold = []
    for run_id, name in picks:
        started = time.perf_counter()
        series = store.series(run_id, name)
        cold.append(time.perf_counter() - started)
        assert 0 < len(series.xs) <= 400
    held = []
    with store.hold():
        for run_id, name in picks:
            started = time.perf_counter()
            store.series(run_id, name)
            held.append(time.perf_counter() - started)
    # The run-wide axis (what Run detail draws): the run's stage spans, then the series.
    run_wide = []
    with store.hold():
        for run_id, name in picks:
            started = time.perf_counter()
            spans = store.stage_spans(run_id)
            store.series(run_id, name, x="run_step", spans=spans)
            run_wide.append(time.perf_counter() - started)
    size = f"{runs:,} runs"
    result.add(
        "queries",
        f"stage_spans() + series() on the run-wide step axis, file kept open, {size}",
        round(1000 * median(run_wide), 1),
        "ms",
        target="< 50 ms",
        met=median(run_wide) < 0.05,
        note=f"median of {samples}; max {1000 * max(run_wide):.0f} ms; per-stage step axis",
    )
    result.add(
        "queries",
        f"series() for a chart, file kept open (hold), {size}",
        round(1000 * median(held), 1),
        "ms",
        target="< 50 ms",
        met=median(held) < 0.05,
        note=f"median of {samples} random (run, metric); max {1000 * max(held):.0f} ms",
    )
    result.add(
        "queries",
        f"series() for a chart, opening the file each time, {size}",
        round(1000 * median(cold), 1),
        "ms",
        note=f"median of {samples}; max {1000 * max(cold):.0f} ms",
    )

    result.loads.append(other_load(wait))
    cold, held = [], []
    for _ in range(max(3, samples // 4)):
        started = time.perf_counter()
        rows = store.list_runs()
        cold.append(time.perf_counter() - started)
        assert len(rows) == runs
    with store.hold():
        for _ in range(max(3, samples // 4)):
            started = time.perf_counter()
            store.list_runs()
            held.append(time.perf_counter() - started)
    result.add(
        "queries",
        f"list_runs() (runs table with headline values), opening the file, {size}",
        round(1000 * median(cold), 1),
        "ms",
        target="< 100 ms",
        met=median(cold) < 0.1,
        note=f"median of {len(cold)}; file kept open: {1000 * median(held):.1f} ms",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse, with --db) the database, measure, save ``results/queries.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--db", default=None, help="the database (default: in the cache)")
    parser.add_argument("--rebuild", action="store_true", help="build the database anew")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.steps, args.samples, args.no_wait = 16, 200, 4, True
    result = Result("queries", command_line("benchmarks.queries", argv or sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        if args.db:
            path = Path(args.db)
        elif args.smoke:
            path = Path(tmp) / "small.duckdb"
        else:
            path = cached_database(args.runs, args.steps)
        points = args.runs * args.steps * len(METRICS)
        seconds = ensure_database(path, args.runs, args.steps, args.rebuild)
        if seconds is not None:
            result.details["build_seconds"] = round(seconds, 1)
            print(f"built {points:,} points in {seconds:.1f} s")
        result.details["file_mib"] = round(path.stat().st_size / 2**20)
        result.details["points"] = points
        result.add(
            "queries",
            "database size",
            f"{points:,} points, {result.details['file_mib']:,} MiB",
            note=f"built in {seconds:.0f} s by this run"
            if seconds is not None
            else "reused from the cache",
        )
        measure(result, path, args.runs, args.samples, not args.no_wait)
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    main()
