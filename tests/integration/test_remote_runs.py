"""Remote runs without a cluster: `python -m tuneboard.remote` in a child process, replayed here.

`ChildProcessExecutor` is the smallest real `RemoteExecutor`: it starts the run's remote
command in a child process, feeds its stdout to the replayer and sends SIGTERM on cancel. It
exercises what every remote executor (such as tuneboard-ray) relies on: the run executing in
another process with the same runner, its records streamed back into this project's
database, cancellation, and a job that dies before the run could record anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tuneboard import (
    RemoteExecutor,
    RemoteOutcome,
    Replayer,
    RunJob,
    RunStatus,
    param,
    remote_command,
)
from tuneboard.config import load_project
from tuneboard.engine import killpoints
from tuneboard.engine.engine import Engine
from tuneboard.engine.observer import RunObserver, StageSummary
from tuneboard.plugins import load_plugins
from tuneboard.sdk.scheduler import detect_devices
from tuneboard.store import Store
from tuneboard.store.store import hash_path

pytestmark = pytest.mark.slow


@dataclass
class ChildParams:
    """Settings of the child-process executor."""

    python: str = param(sys.executable, "the interpreter of the child process")


class ChildProcessExecutor(RemoteExecutor[ChildParams]):
    """Runs each run as a child process of this one, through the remote-run protocol."""

    name = "child"
    Params = ChildParams

    def execute(self, job: RunJob, replayer: Replayer, cancel: threading.Event) -> RemoteOutcome:
        """Start the child, replay its stdout line by line, SIGTERM it on cancel."""
        command = remote_command(self.params.python, self.remote_spec(job, device="cpu", threads=1))
        child = subprocess.Popen(
            command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def stop_on_cancel() -> None:  # like Ray: SIGTERM to the job's process group
            while child.poll() is None:
                if cancel.wait(0.1):
                    os.killpg(child.pid, signal.SIGTERM)
                    return

        threading.Thread(target=stop_on_cancel, daemon=True).start()
        assert child.stdout is not None
        for line in child.stdout:
            replayer.feed(line)
        code = child.wait()
        return RemoteOutcome(
            RunStatus.FAILED, f"the child exited with {code}: {replayer.error_tail()}"
        )


class SharedFolderExecutor(ChildProcessExecutor):
    """The child executor for a remote machine that sees the run folders: resumes there too."""

    name = "shared"
    resumes_remotely = True


class Notes(RunObserver):
    """Keeps the notifications that reached this process."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.finished: list[tuple[int, str]] = []
        self.evaluated = threading.Event()

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Keep the status."""
        self.statuses.append(status)

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Note the first evaluation (a resume checkpoint is written at each)."""
        if "val/accuracy" in values:
            self.evaluated.set()

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """Keep the stage's end."""
        self.finished.append((stage_index, summary.status))


def launch(
    project_dir: Path,
    notes: Notes,
    *overrides: str,
    python: str = sys.executable,
    kind: type[ChildProcessExecutor] = ChildProcessExecutor,
) -> tuple[Engine, Store, str]:
    project = load_project(project_dir)
    registry = load_plugins(project.root)
    store = Store(project.database)
    executor = kind(ChildParams(python), project)
    engine = Engine(project, store, registry, observer=notes, executor=executor)
    config = project.experiment("tiny", registry, overrides)
    return engine, store, engine.launch(engine.prepare(config))


HOOKS = """
from tuneboard import hookimpl


@hookimpl
def run_started(run_id, device, project_dir):
    with open(project_dir / "hooks.log", "a") as log:
        log.write(f"started {device}\\n")


@hookimpl
def stage_finished(stage_index, status, run_dir):
    with open(run_dir.parent.parent.parent / "hooks.log", "a") as log:
        log.write(f"stage {stage_index} {status}\\n")


@hookimpl
def run_finished(status, metrics, project_dir):
    with open(project_dir / "hooks.log", "a") as log:
        log.write(f"finished {status} {'test/accuracy' in metrics}\\n")
"""


