"""Kill points: a run killed at any of 26 named moments of its life, then resumed, ends
exactly as the same run uninterrupted, and every stage row is consistent.

The run: augment -> head warm-up -> full fine-tuning (a resume checkpoint every 2 steps) ->
evaluate, on a tiny random BERT. `tuneboard.engine.killpoints` names the moments; a real
`kill -9` there (``TUNEBOARD_KILL_AT``) is proved by subprocesses for the two windows the
issue found. The other points run in this process, cheaply: the store commits only when the
engine flushes (as if the writer thread never got its turn), and at the point the writer is
abandoned (everything not committed is lost, as in a kill) and the run unwinds; the run's
owner is then made a dead process, as a kill leaves it. Each case then resumes the run and
checks it against the uninterrupted run: every metric point bit for bit, each stage row
(status, steps, best metric, step and value) equal, each row's completion recorded once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import DATA, child_env, experiment
from tuneboard.config import Project, load_project
from tuneboard.engine import killpoints
from tuneboard.engine.engine import Engine
from tuneboard.plugins import PluginRegistry, load_plugins
from tuneboard.sdk.contracts import NoParams
from tuneboard.sdk.execution import Executor, RunJob
from tuneboard.store import Store
from tuneboard.store.database import Database

pytestmark = pytest.mark.slow

STAGES = (
    {"plugin": "augment", "operations": ["swap"], "ratio": 0.25},
    {"name": "warmup", "plugin": "finetune", "train": "head", "epochs": 1, "lr": 1e-2,
     "batch_size": 64},
    {"name": "full", "plugin": "finetune", "epochs": 1, "lr": 5e-3, "batch_size": 64,
     "eval_every": 2, "dropout": 0.1},
    {"plugin": "evaluate"},
)  # fmt: skip

# In the order a run meets them; the full fine-tuning (row 2) takes 7 steps and keeps a
# resume checkpoint at steps 2, 4 and 6.
POINTS = (
    "run.created",
    "run.started",
    "run.loaded",
    "stage.started:0",
    "stage.returned:0",
    "handoff.written:0",
    "stage.finished:0",
    "stage.started:1",
    "train.step:1/3",
    "stage.returned:1",
    "handoff.written:1",
    "stage.started:2",
    "train.step:2/1",
    "checkpoint.writing:2/2",
    "checkpoint.written:2/2",
    "train.step:2/5",
    "checkpoint.writing:2/6",
    "stage.returned:2",
    "handoff.written:2",
    "stage.finished:2",
    "stage.started:3",
    "handoff.written:3",
    "stage.finished:3",
    "run.completing",
    "run.completed",
)


class Crash(BaseException):
    """The simulated kill: nothing in the run catches it, as nothing survives a real one."""


class InlineExecutor(Executor[NoParams]):
    """Runs each submitted job at once in the submitting thread, so a crash reaches the test."""

    name = "inline"

    def submit(
        self, job: RunJob, *, group: str | None = None, group_limit: int | None = None
    ) -> None:
        job("cpu", threading.Event())

    def cancel(self, run_id: str) -> bool:
        return False

    def active(self) -> list[str]:
        return []

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        return True


@dataclass(frozen=True)
class Outcome:
    """What a finished run left in the database, minus timings."""

    status: tuple[Any, ...]
    stages: list[tuple[Any, ...]]
    series: list[tuple[Any, ...]]


@dataclass
class Setup:
    project: Project
    registry: PluginRegistry
    baseline: Outcome


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The project, its plugins and the uninterrupted run's outcome."""
    import shutil

    from tests.helpers import one_torch_thread

    root = tmp_path_factory.mktemp("killpoints") / "project"
    shutil.copytree(DATA, root / "data")
    header = '[project]\nname = "killpoints"\ndevices = ["cpu"]\n\n'
    (root / "tuneboard.toml").write_text(header + experiment("k", *STAGES), encoding="utf-8")
    project = load_project(root)
    registry = load_plugins(root)
    with one_torch_thread():
        with Store(project.database) as store:
            run_id = launch(project, registry, store)
        baseline = outcome(project, run_id)
        assert baseline.status == ("completed", None, baseline.status[2])
        assert [row[:4] for row in baseline.stages] == [
            (0, "augment", "augment", "completed"),
            (1, "warmup", "finetune", "completed"),
            (2, "full", "finetune", "completed"),
            (3, "evaluate", "evaluate", "completed"),
        ]
        assert len({value for *_, value in baseline.series}) > 10  # values that differ
        yield Setup(project, registry, baseline)


def launch(project: Project, registry: PluginRegistry, store: Store) -> str:
    """Run experiment `k` to its end (or to the crash) in this thread."""
    engine = Engine(project, store, registry, executor=InlineExecutor(NoParams(), project))
    try:
        return engine.launch(engine.prepare(project.experiment("k", registry)))
    finally:
        engine.shutdown()


