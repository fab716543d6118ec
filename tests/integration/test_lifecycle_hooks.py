"""Lifecycle hooks in real runs, and plugins that raise: skipped with a warning, or the run fails.

Project plugins record every hook call to a JSON-lines file; another raises in its hooks. Runs
use the tiny random model (no training: `evaluate` only), through the real engine and database
(`tuneboard.testing.ThrowawayProject`).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.sdk.errors import PluginError
from tuneboard.store import Store
from tuneboard.testing import ThrowawayProject

pytestmark = pytest.mark.slow

RECORDER = """
import json
import os

from tuneboard import hookimpl


def _record(hook, **values):
    with open(os.environ["TB_HOOK_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"hook": hook, **values}, default=str) + "\\n")


@hookimpl
def run_queued(run_id, experiment, run_dir):
    _record("run_queued", run_id=run_id, experiment=experiment, run_dir_exists=run_dir.is_dir())


@hookimpl
def run_started(run_id, device):
    _record("run_started", run_id=run_id, device=device)


@hookimpl
def stage_finished(run_id, stage_index, name, plugin, status, steps):
    _record("stage_finished", run_id=run_id, stage_index=stage_index, name=name, plugin=plugin,
            status=status, steps=steps)


@hookimpl
def run_finished(run_id, experiment, status, error, metrics, project_dir):
    _record("run_finished", run_id=run_id, experiment=experiment, status=status, error=error,
            metrics=metrics, project_dir=str(project_dir))
"""

NOISY = """
from tuneboard import hookimpl


@hookimpl
def run_started(run_id):
    raise RuntimeError("the notification service is down")


@hookimpl
def stage_finished(stage_index):
    raise KeyError(stage_index)


@hookimpl
def run_finished(status):
    raise ValueError(f"cannot report {status}")
"""

FAULTY = """
import threading
from dataclasses import dataclass

from tuneboard import Dataset, Metric, NoParams, Stage, hookimpl

GATE = threading.Event()


class Fails(Stage[NoParams]):
    name = "fails"

    def run(self, ctx, state):
        raise OSError("disk on fire")


class Gate(Stage[NoParams]):
    name = "gate"

    def run(self, ctx, state):
        while not GATE.wait(0.05):
            ctx.check_stop()
        return state


class Flaky(Metric):
    name = "flaky"

    def compute(self, predictions, references, label_names):
        return {"flaky": 1 / 0}


class Unreadable(Dataset[NoParams]):
    name = "unreadable"

    def load(self, ctx):
        raise UnicodeError("not the encoding I expected")


@hookimpl
def register_stages(register):
    register(Fails)
    register(Gate)


@hookimpl
def register_metrics(register):
    register(Flaky)


@hookimpl
def register_datasets(register):
    register(Unreadable)
"""


@pytest.fixture
def hook_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "hooks.jsonl"
    monkeypatch.setenv("TB_HOOK_LOG", str(log))
    return log


@pytest.fixture
def project(tuneboard_project: ThrowawayProject, tmp_path: Path) -> ThrowawayProject:
    """The throwaway project with the recording, noisy and faulty project plugins."""
    for name, source in (("recorder", RECORDER), ("noisy", NOISY), ("faulty", FAULTY)):
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        tuneboard_project.add_plugin_file(path)
    return tuneboard_project


def calls(log: Path, run_id: str) -> list[dict[str, Any]]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [c for c in map(json.loads, lines) if c["run_id"] == run_id]


def test_hooks_follow_the_run_and_a_raising_plugin_is_skipped(
    project: ThrowawayProject, hook_log: Path
) -> None:
    result = project.run({"plugin": "evaluate", "split": "validation"}, {"plugin": "evaluate"})
    # `noisy` raised in three hooks; the run went on and completed regardless.
    assert result.status == "completed", result.error
    recorded = calls(hook_log, result.run_id)
    assert [c["hook"] for c in recorded] == [
        "run_queued",
        "run_started",
        "stage_finished",
        "stage_finished",
        "run_finished",
    ]
    queued, started, first, second, finished = recorded
    assert queued["experiment"] == "run_1" and queued["run_dir_exists"] is True
    assert started["device"] == "cpu"
    assert (first["stage_index"], first["plugin"], first["status"]) == (0, "evaluate", "completed")
    assert (second["stage_index"], second["name"]) == (1, "evaluate")
    assert finished["status"] == "completed" and finished["error"] is None
    assert finished["metrics"] == pytest.approx(result.metrics)
    assert {"val/accuracy", "test/accuracy", "test/loss"} <= set(finished["metrics"])
    assert finished["project_dir"] == str(project.root.resolve())

    warnings = result.messages("warning")
    assert len(warnings) == 4  # run_started, two stage_finished, run_finished
    assert warnings[0].startswith(
        "plugin 'noisy' raised in its run_started hook and was skipped: "
        "RuntimeError: the notification service is down (at "
    )
    assert "stage_finished hook and was skipped: KeyError: 0" in warnings[1]
    assert "run_finished hook and was skipped: ValueError: cannot report completed" in warnings[3]
    stage_warnings = [e.stage_index for e in result.events if e.level == "warning"]
    assert stage_warnings == [None, 0, 1, None]


def test_a_failing_stage_fails_the_run_with_the_plugin_named(
    project: ThrowawayProject, hook_log: Path
) -> None:
    result = project.run({"plugin": "evaluate"}, {"plugin": "fails"})
    assert result.status == "failed"
    assert result.error == "stage 1 fails (fails from plugin 'faulty'): OSError: disk on fire"
    *_, stage, finished = calls(hook_log, result.run_id)
    assert (stage["hook"], stage["status"], stage["plugin"]) == (
        "stage_finished",
        "failed",
        "fails",
    )
    assert finished["status"] == "failed" and finished["error"] == result.error
    assert "test/accuracy" in finished["metrics"]  # what the first stage logged


def test_a_failing_metric_fails_the_run_with_the_plugin_named(project: ThrowawayProject) -> None:
    result = project.run({"plugin": "evaluate"}, metrics=["accuracy", "flaky"])
    assert result.status == "failed"
    assert result.error == (
        "metric 'flaky' from plugin 'faulty' raised ZeroDivisionError: division by zero"
    )


def test_a_failing_dataset_is_a_one_line_error_naming_the_plugin(
    project: ThrowawayProject,
) -> None:
    with pytest.raises(PluginError) as caught:
        project.run({"plugin": "evaluate"}, dataset={"plugin": "unreadable"})
    assert str(caught.value) == (
        "tuneboard.toml: [experiments.run_1.dataset]: dataset plugin 'unreadable' from plugin "
        "'faulty' raised UnicodeError: not the encoding I expected"
    )
    # The project is left as it was: the next run works.
    assert project.run({"plugin": "evaluate"}).status == "completed"


def test_a_run_cancelled_in_the_queue_is_finished_without_starting(
    project: ThrowawayProject, hook_log: Path
) -> None:
    project.run({"plugin": "evaluate"})  # writes the project file; the database too
    (project.root / "tuneboard.toml").write_text(
        (project.root / "tuneboard.toml").read_text()
        + "\n"
        + project.experiment_toml("gated", [{"plugin": "gate"}])
    )
    loaded = load_project(project.root)
    registry = load_plugins(loaded.root, reload=True)
    store = Store(loaded.database)
    engine = Engine(loaded, store, registry)  # one CPU slot: the second run waits
    try:
        prepared = engine.prepare(loaded.experiment("gated", registry))
        first = engine.launch(prepared)
        second = engine.launch(prepared)
        assert engine.cancel(second)
        gate: threading.Event = sys.modules[registry.stage("gate").__module__].GATE
        gate.set()
        assert engine.wait([first, second], timeout=120)
    finally:
        engine.shutdown(cancel=True, timeout=60)
        store.close()
    assert [c["hook"] for c in calls(hook_log, second)] == ["run_queued", "run_finished"]
    finished = calls(hook_log, second)[-1]
    assert finished["status"] == "cancelled"
    assert finished["error"] == "cancelled before it started"
    assert finished["metrics"] == {}
    assert [c["hook"] for c in calls(hook_log, first)][-1] == "run_finished"


def test_the_readme_lifecycle_example_logs_each_run(
    tuneboard_project: ThrowawayProject, tmp_path: Path
) -> None:
    from tests.integration.test_readme import code_block

    example = tmp_path / "run_log.py"
    example.write_text(code_block("python", "# plugins/run_log.py"), encoding="utf-8")
    tuneboard_project.add_plugin_file(example)
    result = tuneboard_project.run({"plugin": "evaluate"})
    assert result.status == "completed", result.error
    logged = (tuneboard_project.root / "runs.log").read_text(encoding="utf-8")
    accuracy = result.metrics["test/accuracy"]
    assert logged == f"{result.run_id} run_1 completed test/accuracy={accuracy}\n"
