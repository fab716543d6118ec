"""Three processes on one project at once, for real: the app (a stand-in that writes a run of
its own and reads everything in a loop), a headless `tuneboard run`, and `tuneboard sql` over
and over. No lock error reaches anyone, nothing is lost, everyone sees everyone's runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    HERE,
    ProjectFactory,
    child_env,
    experiment,
    start_cli,
)
from tests.reliability.test_crash_kill import read_marker, stored_points

pytestmark = pytest.mark.slow

CLI_RUN = experiment(
    "cli_run",
    {"plugin": "ticker", "points": 200, "interval": 0.01},
    {"plugin": "marked_finetune", "epochs": 1, "max_steps": 8, "lr": 1e-3},
)
APP_RUN = experiment("app_run", {"plugin": "ticker", "points": 500, "interval": 0.01})
SQL = "SELECT run_id, count(*) AS points FROM metrics GROUP BY run_id ORDER BY run_id"


def tuneboard(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_app_headless_run_and_sql_share_a_project(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    project = make_project(CLI_RUN, APP_RUN)
    app_marker, cli_marker = tmp_path / "app-marker.txt", tmp_path / "cli-marker.txt"
    stop, report = tmp_path / "stop", tmp_path / "app.json"
    with (tmp_path / "app.log").open("wb") as app_log:
        app = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "standin_app.py"),
                str(project),
                "app_run",
                *(str(stop), str(report)),
            ],
            cwd=project,
            env=child_env(TB_MARKER=str(app_marker)),
            stdout=app_log,
            stderr=subprocess.STDOUT,
        )
    run_log = tmp_path / "run.log"
    run = start_cli(
        "run", "cli_run", "--quiet", cwd=project, log=run_log, env={"TB_MARKER": str(cli_marker)}
    )
    queries: list[subprocess.CompletedProcess[str]] = []
    try:
        while run.poll() is None:
            queries.append(tuneboard(project, "sql", SQL, "--format", "json"))
            time.sleep(0.5)
        queries.append(tuneboard(project, "sql", SQL, "--format", "json"))
    finally:
        stop.touch()
        run.wait(timeout=120)
        app.wait(timeout=180)

    run_output = run_log.read_text()
    app_output = (tmp_path / "app.log").read_text()
    assert run.returncode == 0, run_output
    assert app.returncode == 0, app_output + report.read_text()
    for text in (run_output, app_output, *(q.stderr for q in queries)):
        assert not re.search(r"\block", text, re.IGNORECASE) and "Traceback" not in text, text
    assert [q.returncode for q in queries] == [0] * len(queries), [q.stderr for q in queries]

    cli_id = read_marker(cli_marker)[0][1][0]
    app = json.loads(report.read_text())
    app_id = app["own"]
    # Everyone sees everyone's runs: the app saw the headless run, SQL saw both.
    assert {cli_id, app_id} <= set(app["seen"]) and app["reads"] > 10
    assert app["status"] == "completed"
    assert {row["run_id"] for row in json.loads(queries[-1].stdout)} == {cli_id, app_id}
    listed = tuneboard(project, "runs", "--format", "json")
    statuses = {row["run_id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses == {cli_id: "completed", app_id: "completed"}
    # Nothing lost: every point either process logged is in the database.
    for marker, run_id in ((cli_marker, cli_id), (app_marker, app_id)):
        logged = {point for _, point in read_marker(marker)}
        assert logged and not logged - stored_points(project, run_id)
    print(f"\n{len(queries)} `tuneboard sql` runs and {app['reads']} app refreshes meanwhile")