def test_a_remote_run_lands_in_the_local_database(sentiment_project: Path) -> None:
    (sentiment_project / "plugins").mkdir()
    (sentiment_project / "plugins" / "hooks.py").write_text(HOOKS, encoding="utf-8")
    notes = Notes()
    engine, store, run_id = launch(sentiment_project, notes, "stages.0.epochs=1")
    try:
        assert engine.wait([run_id], timeout=240)
        engine.shutdown(cancel=False)
        run = store.get_run(run_id)
        assert (run.status, run.error, run.device) == ("completed", None, "child:cpu")
        assert run.headline_value is not None
        stages = store.stages(run_id)
        assert [(s.plugin, s.status) for s in stages] == [
            ("finetune", "completed"),
            ("evaluate", "completed"),
            ("export", "completed"),
        ]
        assert stages[0].steps and stages[0].steps == stages[0].total_steps
        assert stages[0].best_metric == "val/accuracy"
        names = set(store.metric_names(run_id))
        assert {"train/loss", "val/accuracy", "test/accuracy", "test/f1_macro"} <= names
        assert len(store.series(run_id, "train/loss").xs) >= 10
        artifacts = store.artifacts(run_id)
        assert {a.kind for a in artifacts} >= {"checkpoint", "model"}
        for artifact in artifacts:  # written by the child, measured there, found here
            assert (artifact.bytes, artifact.sha256) == hash_path(Path(artifact.path))
        messages = [e.message for e in store.events(run_id)]
        assert "run completed" in messages
    finally:
        store.close()
    assert notes.statuses == ["queued", "running", "completed"]
    assert notes.finished == [(0, "completed"), (1, "completed"), (2, "completed")]
    # The plugins' lifecycle hooks ran here, once each, not in the child.
    assert (sentiment_project / "hooks.log").read_text().splitlines() == [
        "started child:cpu",
        "stage 0 completed",
        "stage 1 completed",
        "stage 2 completed",
        "finished completed True",
    ]


def test_cancelling_a_remote_run_stops_its_process(sentiment_project: Path) -> None:
    notes = Notes()
    engine, store, run_id = launch(
        sentiment_project, notes, "stages.0.epochs=200", "stages.0.patience=200"
    )
    try:
        assert notes.evaluated.wait(180), "no evaluation came back from the child"
        store.flush()
        assert store.get_run(run_id).status == "running"
        assert engine.cancel(run_id)
        assert engine.wait([run_id], timeout=60)
        store.flush()
        run = store.get_run(run_id)
        assert (run.status, run.error) == ("cancelled", "cancelled by the user")
        assert store.stages(run_id)[0].status == "cancelled"
        assert store.metric_names(run_id)  # what streamed before the cancel stays
        # Resuming goes on here, from the checkpoint the child left in the run's folder.
        notes.statuses.clear()
        engine.resume(run_id)
        deadline = time.monotonic() + 120
        while notes.statuses[-1:] != ["running"]:
            assert time.monotonic() < deadline, notes.statuses
            time.sleep(0.2)
        assert engine.cancel(run_id)
        assert engine.wait([run_id], timeout=60)
        store.flush()
        here = detect_devices()[0]
        assert store.get_run(run_id).device == here
        messages = [e.message for e in store.events(run_id)]
        assert f"resuming on this machine ({here}): child starts only new runs remotely" in messages
    finally:
        engine.shutdown(timeout=60)
        store.close()


def test_a_job_that_dies_fails_the_run_with_its_output(sentiment_project: Path) -> None:
    notes = Notes()
    missing = str(sentiment_project / "no-such-python")
    engine, store, run_id = launch(sentiment_project, notes, python=missing)
    try:
        assert engine.wait([run_id], timeout=60)
        store.flush()
        run = store.get_run(run_id)
        assert run.status == "failed"
        assert run.error is not None
        assert run.error.startswith("the child exited with 127: ")
        assert "no-such-python" in run.error and "not found" in run.error
        assert notes.statuses == ["queued", "failed"]
    finally:
        engine.shutdown(timeout=60)
        store.close()


def test_a_resumed_run_goes_on_remotely_from_its_folder(
    sentiment_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = Notes()
    # The child kills itself once its first checkpoint (the end of epoch 1, step 20) is on disk.
    monkeypatch.setenv(killpoints.ENV, "checkpoint.written:0/20")
    engine, store, run_id = launch(
        sentiment_project, notes, "stages.0.epochs=2", kind=SharedFolderExecutor
    )
    try:
        assert engine.wait([run_id], timeout=240)
        store.flush()
        assert store.get_run(run_id).status == "failed"
        monkeypatch.delenv(killpoints.ENV)
        assert store.series(run_id, "train/loss").xs[-1] == 20
        engine.resume(run_id)
        assert engine.wait([run_id], timeout=240)
        store.flush()
        run = store.get_run(run_id)
        assert (run.status, run.device) == ("completed", "shared:cpu")
        # Steps 21-40 came from the resumed child: each step once, none run twice.
        assert store.series(run_id, "train/loss").xs == list(range(1, 41))
        messages = [e.message for e in store.events(run_id)]
        assert "the remote process goes on from stage 0 finetune at step 20" in messages
        assert not any(m.startswith("resuming on this machine") for m in messages)
    finally:
        engine.shutdown(timeout=60)
        store.close()
