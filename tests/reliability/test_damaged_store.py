"""Damaged and unusable databases: a truncated file, bit flips in its headers, a garbage
write-ahead log, an unwritable or uncreatable `.tuneboard/`, two processes creating the file.

Each command fails in one line naming the file (exit 2) and leaves the damaged file
byte-identical; the writer stops at once on what waiting cannot heal, rather than retry
forever. Real DuckDB files, real subprocesses only where the process matters.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tests.reliability.conftest import child_env, database, experiment, wait_for
from tuneboard.cli import main
from tuneboard.store import Store
from tuneboard.store.database import UnusableDatabase

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Make `folder` unwritable for the block: mode 0500, or for root (whom modes do not
    stop) the immutable attribute, which stops root too."""
    if not AS_ROOT:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"runs as root and cannot make a folder immutable: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


TICKER = experiment("tick", {"plugin": "ticker", "points": 100_000, "interval": 0.02})


def digest(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (None when it does not exist)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module")
def good_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy database of a few blocks: one run with a stage, metric points, events."""
    path = tmp_path_factory.mktemp("good") / "tuneboard.duckdb"
    with Store(path) as store:
        store.create_run("r1", "tick", {"a": 1}, status="running")
        store.stage_started("r1", 0, name="tick", plugin="ticker", params={})
        for step in range(2000):
            store.log_metrics("r1", 0, step, {"loss": 1.0 / (step + 1), "acc": step / 2000})
        store.log_event("r1", "hello")
        store.set_run_status("r1", "completed")
    return path


def damage(db: Path, kind: str) -> None:
    """Damage the database file (or put a garbage write-ahead log beside it)."""
    data = bytearray(db.read_bytes())
    if kind == "truncated":  # a copy cut short: the last block is missing
        db.write_bytes(data[: len(data) - 70_000])
    elif kind == "truncated_deep":
        db.write_bytes(data[: len(data) // 3])
    elif kind == "main_header_bits":
        data[40] ^= 0x5A
        db.write_bytes(data)
    elif kind == "database_header_bits":  # both database headers, so no good one is left
        data[4096 + 20] ^= 0x10
        data[8192 + 20] ^= 0x10
        db.write_bytes(data)
    else:
        raise ValueError(kind)


@pytest.fixture
def project(sentiment_project: Path, good_database: Path) -> Path:
    """The sentiment sample with the healthy database as its own."""
    db = database(sentiment_project)
    db.parent.mkdir(mode=0o700)
    shutil.copy(good_database, db)
    return sentiment_project


def invoke(project: Path, *args: str) -> tuple[int, str]:
    """Run `tuneboard ARGS` in this process; its exit code and everything it printed."""
    result = CliRunner().invoke(main, [*args, "--project", str(project)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, path: Path) -> None:
    """Exit 2, one line, naming the file, no traceback."""
    lines = output.strip().splitlines()
    assert code == 2, output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert str(path) in lines[0], output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "kind", ["truncated", "truncated_deep", "main_header_bits", "database_header_bits"]
)
@pytest.mark.parametrize("command", [["runs"], ["sql", "SELECT count(*) FROM metrics"]])
def test_reading_a_damaged_database_fails_in_one_line(
    project: Path, kind: str, command: list[str]
) -> None:
    db = database(project)
    damage(db, kind)
    before = digest(db)
    code, output = invoke(project, *command)
    assert_one_line_error(code, output, db)
    assert digest(db) == before
    assert not Path(f"{db}.wal").exists()


@pytest.mark.parametrize("kind", ["truncated", "database_header_bits"])
def test_writing_to_a_damaged_database_is_refused_before_anything_is_written(
    project: Path, kind: str
) -> None:
    db = database(project)
    damage(db, kind)
    before = digest(db)
    with pytest.raises(UnusableDatabase, match=r"tuneboard\.duckdb"):
        Store(db)
    assert digest(db) == before
    assert not Path(f"{db}.wal").exists()


def test_run_on_a_truncated_database_fails_in_one_line_and_writes_nothing(
    project: Path,
) -> None:
    db = database(project)
    damage(db, "truncated")
    before = digest(db)
    code, output = invoke(project, "run", "tiny", "--quiet")
    assert_one_line_error(code, output, db)
    assert digest(db) == before
    assert not (db.parent / "runs").exists()


def test_damage_after_the_first_open_stops_the_writer_at_once(project: Path) -> None:
    """The writer used to take a damaged file for a busy one and retry forever."""
    db = database(project)
    store = Store(db)
    try:
        store.log_event("r1", "written")
        store.flush(timeout=30)
        damage(db, "truncated")
        before = digest(db)
        store.log_metrics("r1", 0, 5000, {"loss": 0.5})
        with pytest.raises(UnusableDatabase, match=r"tuneboard\.duckdb"):
            store.flush(timeout=30)
        assert store.failure is not None
        assert digest(db) == before
        store.log_event("r1", "dropped, not retried")  # no error: the failure is reported once
    finally:
        store.close()  # does not raise either
    assert digest(db) == before


def test_a_garbage_write_ahead_log_is_kept_aside_byte_identical(project: Path) -> None:
    """DuckDB skips a log it cannot read from its start (as after a torn write): reads go on
    without it, and before a write would replace it, it is renamed, not lost."""
    db = database(project)
    wal = Path(f"{db}.wal")
    garbage = random.Random(15).randbytes(5000)
    wal.write_bytes(garbage)
    before = digest(db)
    code, output = invoke(project, "sql", "SELECT count(*) AS n FROM runs", "--format", "csv")
    assert (code, output.splitlines()[:2]) == (0, ["n", "1"]), output
    assert (digest(db), wal.read_bytes()) == (before, garbage)
    with Store(db) as store:
        store.log_event("r1", "after the garbage log")
    kept = Path(f"{wal}.unreadable")
    assert kept.read_bytes() == garbage
    assert [e.message for e in Store(db, read_only=True).events("r1")][-1] == (
        "after the garbage log"
    )


def test_an_unwritable_tuneboard_folder_refuses_writes_and_allows_reads(project: Path) -> None:
    db = database(project)
    before = digest(db)
    with unwritable(db.parent):
        with pytest.raises(UnusableDatabase, match="is not writable"):
            Store(db)
        assert [r.run_id for r in Store(db, read_only=True).list_runs()] == ["r1"]
        code, output = invoke(project, "run", "tiny", "--quiet")
        assert_one_line_error(code, output, db)
    assert digest(db) == before


@pytest.mark.parametrize(
    "command", [["runs"], ["sql", "SELECT 1"], ["run", "tiny", "--quiet"]], ids=lambda c: c[0]
)
def test_a_read_only_project_without_a_database_fails_in_one_line(
    sentiment_project: Path, command: list[str]
) -> None:
    with unwritable(sentiment_project):
        code, output = invoke(sentiment_project, *command)
    assert_one_line_error(code, output, sentiment_project / ".tuneboard")
    assert not (sentiment_project / ".tuneboard").exists()


RACE = """
import sys, time
from pathlib import Path
from tuneboard.store import Store
db, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
go.with_name(f"ready-{name}").touch()
while not go.exists():
    time.sleep(0.002)
with Store(db) as store:
    store.log_event(name, "created")
print("ok")
"""


def test_two_processes_creating_the_database_both_succeed(tmp_path: Path) -> None:
    db = tmp_path / "project" / ".tuneboard" / "tuneboard.duckdb"
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(db), str(go), name],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        wait_for(
            lambda: (tmp_path / "ready-a").exists() and (tmp_path / "ready-b").exists(),
            120,
            "both processes to be ready",
        )
        go.touch()  # both create the folder and the file at once
        outputs = [child.communicate(timeout=120)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0, 0], outputs
    assert [out.strip() for out in outputs] == ["ok", "ok"], outputs
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT run_id FROM events ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert rows == [("a",), ("b",)]
