"""Ctrl-C (SIGINT) to a real `tuneboard run`: the run is cancelled, everything it logged is
written, the process exits 130; and while it ran it listened on no socket."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil
import pytest

from tests.reliability.conftest import (
    ProjectFactory,
    database,
    experiment,
    query,
    start_cli,
    wait_for,
)
from tests.reliability.test_crash_kill import read_marker, stored_points

pytestmark = pytest.mark.slow

LONG = experiment(
    "long",
    {"plugin": "ticker", "points": 40, "interval": 0.005},
    {"plugin": "marked_finetune", "epochs": 50, "lr": 1e-3},
)


def listening_sockets(pid: int) -> list[object]:
    """The sockets a process (and its children) listen on or has open to the network."""
    found: list[object] = []
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        for connection in process.net_connections(kind="inet"):
            found.append(connection)
        for connection in process.net_connections(kind="unix"):
            if connection.status == psutil.CONN_LISTEN:
                found.append(connection)
    return found


def assert_private(project: Path) -> None:
    """The database and the run folders are the owner's alone."""
    tuneboard_dir = project / ".tuneboard"
    assert stat.S_IMODE(database(project).stat().st_mode) == 0o600
    for folder in [tuneboard_dir, tuneboard_dir / "runs", *(tuneboard_dir / "runs").iterdir()]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_ctrl_c_cancels_the_run_writes_everything_and_exits_130(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    project = make_project(LONG)
    marker, log = tmp_path / "marker.txt", tmp_path / "run.log"
    process = start_cli("run", "long", cwd=project, log=log, env={"TB_MARKER": str(marker)})
    try:
        # Wait until the real training loop (stage 1) is logging.
        wait_for(
            lambda: (
                " 1 " in (marker.read_text() if marker.exists() else "")
                or process.poll() is not None
            ),
            180,
            "the fine-tuning stage to log",
        )
        assert process.poll() is None, log.read_text()
        assert listening_sockets(process.pid) == []  # no network listener, no connection
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGINT)
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert returncode == 130, output
    assert "Traceback" not in output
    assert "interrupted" in output

    logged = read_marker(marker)
    run_id = logged[0][1][0]
    [(status, error)] = query(project, "SELECT status, error FROM runs WHERE run_id = ?", [run_id])
    assert (status, error) == ("cancelled", "cancelled by the user")
    stages = dict(
        query(project, "SELECT stage_index, status FROM stages WHERE run_id = ?", [run_id])
    )
    assert stages == {0: "completed", 1: "cancelled"}
    # Every point handed to ctx.log before the process ended was written: none pending.
    missing = {point for _, point in logged} - stored_points(project, run_id)
    assert not missing, sorted(missing)[:5]
    [(message,)] = query(
        project,
        "SELECT message FROM events WHERE run_id = ? ORDER BY time DESC, rowid DESC LIMIT 1",
        [run_id],
    )
    assert message == "run cancelled"
    assert_private(project)


LONG_QUERY = "SELECT count(*) FROM range(10000000000) a, range(1000) b"


def has_open(pid: int, path: Path) -> bool:
    """True while the process has the file open (DuckDB has it attached)."""
    try:
        return any(f.path == str(path) for f in psutil.Process(pid).open_files())
    except psutil.Error:
        return False


def cpu_seconds(pid: int) -> float:
    """The user CPU time a process has used."""
    try:
        return psutil.Process(pid).cpu_times().user
    except psutil.Error:
        return float("inf")


@pytest.fixture
def filled_project(sentiment_project: Path) -> Path:
    """The sentiment sample with a few runs in its database."""
    from tests.reliability.sql_cases import fill
    from tuneboard.store import Store

    with Store(database(sentiment_project)) as store:
        fill(store)
    return sentiment_project


def interrupt_sql(project: Path, log: Path, when: Callable[[int], bool], what: str) -> int:
    """Start `tuneboard sql LONG_QUERY`, send SIGINT once `when(pid)` holds; its exit code."""
    process = start_cli("sql", LONG_QUERY, cwd=project, log=log)
    try:
        wait_for(lambda: when(process.pid) or process.poll() is not None, 60, what)
        assert process.poll() is None, log.read_text()
        os.kill(process.pid, signal.SIGINT)
        # A hang fails here; the bound is loose because a loaded CI machine is slow to exit.
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return returncode


