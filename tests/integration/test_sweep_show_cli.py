"""`tuneboard sweep show` on a seeded 12-trial optuna sweep: the table, JSON, and bad ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CliRunner
from tests.tui.seed import SWEEP_BEST, SWEEP_ID, SWEEP_PRUNED, seed_sweep, sweep_run_id


@pytest.fixture
def sweep_project(sentiment_project: Path) -> Path:
    seed_sweep(sentiment_project)
    return sentiment_project


def test_the_table_marks_the_best_trial(cli: CliRunner, sweep_project: Path) -> None:
    done = cli("sweep", "show", "5eed", cwd=sweep_project)  # any part of the id
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"sweep {SWEEP_ID} (optuna) of tiny_sweep: 12 trials (2 pruned)" in out
    assert "objective val/accuracy ↑" in out
    for number in range(1, 13):
        assert sweep_run_id(number) in out  # ids are never cut, even at 80 columns
    rows = [line.split() for line in out.splitlines() if line.lstrip().startswith("◆ ")]
    assert rows[0] == ["◆", "7", sweep_run_id(7), "✓", "completed", "0.003", "cosine", "0.8991"]
    assert out.count("× pruned") == len(SWEEP_PRUNED)
    assert out.count("◆") == 2  # the best row and the line under the table
    assert (
        f"◆ best: trial 7, run {sweep_run_id(7)} (lr=0.003, schedule=cosine): val/accuracy 0.8991"
    ) in out


def test_json_lists_every_trial(cli: CliRunner, sweep_project: Path) -> None:
    done = cli("sweep", "show", SWEEP_ID, "--format", "json", cwd=sweep_project)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["trial"] for row in rows] == list(range(1, 13))
    assert [row["trial"] for row in rows if row["best"]] == [SWEEP_BEST]
    assert [row["trial"] for row in rows if row["pruned"]] == list(SWEEP_PRUNED)
    assert rows[SWEEP_BEST - 1]["stages.0.lr"] == 0.003
    assert rows[SWEEP_BEST - 1]["stages.0.schedule"] == "cosine"
    assert rows[SWEEP_BEST - 1]["objective"] == 0.8991


def test_an_unknown_sweep_is_one_line_and_exit_2(cli: CliRunner, sweep_project: Path) -> None:
    done = cli("sweep", "show", "nope", cwd=sweep_project)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no sweep matches 'nope'"
    assert "Traceback" not in done.stderr