def resume(project: Project, registry: PluginRegistry, run_id: str) -> None:
    """`tuneboard resume RUN` in this thread, to the run's end."""
    with Store(project.database) as store:
        engine = Engine(project, store, registry, executor=InlineExecutor(NoParams(), project))
        try:
            engine.resume(run_id)
        finally:
            engine.shutdown()


def outcome(project: Project, run_id: str) -> Outcome:
    with Store(project.database, read_only=True) as store:
        run = store.get_run(run_id)
        stages = [
            (s.stage_index, s.name, s.plugin, s.status, s.steps, s.total_steps, s.best_metric,
             s.best_step, s.best_value, s.finished_at is not None)
            for s in store.stages(run_id)
        ]  # fmt: skip
        with store.database.cursor() as cur:
            series = cur.execute(
                "SELECT stage_index, name, step, value FROM metrics WHERE run_id = ?"
                " AND name <> 'train/samples_per_s' ORDER BY ALL",
                [run_id],
            ).fetchall()
    return Outcome((run.status, run.error, run.headline_value), stages, series)


def completions(project: Project, run_id: str) -> list[int]:
    """The rows whose completion the run's events record, once per record."""
    with Store(project.database, read_only=True) as store:
        events = store.events(run_id)
    return sorted(
        e.stage_index
        for e in events
        if e.stage_index is not None and " completed " in e.message and "stage " in e.message
    )


def check_resumed(setup: Setup, run_id: str) -> None:
    """Resume the killed run; it must end as the uninterrupted one, each row completed once."""
    resume(setup.project, setup.registry, run_id)
    got, expected = outcome(setup.project, run_id), setup.baseline
    assert got.status == expected.status
    assert got.stages == expected.stages
    assert got.series == expected.series  # every point, bit for bit: no gap, no duplicate
    assert completions(setup.project, run_id) == [0, 1, 2, 3]


def run_ids(project: Project) -> set[str]:
    with Store(project.database, read_only=True) as store:
        return {run.run_id for run in store.list_runs()}


def owner_dies(project: Project, run_id: str) -> None:
    """What a kill leaves: the run's owner process is gone (its start time no longer fits)."""
    with Database.for_path(project.database).cursor(write=True) as cur:
        cur.execute("UPDATE runs SET owner_started = 0 WHERE run_id = ?", [run_id])


def crash(store: Store, where: str) -> None:
    """A simulated `kill -9`: what was not committed is lost, and the run stops here."""
    assert store.writer is not None
    store.writer.abandon()
    raise Crash(where)


def crash_run(setup: Setup, point: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Launch experiment `k`, kill it at `point`; return its id."""
    project = setup.project
    before = run_ids(project)
    store = Store(project.database, flush_interval=3600)  # commits only when flushed
    monkeypatch.setenv(killpoints.ENV, point)
    monkeypatch.setattr(killpoints, "on_kill", lambda where: crash(store, where))
    try:
        with pytest.raises(Crash, match=f"^{point}$"):
            launch(project, setup.registry, store)
    finally:
        store.close()
        monkeypatch.delenv(killpoints.ENV)
    [run_id] = run_ids(project) - before  # the id was committed before it was returned
    owner_dies(project, run_id)
    return run_id


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_a_point_resumes_to_the_uninterrupted_result(
    setup: Setup, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import one_torch_thread

    with one_torch_thread():
        run_id = crash_run(setup, point, monkeypatch)
        check_resumed(setup, run_id)


@pytest.mark.parametrize("point", ["resume.claimed", "train.step:2/3"])
def test_a_resumed_run_killed_again_resumes_to_the_uninterrupted_result(
    setup: Setup, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import one_torch_thread

    project = setup.project
    with one_torch_thread():
        run_id = crash_run(setup, "handoff.written:1", monkeypatch)
        store = Store(project.database, flush_interval=3600)
        monkeypatch.setenv(killpoints.ENV, point)
        monkeypatch.setattr(killpoints, "on_kill", lambda where: crash(store, where))
        engine = Engine(
            project, store, setup.registry, executor=InlineExecutor(NoParams(), project)
        )
        try:
            with pytest.raises(Crash, match=f"^{point}$"):
                engine.resume(run_id)
        finally:
            engine.shutdown()
            store.close()
            monkeypatch.delenv(killpoints.ENV)
        owner_dies(project, run_id)
        check_resumed(setup, run_id)


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS...` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("point", ["run.created", "handoff.written:1"])
def test_a_real_kill_9_at_a_point_resumes_to_the_uninterrupted_result(
    setup: Setup, point: str
) -> None:
    from tests.helpers import one_torch_thread

    project = setup.project
    before = run_ids(project)
    killed = cli("run", "k", "--quiet", cwd=project.root, **{killpoints.ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    [run_id] = run_ids(project) - before
    assert (project.runs_dir / run_id).is_dir()
    with one_torch_thread():
        check_resumed(setup, run_id)
