"""System metrics: real runs of the sentiment project's `tiny` experiment, held at a training
step while the sampler writes `sys/...` points at that step; the sampler stops with the run,
writes nothing when its interval is 0, and a read that fails leaves the run alone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tuneboard.config import load_project
from tuneboard.engine import killpoints
from tuneboard.engine.engine import Engine
from tuneboard.engine.sysmetrics import CPU, RSS, SAMPLER, SystemProbe
from tuneboard.plugins import load_plugins
from tuneboard.store import Store
from tuneboard.store.schema import is_system_metric

HOLD_AT = "train.step:0/3"
# log_every = 1: step losses are read (and logged) at each step, so a held step is logged.
SHORT = ["stages.0.epochs=1", "stages.0.max_steps=6", "stages.0.log_every=1"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread in this process (a tiny model; a shared 2-core machine)."""
    from tests.helpers import one_torch_thread

    with one_torch_thread():
        yield


class Gate:
    """Holds the run at `HOLD_AT` (through the kill points) until the test releases it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        monkeypatch.setenv(killpoints.ENV, HOLD_AT)
        monkeypatch.setattr(killpoints, "on_kill", self._hold)

    def _hold(self, point: str) -> None:
        self.reached.set()
        self.release.wait(120)


def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for `condition` (polled), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def start_run(root: Path, interval: float) -> tuple[Engine, Store, str]:
    """Launch `tiny` (shortened) with system metrics every `interval` seconds on the CPU."""
    text = (root / "tuneboard.toml").read_text()
    settings = f'[project]\ndevices = ["cpu"]\nsys_metrics_interval = {interval}\n'
    (root / "tuneboard.toml").write_text(text.replace("[project]\n", settings, 1))
    project = load_project(root)
    assert project.sys_metrics_interval == interval
    registry = load_plugins(root)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    prepared = engine.prepare(project.experiment("tiny", registry, SHORT))
    return engine, store, engine.launch(prepared)


def finish(engine: Engine, store: Store, run_id: str) -> None:
    assert engine.wait([run_id], timeout=300)
    engine.shutdown(cancel=False)
    assert store.get_run(run_id).status == "completed", store.get_run(run_id).error


def points(store: Store, run_id: str, where: str = "true") -> list[tuple[object, ...]]:
    """(stage, step, name, wall time) of the run's system metric points."""
    store.flush()
    with store.hold():
        return store._fetch(
            "SELECT stage_index, step, name, epoch(wall_time) FROM metrics"
            f" WHERE run_id = ? AND name LIKE 'sys/%' AND {where} ORDER BY wall_time",
            [run_id],
        )


def last_training_step(store: Store, run_id: str, stage: int) -> int:
    store.flush()
    with store.hold():
        [(step,)] = store._fetch(
            "SELECT max(step) FROM metrics WHERE run_id = ? AND stage_index = ?"
            " AND name NOT LIKE 'sys/%'",
            [run_id, stage],
        )
    return int(step)


def test_a_running_run_gets_system_points_at_its_stage_step(
    sentiment_project: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    gate = Gate(monkeypatch)
    engine, store, run_id = start_run(sentiment_project, 0.1)
    try:
        assert gate.reached.wait(120)
        step = last_training_step(store, run_id, 0)  # held: it stays
        assert step == 3
        until(lambda: len(points(store, run_id, f"stage_index = 0 AND step = {step}")) >= 4)
        names = {row[2] for row in points(store, run_id)}
        assert {CPU, RSS} <= names and names <= {CPU, RSS}  # the CPU: no GPU figures
        gate.release.set()
        finish(engine, store, run_id)
        assert SAMPLER.join(10) and not SAMPLER.running  # stopped with the run
        run = store.get_run(run_id)
        assert run.finished_at is not None
        assert all(float(row[3]) <= run.finished_at for row in points(store, run_id))  # type: ignore[arg-type]
        # Sampled points sit at a step each stage logged: no stage gets longer.
        for span in store.stage_spans(run_id):
            if span.last_step > span.first_step:
                logged = last_training_step(store, run_id, span.stage_index)
                assert span.last_step - span.first_step == logged
        # Neither a stage's best nor the headline is a system metric.
        assert run.headline_value is not None
        assert all(not is_system_metric(s.best_metric or "") for s in store.stages(run_id))
    finally:
        gate.release.set()
        engine.shutdown()
        store.close()


def test_no_system_points_when_the_interval_is_0(
    sentiment_project: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    gate = Gate(monkeypatch)
    engine, store, run_id = start_run(sentiment_project, 0)
    try:
        assert gate.reached.wait(120)
        assert not SAMPLER.running  # nothing to sample: no thread at all
        gate.release.set()
        finish(engine, store, run_id)
        assert points(store, run_id) == []
    finally:
        gate.release.set()
        engine.shutdown()
        store.close()


def test_a_failing_read_does_not_fail_the_run(
    sentiment_project: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    # A probe of a process that has ended: every read raises psutil.NoSuchProcess.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    probe = SystemProbe(child.pid)
    child.wait()
    monkeypatch.setattr(SAMPLER, "probe", probe)
    gate = Gate(monkeypatch)
    engine, store, run_id = start_run(sentiment_project, 0.1)
    try:
        assert gate.reached.wait(120)
        taken = SAMPLER.samples
        until(lambda: SAMPLER.samples >= taken + 3)  # it kept sampling (and failing)
        gate.release.set()
        finish(engine, store, run_id)
        assert points(store, run_id) == []
    finally:
        gate.release.set()
        engine.shutdown()
        store.close()
