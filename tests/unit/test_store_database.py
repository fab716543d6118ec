"""The connection manager and migrations, on real DuckDB files (and a real second process)."""

from __future__ import annotations

import ctypes
import os
import resource
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import Store
from tuneboard.store.database import Database
from tuneboard.store.migrations import MIGRATIONS

REPO = Path(__file__).resolve().parents[2]

HOLD_FILE = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def hold_file(path: Path, seconds: float) -> subprocess.Popen[str]:
    """A child process that opens `path` read-write and keeps it for `seconds`."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    return child


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "project" / ".tuneboard" / "tuneboard.duckdb"


def test_migrations_are_applied_once_and_recorded(db_path: Path) -> None:
    Store(db_path).close()
    conn = duckdb.connect(str(db_path))
    try:
        recorded = conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
        tables = {t for (t,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        conn.close()
    assert [name for (name,) in recorded] == [name for name, _ in MIGRATIONS]
    assert {
        "runs",
        "stages",
        "metrics",
        "events",
        "artifacts",
        "generations",
        "_migrations",
    } <= tables

    # A fresh Database (as in a new process) opening the file again applies nothing new.
    Database._registry.pop(db_path.resolve())
    store = Store(db_path)
    store.create_run("r1", "exp", {})
    store.close()
    conn = duckdb.connect(str(db_path))
    try:
        assert conn.execute("SELECT count(*) FROM _migrations").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    finally:
        conn.close()


def test_file_and_folder_are_private(db_path: Path) -> None:
    Store(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_one_database_per_file_and_closed_when_unused(db_path: Path) -> None:
    first, second = Store(db_path), Store(db_path.parent / ".." / ".tuneboard" / db_path.name)
    try:
        assert first.database is second.database
        assert first.writer is second.writer
        assert not first.database.is_open
        with first.database.cursor() as cur:
            assert first.database.is_open
            cur.execute("SELECT count(*) FROM runs").fetchall()
        assert not first.database.is_open
    finally:
        first.close()
        second.close()


def test_threads_share_the_connection(db_path: Path) -> None:
    store = Store(db_path)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                store.list_runs()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20):
        store.log_metrics("r", 0, i, {"x": 1.0})
    for thread in threads:
        thread.join()
    store.close()
    assert errors == []


def test_lock_timeout_names_file_and_pid(db_path: Path) -> None:
    Store(db_path).close()
    child = hold_file(db_path, 5)
    try:
        started = time.monotonic()
        with pytest.raises(TuneboardError) as caught:
            Store(db_path, lock_timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 2
    finally:
        child.kill()
        child.wait()
    message = str(caught.value)
    assert "\n" not in message
    assert str(db_path.resolve()) in message
    assert f"PID {child.pid}" in message


def test_open_waits_for_another_process_to_let_go(db_path: Path) -> None:
    Store(db_path).close()
    child = hold_file(db_path, 0.5)
    try:
        store = Store(db_path, lock_timeout=10)
        assert store.list_runs() == []
        store.close()
    finally:
        child.wait()


def test_read_only_store(db_path: Path) -> None:
    with pytest.raises(TuneboardError, match="no tuneboard database"):
        Store(db_path, read_only=True)
    Store(db_path).close()
    reader = Store(db_path, read_only=True)
    assert reader.list_runs() == []
    with pytest.raises(TuneboardError, match="read-only"):
        reader.log_metrics("r", 0, 0, {"x": 1.0})
    reader.close()


def test_the_file_is_reopened_on_the_same_instance_and_released_between_uses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "reuse.duckdb"
    db = Database.for_path(path)
    for value in range(3):
        with db.cursor(write=True) as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
            cur.execute("INSERT INTO t VALUES (?)", [value])
        assert not db.is_open
        # Released: another process can open the file read-write in between.
        assert hold_file(path, 0).wait(timeout=60) == 0
    with db.cursor() as cur:
        assert cur.execute("SELECT sum(v) FROM t").fetchone() == (3,)
    assert db.opens == 4


def test_a_forked_child_does_not_free_the_parents_duckdb_instance(tmp_path: Path) -> None:
    # Only the registry keeps this `Database` (and its instance) alive.
    with Database.for_path(tmp_path / "fork.duckdb").cursor(write=True) as cur:
        cur.execute("SELECT 1")
    del cur
    # preexec_fn makes subprocess fork (not spawn): the child runs the at-fork hook with the
    # parent's instance in its registry, whose threads did not survive the fork.
    child = subprocess.run(
        [sys.executable, "-c", "print('exec ok')"],
        preexec_fn=lambda: None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (child.returncode, child.stdout) == (0, "exec ok\n")


_BLOCK_BYTES, _BLOCKS = 100_000, 500  # ~50 MB, each block below glibc's mmap threshold


def _refault_after(action: Callable[[], None]) -> int:
    """Page faults in touching again ~50 MB of heap that this thread freed before `action`.

    The memory is freed in chunks below glibc's mmap threshold, with a live block after them,
    so it stays in the heap, mapped, unless something trims the heap (`malloc_trim`).
    """
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def touch_blocks() -> list[int]:
        blocks = [libc.malloc(_BLOCK_BYTES) for _ in range(_BLOCKS)]
        for block in blocks:
            ctypes.memset(block, 1, _BLOCK_BYTES)
        return blocks

    blocks = touch_blocks()
    fence = libc.malloc(_BLOCK_BYTES)  # from the top, above the blocks: freed, they are not the top
    for block in blocks:
        libc.free(block)
    action()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    blocks = touch_blocks()
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    for block in blocks:
        libc.free(block)
    libc.free(fence)
    return faults


@pytest.mark.skipif(not hasattr(resource, "RUSAGE_THREAD"), reason="Linux only")
def test_writing_does_not_trim_the_heap_of_other_threads(tmp_path: Path) -> None:
    # An idle DuckDB worker thread calls malloc_trim, which releases the free heap of every
    # thread; a training thread then page-faulted its tensors' memory back in after each
    # writer batch (~10% slower on 2 cores). The store's DuckDB runs no worker threads.
    store = Store(tmp_path / "trim.duckdb")

    def write_and_idle() -> None:
        store.log_metrics("r", 0, 0, {"x": 1.0})
        store.flush()
        with store.database.cursor() as cur:
            cur.execute("SELECT count(*) FROM range(1000000)").fetchone()
        time.sleep(1.0)  # DuckDB's workers trim after 0.5 s idle

    try:
        write_and_idle()  # a new instance trims once as it starts its threads
        faults = _refault_after(write_and_idle)
    finally:
        store.close()
    pages = _BLOCKS * _BLOCK_BYTES // resource.getpagesize()
    assert faults < pages // 10, f"{faults} page faults touching {pages} pages again"


EXIT_DURING_A_USE = """
import sys, threading
from pathlib import Path
from tuneboard.store import Store

db = Store(Path(sys.argv[1])).database
in_use = threading.Event()

def use() -> None:
    with db.cursor() as cur:
        in_use.set()
        cur.execute("SELECT count(*) FROM range(300000000) WHERE range % 7 = 3").fetchall()
        Path(sys.argv[2]).write_text("done")  # still inside the use
    # Stay (the cursor's own deallocation when this returns is outside what the exit waits
    # for: threads that end with the process are joined by those who started them).
    threading.Event().wait()

threading.Thread(target=use, daemon=True).start()
assert in_use.wait(60)
"""


def test_python_exits_after_other_threads_uses_end(tmp_path: Path) -> None:
    """A daemon thread inside a DuckDB call when the main thread ends: the exit waits for its
    use to end (unwound while Python finalizes, it would abort the process)."""
    marker = tmp_path / "marker"
    script = [sys.executable, "-c", EXIT_DURING_A_USE, str(tmp_path / "db.duckdb"), str(marker)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"
