"""Ctrl-C (SIGINT) to a real `tuneboard run`: the run is cancelled, everything it logged is
written, the process exits 130; and while it ran it listened on no socket."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

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


def test_ctrl_c_cancels_a_long_sql_query(sentiment_project: Path, tmp_path: Path) -> None:
    from tests.reliability.sql_cases import fill
    from tuneboard.store import Store

    with Store(database(sentiment_project)) as store:
        fill(store)
    log = tmp_path / "sql.log"
    long_query = "SELECT count(*) FROM range(10000000000) a, range(1000) b"
    process = start_cli("sql", long_query, cwd=sentiment_project, log=log)
    try:
        time.sleep(2.5)  # started, and deep in the query
        assert process.poll() is None, log.read_text()
        os.kill(process.pid, signal.SIGINT)
        sent = time.monotonic()
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == 130
    assert time.monotonic() - sent < 5
    assert log.read_text().strip() == "query cancelled"
