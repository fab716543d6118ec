"""`kill -9` of a real `tuneboard run` at random moments: nothing older than a second is lost.

Each iteration starts `tuneboard run crash` (a `ticker` stage logging 200 steps a second,
then a real fine-tuning of a tiny BERT whose every logged step is also written to a marker
file), kills it with SIGKILL at a random moment after its first logged point, and checks:
the database opens cleanly (as any DuckDB client would open it), every metric point logged
more than a second before the kill is in it, and the run is marked `interrupted` by the
next opening, be it read-only (`tuneboard runs`) or not.

CI runs `TUNEBOARD_KILL_ITERATIONS` iterations (default 5); set it higher for a soak test,
and `TUNEBOARD_KILL_SEED` to replay a sequence of kill moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    ProjectFactory,
    child_env,
    database,
    experiment,
    query,
    start_cli,
    wait_for,
)
from tuneboard.store import Store
from tuneboard.store.store import INTERRUPTED_ERROR

pytestmark = pytest.mark.slow

ITERATIONS = int(os.environ.get("TUNEBOARD_KILL_ITERATIONS", "5"))
SEED = int(os.environ.get("TUNEBOARD_KILL_SEED", str(time.time_ns() % 1_000_000)))
MAX_DELAY = 4.0  # seconds after the first logged point; the ticker logs for about 2 s

CRASH = experiment(
    "crash",
    {"plugin": "ticker", "points": 400, "interval": 0.005},
    # Far longer than the latest kill moment: the run must still be going when it is killed.
    {"plugin": "marked_finetune", "epochs": 50, "patience": 50, "lr": 1e-3, "batch_size": 16},
    {"plugin": "evaluate"},
    {"plugin": "export"},
)

Point = tuple[str, int, int, str]  # run id, stage index, step, metric name


def read_marker(marker: Path) -> list[tuple[float, Point]]:
    """The points the killed process handed to `ctx.log`, with the time it did."""
    points = []
    if not marker.exists():
        return points
    for line in marker.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue  # the last line may be cut short by the kill
        at, run_id, stage, step, names = parts
        for name in names.split(","):
            points.append((float(at), (run_id, int(stage), int(step), name)))
    return points


def started_logging(marker: Path, process: subprocess.Popen[bytes]) -> bool:
    """True once the process logged a point (or ended)."""
    return (marker.exists() and marker.stat().st_size > 0) or process.poll() is not None


def stored_points(project: Path, run_id: str) -> set[Point]:
    rows = query(
        project, "SELECT run_id, stage_index, step, name FROM metrics WHERE run_id = ?", [run_id]
    )
    return {(r, int(s), int(st), n) for r, s, st, n in rows}


def test_kill_9_at_random_moments_loses_nothing_older_than_a_second(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    project = make_project(CRASH)
    rng = random.Random(SEED)
    print(f"\nkill test: {ITERATIONS} iterations, TUNEBOARD_KILL_SEED={SEED}")
    totals = {"iterations": 0, "checked": 0, "lost": 0, "recent_lost": 0}
    run_ids: list[str] = []
    for iteration in range(ITERATIONS):
        marker = tmp_path / f"marker-{iteration}.txt"
        log = tmp_path / f"run-{iteration}.log"
        process = start_cli(
            "run", "crash", "--quiet", cwd=project, log=log, env={"TB_MARKER": str(marker)}
        )
        try:
            wait_for(partial(started_logging, marker, process), 180, "the first logged point")
            assert process.poll() is None, log.read_text()
            time.sleep(rng.uniform(0.2, MAX_DELAY))
            killed_at = time.time()
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL, "the run ended before the kill"

        logged = read_marker(marker)
        run_id = logged[0][1][0]
        run_ids.append(run_id)
        # 1. The file opens cleanly for any DuckDB client, read-only, after the crash.
        [(status,)] = query(project, "SELECT status FROM runs WHERE run_id = ?", [run_id])
        assert status in ("running", "queued")  # nobody has looked at it yet
        # 2. Every point logged more than a second before the kill is there.
        stored = stored_points(project, run_id)
        old = {point for at, point in logged if at < killed_at - 1.0}
        recent = {point for at, point in logged if at >= killed_at - 1.0}
        missing = old - stored
        totals["lost"] += len(missing)
        assert not missing, (
            f"iteration {iteration}: {len(missing)} points lost: {sorted(missing)[:5]}"
        )
        # 3. The next opening marks it interrupted: a read-only one here, `tuneboard runs`
        # (also read-only) for the last iteration.
        if iteration < ITERATIONS - 1:
            with Store(database(project), read_only=True) as store:
                run = store.get_run(run_id)
                stages = store.stages(run_id)
            assert (run.status, run.error) == ("interrupted", INTERRUPTED_ERROR)
            assert run.finished_at is not None
            assert "running" not in {stage.status for stage in stages}
        totals["iterations"] += 1
        totals["checked"] += len(old)
        totals["recent_lost"] += len(recent - stored)
        print(
            f"  iteration {iteration}: killed {killed_at - logged[0][0]:.2f} s after the first "
            f"point, in stage {max(p[1] for _, p in logged)}; {len(old)} points older than 1 s "
            f"all present; {len(recent - stored)} of the last second's {len(recent)} not yet "
            "written"
        )

    listed = subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", "runs", "--format", "json"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    statuses = {row["run_id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses == dict.fromkeys(run_ids, "interrupted")
    # A write-capable open (the next `tuneboard run`, the app) works on the crashed file too.
    with Store(database(project)) as store:
        assert store.mark_interrupted() == []
    print(f"kill test totals: {totals}")
