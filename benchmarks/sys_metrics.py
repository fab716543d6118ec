"""System metrics: what the sampler costs, as CPU % of one core per run.

The process's real sampler (`tuneboard.engine.sysmetrics.SystemSampler`, its real probe) watches
1, 4 and 8 runs of a real store and writes their ``sys/...`` points through the store's writer,
every `--interval` seconds for `--window` seconds. The process's CPU time over that window
(sampler thread, writer thread and DuckDB inserts included), less the same window with no run
watched, divided by the rounds taken, is the cost of one round; at the default interval (5 s)
one run then costs ``round / 5 s / runs`` of a core. The runs are on the CPU: the GPU reads (NVML
or torch) are not measured here.

    python -m benchmarks.sys_metrics          # add --smoke for a seconds-long check
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import REPO, Result, command_line, other_load, results_folder

RUN_COUNTS = (1, 4, 8)
TARGET_PERCENT = 1.0  # of one core, per run, at the default interval


def cpu_seconds(window: float, runs: int, interval: float, folder: Path) -> tuple[float, int]:
    """Process CPU seconds over `window` with `runs` runs watched (0: none), and rounds taken."""
    from tuneboard.engine.sysmetrics import SystemProbe, SystemSampler
    from tuneboard.store import Store

    folder.mkdir(exist_ok=True)
    store = Store(folder / f"bench-{runs}.duckdb")
    try:
        ids = [f"run-{i}" for i in range(runs)]
        for run_id in ids:
            store.create_run(run_id, "bench", {}, status="running")
        store.flush()
        sampler = SystemSampler(SystemProbe())
        started = time.process_time()
        for run_id in ids:
            sampler.watch(run_id, "cpu", store, interval, lambda: (0, 100))
        time.sleep(window)
        for run_id in ids:
            sampler.unwatch(run_id)
        sampler.join(5)
        store.flush()
        spent = time.process_time() - started
        if runs:
            with store.hold():
                [(points,)] = store._fetch("SELECT count(*) FROM metrics")
            # A sanity check only: under load the last round can race `unwatch` (a round
            # counted, some of its points not written), so whole rounds are not required.
            assert points >= runs, "the sampler wrote nothing"
        return spent, sampler.samples
    finally:
        store.close()


def measure(result: Result, window: float, interval: float, default: float, wait: bool) -> None:
    """Idle, then each run count: one round's cost and the CPU % of a core per run."""
    from tuneboard.store.writer import import_batch_libraries

    import_batch_libraries()  # as the engine does, before any run
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        folder = Path(tmp)
        cpu_seconds(min(window, 2.0), 1, interval, folder / "warm-up")  # first inserts: left out
        result.loads.append(other_load(wait))
        idle, _ = cpu_seconds(window, 0, interval, folder)
        result.details["idle_cpu_seconds"] = round(idle, 4)
        for runs in RUN_COUNTS:
            result.loads.append(other_load(wait))
            spent, rounds = cpu_seconds(window, runs, interval, folder)
            per_round = max(0.0, spent - idle) / max(1, rounds)
            percent = 100 * per_round / default / runs
            result.details[f"{runs} runs"] = {
                "cpu_seconds": round(spent, 4),
                "rounds": rounds,
                "ms_per_round": round(1000 * per_round, 3),
            }
            result.add(
                "sampler",
                f"sampler cost per run, {runs} run{'s' if runs > 1 else ''} (every {default:g} s)",
                round(percent, 4),
                "% of a core",
                target=f"< {TARGET_PERCENT:g}",
                met=percent < TARGET_PERCENT,
                note=f"{1000 * per_round:.2f} ms CPU per round of {runs}; "
                f"{rounds} rounds every {interval:g} s measured",
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/sys_metrics.json``."""
    from tuneboard.config.project import DEFAULT_SYS_METRICS_INTERVAL

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.window, args.interval, args.no_wait = 1.0, 0.2, True
    result = Result("sys_metrics", command_line("benchmarks.sys_metrics", argv or sys.argv[1:]))
    result.details.update(window_s=args.window, interval_s=args.interval)
    measure(result, args.window, args.interval, DEFAULT_SYS_METRICS_INTERVAL, not args.no_wait)
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