def test_ctrl_c_cancels_a_long_sql_query(filled_project: Path, tmp_path: Path) -> None:
    log, db = tmp_path / "sql.log", database(filled_project)
    started: list[float] = []

    def deep_in_the_query(pid: int) -> bool:
        if not started:
            if has_open(pid, db):
                started.append(cpu_seconds(pid))
            return False
        return cpu_seconds(pid) > started[0] + 0.5

    returncode = interrupt_sql(filled_project, log, deep_in_the_query, "the query to run")
    assert returncode == 130
    assert log.read_text().strip() == "query cancelled"


def loads_duckdb(pid: int) -> bool:
    """True once the process has DuckDB's library loaded (it is importing `duckdb`)."""
    try:
        return "duckdb" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/PID/maps")
def test_ctrl_c_while_sql_starts(filled_project: Path, tmp_path: Path) -> None:
    """Once a traceback or `interrupted` with exit -2 (KeyboardInterrupt inside an import)."""
    log = tmp_path / "sql.log"
    returncode = interrupt_sql(filled_project, log, loads_duckdb, "DuckDB to load")
    assert (returncode, log.read_text().strip()) == (130, "query cancelled")


def test_ctrl_c_while_duckdb_opens_the_file_for_sql(filled_project: Path, tmp_path: Path) -> None:
    """DuckDB must never see a KeyboardInterrupt (it once aborted the process, exit 134)."""
    log, db = tmp_path / "sql.log", database(filled_project)
    returncode = interrupt_sql(
        filled_project, log, lambda pid: has_open(pid, db), "DuckDB to open the file"
    )
    assert returncode == 130, log.read_text()
    assert log.read_text().strip() == "query cancelled"


TICKER = experiment("tick", {"plugin": "ticker", "points": 100_000, "interval": 0.02})


def hold_database(project: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection of this process to the project's database: while it is open,
    no other process can write the file (it waits, as for any other holder)."""
    held: list[duckdb.DuckDBPyConnection] = []

    def connect() -> bool:
        try:
            held.append(duckdb.connect(str(database(project)), read_only=True))
        except duckdb.IOException:  # the run's writer has it for a moment
            return False
        return True

    wait_for(connect, 60, "the database to be free for a moment")
    return held[0]


def test_a_second_ctrl_c_exits_at_once(make_project: ProjectFactory, tmp_path: Path) -> None:
    """The first Ctrl-C stops the run and waits to write its end, here for a file held by
    another process; the second one exits at once (it used to wait as long as the holder)."""
    project = make_project(TICKER)
    marker, log = tmp_path / "marker.txt", tmp_path / "run.log"
    process = start_cli("run", "tick", cwd=project, log=log, env={"TB_MARKER": str(marker)})
    holder = None
    try:
        wait_for(lambda: marker.exists() or process.poll() is not None, 120, "the run to log")
        holder = hold_database(project)
        os.kill(process.pid, signal.SIGINT)
        wait_for(lambda: "cancelling the run" in log.read_text(), 30, "the first Ctrl-C")
        assert process.poll() is None, log.read_text()  # still waiting for the file
        os.kill(process.pid, signal.SIGINT)
        returncode = process.wait(timeout=10)
    finally:
        if holder is not None:
            holder.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert returncode == 130, output
    assert "Traceback" not in output
    assert output.strip().endswith("interrupted again: exiting now"), output


def test_a_run_stops_in_one_line_when_its_database_is_damaged(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    """It used to retry its writes forever (and survive Ctrl-C)."""
    project = make_project(TICKER)
    db = database(project)
    marker, log = tmp_path / "marker.txt", tmp_path / "run.log"
    process = start_cli("run", "tick", cwd=project, log=log, env={"TB_MARKER": str(marker)})
    try:
        wait_for(lambda: marker.exists() or process.poll() is not None, 120, "the run to log")
        holder = hold_database(project)  # so the run's writer is not in the file meanwhile
        with db.open("r+b") as f:
            f.truncate(db.stat().st_size - 70_000)
        damaged = db.read_bytes()
        holder.close()
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {db} is damaged: " + errors[0].split(": ", 2)[2]], output
    assert "Traceback" not in output
    assert db.read_bytes() == damaged
