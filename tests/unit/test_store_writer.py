"""The writer thread: batching, nothing lost, ordering, and two real processes on one file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.store import Store, run_query

REPO = Path(__file__).resolve().parents[2]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}

LOG_POINTS = """
import sys, time
from pathlib import Path
from tuneboard.store import Store
path, run_id, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = Store(path, flush_interval=0.05)
store.create_run(run_id, "exp", {"child": True}, status="running")
for step in range(steps):
    store.log_metrics(run_id, 0, step, {"loss": 1.0 / (step + 1), "acc": step / steps})
    if step % 250 == 0:
        time.sleep(0.02)
store.close()
"""

EXIT_WITHOUT_CLOSE = """
import sys
from pathlib import Path
from tuneboard.store import Store
store = Store(Path(sys.argv[1]), flush_interval=60)
store.create_run("r", "exp", {})
for step in range(1000):
    store.log_metrics("r", 0, step, {"loss": 1.0})
"""

HOLD_FILE = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / ".tuneboard" / "tuneboard.duckdb", flush_interval=0.05)
    yield store
    store.close()


def count(store: Store, sql: str) -> int:
    value = run_query(store, sql).rows[0][0]
    assert isinstance(value, int)
    return value


def test_many_calls_make_few_inserts(store: Store) -> None:
    assert store.writer is not None
    store.create_run("r", "exp", {})
    for step in range(20_000):
        store.log_metrics("r", 0, step, {"loss": 0.5})
    store.flush()
    assert count(store, "SELECT count(*) FROM metrics") == 20_000
    assert store.writer.points == 20_000
    assert store.writer.inserts <= 10
    assert store.writer.batches <= 12


def test_log_metrics_is_cheap(store: Store) -> None:
    calls = 50_000
    started = time.perf_counter()
    for step in range(calls):
        store.log_metrics("r", 0, step, {"loss": 0.5, "acc": 0.9})
    per_call = (time.perf_counter() - started) / calls
    assert per_call < 50e-6  # a few microseconds on a quiet machine; loose for busy CI


def test_nothing_lost_at_close(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    store = Store(path)
    store.create_run("r", "exp", {})
    for step in range(100_000):
        store.log_metrics("r", 0, step, {"loss": 1.0})
    store.close()
    reader = Store(path, read_only=True)
    assert count(reader, "SELECT count(*) FROM metrics") == 100_000
    assert count(reader, "SELECT count(DISTINCT step) FROM metrics") == 100_000


def test_a_logged_point_is_visible_within_a_second(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.flush()
    store.log_metrics("r", 0, 7, {"loss": 0.25})
    started = time.monotonic()
    while store.last_metrics("r") != {"loss": 0.25}:
        assert time.monotonic() - started < 1.0
        time.sleep(0.01)


def test_flush_returns_once_committed_and_lets_go_of_the_file(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.log_event("r", "hello")
    store.flush(timeout=5)
    assert not store.database.is_open
    assert [e.message for e in store.events("r")] == ["hello"]


def test_operations_apply_in_order(store: Store) -> None:
    store.create_run("r", "exp", {}, at=100.0)
    store.set_run_status("r", "running", device="cpu", at=101.0)
    store.stage_started("r", 0, name="train", plugin="finetune", params={"lr": 0.1}, at=102.0)
    for done in range(1, 51):
        store.set_progress("r", 0, done, 100)
    store.log_metrics("r", 0, 1, {"old": 1.0})
    store.delete_run("r")
    store.create_run("r", "exp", {"again": True}, at=200.0)
    store.set_run_status("r", "running", at=201.0)
    store.set_progress("r", 0, 9, 10)  # before its stage exists: no effect
    store.stage_started("r", 0, name="train", plugin="finetune", params={}, at=202.0)
    store.set_progress("r", 0, 3, 10)
    store.log_metrics("r", 0, 1, {"new": 1.0})
    for n in range(5):
        store.log_event("r", f"event {n}", at=203.0)
    store.set_run_status("r", "completed", at=204.0)
    store.flush()

    run = store.get_run("r")
    assert run.config == {"again": True}
    assert (run.status, run.started_at, run.finished_at) == ("completed", 201.0, 204.0)
    assert run.device is None
    assert store.metric_names("r") == ["new"]
    [stage] = store.stages("r")
    assert (stage.steps, stage.total_steps) == (3, 10)
    assert [e.message for e in store.events("r")] == [f"event {n}" for n in range(5)]
    assert [e.message for e in store.events("r", limit=2)] == ["event 3", "event 4"]


def test_progress_is_coalesced(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.stage_started("r", 0, name="s", plugin="p", params={})
    store.flush()
    for done in range(1, 1001):
        store.set_progress("r", 0, done, 1000)
    store.flush()
    [stage] = store.stages("r")
    assert stage.steps == 1000
    assert store.list_runs()[0].current_stage == "s"
    assert store.list_runs()[0].progress == 1.0


def test_a_write_that_cannot_succeed_is_logged_and_the_rest_kept(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert store.writer is not None
    store.create_run("r", "exp", {})
    store.log_metrics("r", 0, 0, {"loss": 1.0})
    store.create_run("r", "exp", {})  # duplicate key
    store.log_metrics("r", 0, 1, {"loss": "not a number"})  # type: ignore[dict-item]
    store.log_metrics("r", 0, 2, {"loss": 3.0})
    with caplog.at_level(logging.ERROR, logger="tuneboard.store.writer"):
        store.flush()
    assert store.writer.dropped == 2
    assert len([r for r in caplog.records if "dropped a write" in r.message]) == 2
    assert count(store, "SELECT count(*) FROM runs") == 1
    assert store.series("r", "loss").ys == [1.0, 3.0]


def test_writes_wait_for_another_process_without_losing_points(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.duckdb"
    store = Store(path, flush_interval=0.05, lock_timeout=0.2)
    store.create_run("r", "exp", {})
    store.flush()
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(path), "1.0"],
        stdout=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    with caplog.at_level(logging.WARNING, logger="tuneboard.store.writer"):
        for step in range(1000):
            store.log_metrics("r", 0, step, {"loss": 1.0})
        time.sleep(0.4)
        store.flush(timeout=20)
    child.wait()
    assert any("cannot write" in r.message for r in caplog.records)
    assert count(store, "SELECT count(*) FROM metrics") == 1000
    store.close()


def test_two_processes_write_while_a_third_reads(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    store = Store(path, flush_interval=0.05)
    steps = 5000
    children = [
        subprocess.Popen(
            [sys.executable, "-c", LOG_POINTS, str(path), run_id, str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for run_id in ("a", "b")
    ]
    reads = 0
    while any(child.poll() is None for child in children):
        store.list_runs()
        count(store, "SELECT count(*) FROM metrics")
        reads += 1
        # A user query opens the file on a connection of its own (tens of ms): leave the
        # writers gaps to take the lock in, as a person at the SQL prompt would.
        time.sleep(0.05)
    for child in children:
        _, err = child.communicate()
        assert child.returncode == 0, err
        assert "Traceback" not in err
    assert reads > 0
    totals = run_query(store, "SELECT run_id, count(*) FROM metrics GROUP BY run_id ORDER BY 1")
    assert totals.rows == [("a", 2 * steps), ("b", 2 * steps)]
    assert {run.run_id for run in store.list_runs()} == {"a", "b"}
    store.close()


def test_queued_writes_are_committed_at_exit(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    subprocess.run([sys.executable, "-c", EXIT_WITHOUT_CLOSE, str(path)], check=True, env=CHILD_ENV)
    reader = Store(path, read_only=True)
    assert count(reader, "SELECT count(*) FROM metrics") == 1000


def test_reads_inside_hold_share_one_open_while_the_writer_waits(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.flush()
    opens = store.database.opens
    with store.hold():
        store.log_metrics("r", 0, 0, {"loss": 1.0})
        time.sleep(0.2)  # the writer is now waiting for the read-only connection
        assert store.list_runs()[0].run_id == "r"
        assert store.metric_names("r") == []
        assert store.database.opens == opens + 1
    store.flush(timeout=5)
    assert store.metric_names("r") == ["loss"]
