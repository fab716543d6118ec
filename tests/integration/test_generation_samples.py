"""The generation sample projects' `tiny` experiments end to end through the real CLI.

Each `tiny` pipeline measures its randomly initialised model on the test split (the stage
named `untrained`), fine-tunes it, and measures it again; the database must show the trained
model well above the untrained one, and the generations behind those numbers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow


def run_tiny(tmp_path: Path, sample: str) -> tuple[Path, str]:
    """Copy `sample` to `tmp_path` and run its `tiny` experiment: (project, run id)."""
    project = tmp_path / sample
    shutil.copytree(SAMPLES / sample, project, ignore=shutil.ignore_patterns(".tuneboard"))
    done = subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", "run", "tiny", "--quiet"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return project, done.stdout.split()[1].rstrip(":")


def measured(project: Path, run_id: str) -> tuple[dict[str, float], dict[str, float], int]:
    """The test values of the untrained (stage 0) and trained (stage 2) model, and how many
    test generations the trained model's evaluation wrote."""
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT stage_index, name, value FROM metrics WHERE run_id = ? AND name LIKE 'test/%'",
            [run_id],
        ).fetchall()
        [(generations,)] = con.execute(
            "SELECT count(*) FROM generations WHERE run_id = ? AND stage_index = 2 "
            "AND split = 'test' AND output IS NOT NULL AND reference IS NOT NULL",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    before = {name: float(value) for stage, name, value in rows if stage == 0}
    after = {name: float(value) for stage, name, value in rows if stage == 2}
    return before, after, int(generations)


def test_support_assistant_learns_its_answers(tmp_path: Path) -> None:
    project, run_id = run_tiny(tmp_path, "support")
    before, after, generations = measured(project, run_id)
    assert before["test/exact_match"] == 0.0  # a random GPT-2 never says an answer word for word
    assert after["test/exact_match"] >= 0.4
    assert after["test/rouge"] >= before["test/rouge"] + 40
    assert after["test/loss"] < before["test/loss"] / 3
    test_lines = (project / "data" / "test.jsonl").read_text().splitlines()
    assert generations == len(test_lines)


def test_summariser_learns_its_summaries(tmp_path: Path) -> None:
    project, run_id = run_tiny(tmp_path, "summarise")
    before, after, generations = measured(project, run_id)
    assert before["test/exact_match"] == 0.0
    assert after["test/exact_match"] >= 0.4
    assert after["test/bleu"] >= before["test/bleu"] + 40
    assert after["test/chrf"] >= before["test/chrf"] + 40
    assert after["test/loss"] < before["test/loss"] / 3
    test_lines = (project / "data" / "test.tsv").read_text().splitlines()
    assert generations == len(test_lines) - 1  # less the header row
