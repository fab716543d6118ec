"""The command line in a narrow terminal and in a pipe, and `--project` before the command.

Run ids and statuses are never cut: at 80 columns (a pipe counts as 80 unless COLUMNS says
otherwise) the other columns wrap. `tuneboard -p DIR COMMAND` is `tuneboard COMMAND -p DIR`.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import CliRunner
from tests.tui.seed import COMPLETED_MULTI, COMPLETED_TINY, FAILED_TINY, seed_database
from tuneboard.ui.render import rich_table

# COLUMNS=80 as an 80-column terminal sets it; "" leaves a pipe's own width (80).
WIDTHS = [
    pytest.param({"COLUMNS": "80"}, id="80-columns"),
    pytest.param({"COLUMNS": ""}, id="pipe"),
]


@pytest.fixture
def seeded(sentiment_project: Path) -> Path:
    """The sentiment project with made-up runs (no training)."""
    seed_database(sentiment_project, running=False)
    return sentiment_project


def _lines_with(output: str, text: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


@pytest.mark.parametrize("env", WIDTHS)
def test_runs_keeps_ids_and_statuses_whole(
    cli: CliRunner, seeded: Path, env: dict[str, str]
) -> None:
    done = cli("runs", cwd=seeded, env=env)
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    for run_id in (COMPLETED_TINY, COMPLETED_MULTI, FAILED_TINY):
        assert _lines_with(done.stdout, run_id), done.stdout
    assert len(_lines_with(done.stdout, "✓ completed")) == 2, done.stdout
    assert len(_lines_with(done.stdout, "✗ failed")) == 1, done.stdout


@pytest.mark.parametrize("env", WIDTHS)
def test_sql_and_show_keep_ids_and_statuses_whole(
    cli: CliRunner, seeded: Path, env: dict[str, str]
) -> None:
    columns = "run_id, experiment, status, device, created_at, started_at, headline, config"
    query = f"SELECT {columns} FROM runs ORDER BY run_id"
    done = cli("sql", query, cwd=seeded, env=env)
    assert done.returncode == 0, done.stderr
    assert _lines_with(done.stdout, COMPLETED_TINY) and _lines_with(done.stdout, FAILED_TINY)
    shown = cli("show", COMPLETED_MULTI, cwd=seeded, env=env)
    assert shown.returncode == 0, shown.stderr
    assert len(_lines_with(shown.stdout, "✓ completed")) >= 3, shown.stdout


def test_every_table_keeps_run_and_status_columns_whole() -> None:
    """The helper every table goes through (a sweep's table has a `run` column)."""
    columns = ["run", "status", "training.lr", "training.epochs", "training.warmup", "note"]
    long = "a long note that can wrap over several lines without harm " * 2
    rows = [[f"20261203-0826{i:02d}-abcd", "■ pruned", 0.001, 3, 0.1, long] for i in range(3)]
    out = io.StringIO()
    Console(file=out, width=80).print(rich_table(columns, rows, title="sweep"))
    for i in range(3):
        assert _lines_with(out.getvalue(), f"20261203-0826{i:02d}-abcd"), out.getvalue()
    assert len(_lines_with(out.getvalue(), "■ pruned")) == 3, out.getvalue()


def test_project_before_the_command(cli: CliRunner, seeded: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (
        ["--project", str(seeded), "runs", "--format", "csv"],
        ["-p", str(seeded), "sql", "--format", "csv", "SELECT run_id FROM runs"],
        ["-p", str(seeded), "show", COMPLETED_TINY],
        ["-p", str(seeded), "runs", "-p", f"{seeded}/", "--format", "csv"],  # the same folder
    ):
        done = cli(*args, cwd=elsewhere)
        assert done.returncode == 0, (args, done.stderr)
        assert COMPLETED_TINY in done.stdout, args
    after = cli("runs", "--project", str(seeded), "--format", "csv", cwd=elsewhere)
    assert after.returncode == 0 and COMPLETED_TINY in after.stdout


def test_two_different_projects_is_one_line(cli: CliRunner, seeded: Path, tmp_path: Path) -> None:
    done = cli("-p", str(seeded), "runs", "-p", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --project given twice: {seeded} before the command, {tmp_path} after"
    ]
    assert "Traceback" not in done.stderr
