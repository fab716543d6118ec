"""The NER sample project's `tiny` experiment end to end through the real CLI: augment, mlm,
finetune with FGM and EMA, evaluate with entity-level F1, predict."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLES, CliRunner

pytestmark = pytest.mark.slow


def test_tiny_ner_recipe_reports_entity_f1(cli: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "ner"
    shutil.copytree(SAMPLES / "ner", project, ignore=shutil.ignore_patterns(".tuneboard"))
    done = cli("run", "tiny", "--set", "stages.train.epochs=1", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test/entity_f1" in done.stdout  # in the metrics table under the summary
    assert "val/entity_f1" in done.stdout and "val/perplexity" in done.stdout  # best values

    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        names = {name for (name,) in con.execute("SELECT DISTINCT name FROM metrics").fetchall()}
        [(status, headline)] = con.execute("SELECT status, headline FROM runs").fetchall()
        [(added,)] = con.execute(
            "SELECT value FROM metrics WHERE name = 'augment/added'"
        ).fetchall()
        [(predictions,)] = con.execute(
            "SELECT path FROM artifacts WHERE kind = 'predictions'"
        ).fetchall()
    finally:
        con.close()
    assert status == "completed" and headline == "test/entity_f1"
    assert {
        "test/entity_f1",
        "test/entity_precision",
        "test/entity_recall",
        "test/entity_f1/PER",
        "test/token_accuracy",
        "val/entity_f1",
        "val/perplexity",
    } <= names
    assert 40 < float(str(added)) <= 80  # ratio 0.25 of 320 sentences
    with Path(str(predictions)).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sentence", "token", "tag", "prediction"]
    assert rows[-1]["sentence"] == "79"  # the 80 test sentences, a row per word
