"""A chain of three trained runs, each started from the previous run's export, followed with
`tuneboard lineage` from the newest to the oldest, and kept through export and import."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, CliRunner

pytestmark = pytest.mark.slow


def _train(cli: CliRunner, project: Path, *sets: str) -> str:
    """Run the tiny experiment for one epoch; return the new run's id."""
    args = ["run", "tiny", "--quiet", "--set", "stages.0.epochs=1"]
    for value in sets:
        args += ["--set", value]
    done = cli(*args, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^run (\S+): experiment 'tiny'", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return found.group(1)


def test_a_chain_of_three_runs_reads_as_one_tree(
    cli: CliRunner, sentiment_project: Path, tmp_path: Path
) -> None:
    first = _train(cli, sentiment_project)
    # By name (an id prefix), then by a path into the run folder: both record the parent.
    second = _train(cli, sentiment_project, f"model=run:{first[:-2]}")
    third = _train(cli, sentiment_project, f"model=.tuneboard/runs/{second}/export")

    done = cli("lineage", third, cwd=sentiment_project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.partition("  tiny")[0] for line in lines[:3]] == [
        first,
        f"└─ {second}",
        f"   └─ {third}",
    ]
    assert lines[1].endswith("← export") and lines[2].endswith("← export  ◀ this run")
    assert all("tiny  ✓ completed  test/accuracy " in line for line in lines[:3])
    assert lines[3] == f"stages of {third}: finetune (checkpoint) → evaluate → export"

    middle = cli("lineage", second[:-1], "--json", cwd=sentiment_project)
    assert middle.returncode == 0, middle.stderr
    document = json.loads(middle.stdout)
    assert [node["run_id"] for node in document["ancestors"]] == [first]
    assert [node["run_id"] for node in document["descendants"]] == [third]
    link = document["run"]["link"]
    export = sentiment_project / ".tuneboard" / "runs" / first / "export"
    assert link["parent_run_id"] == first and link["kind"] == "model"
    assert link["artifact_path"] == str(export.resolve()) and len(link["artifact_sha256"]) == 64
    assert link["source"] == f"run:{first[:-2]}"
    assert document["descendants"][0]["link"]["source"] == f".tuneboard/runs/{second}/export"

    sql = cli(
        "sql", "--format", "csv",
        "SELECT parent_run_id, child_run_id FROM lineage WHERE link = 'run' ORDER BY 1",
        cwd=sentiment_project,
    )  # fmt: skip
    assert sql.stdout.splitlines()[1:] == [f"{first},{second}", f"{second},{third}"]

    # Exported alone and imported elsewhere, the newest run keeps its parent.
    out = tmp_path / "export"
    assert cli("export", third, "--out", str(out), cwd=sentiment_project).returncode == 0
    other = tmp_path / "other"
    shutil.copytree(SAMPLES / "sentiment", other, ignore=shutil.ignore_patterns(".tuneboard"))
    assert cli("import", str(out), cwd=other).returncode == 0
    there = cli("lineage", third, cwd=other).stdout.splitlines()
    assert there[0] == f"{second}  (not in this project)"
    assert there[1].startswith(f"└─ {third}  tiny") and there[1].endswith("◀ this run")


def test_lineage_of_an_unknown_run_is_one_line(cli: CliRunner, sentiment_project: Path) -> None:
    done = cli("lineage", "nope", cwd=sentiment_project)
    assert done.returncode == 2
    assert done.stderr == "error: no run matches 'nope'\n"


def test_a_bad_run_source_writes_nothing(cli: CliRunner, sentiment_project: Path) -> None:
    done = cli("run", "tiny", "--set", "model=run:nope", cwd=sentiment_project)
    assert done.returncode == 2
    assert done.stderr == (
        "error: tuneboard.toml: [experiments.tiny]: key 'model': 'run:nope': no runs yet\n"
    )
    assert not (sentiment_project / ".tuneboard" / "runs").exists()
