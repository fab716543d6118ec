"""The `slurm` executor for real: the sentiment project's `tiny` experiment as submitit jobs,
on submitit's local cluster (real processes) and on a single-node Slurm started by the tests,
checked in the project's database."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tuneboard.config import load_project
from tuneboard.engine import checkpoint
from tuneboard.engine.engine import Engine
from tuneboard.engine.observer import RunObserver
from tuneboard.plugins import load_plugins
from tuneboard.store import Store

pytest.importorskip("submitit", reason="submitit is not installed: pip install -e '.[test]'")

from tuneboard_slurm import SlurmExecutor, SlurmParams  # after the check: it needs submitit

if TYPE_CHECKING:  # the fixture's type (conftest is not imported by name: others share it)
    from conftest import SlurmCluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SUBMITTED = re.compile(r"submitted as (?:Slurm job|local submitit job) (\S+); output: (.+)$")
GOES_ON = re.compile(r"the remote process goes on from stage 0 finetune at step (\d+)")
TIMEOUT = 300


class Statuses(RunObserver):
    """Keeps the run statuses that reached this process."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.running = threading.Event()

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Keep the status."""
        self.seen.append(status)
        if status == "running":
            self.running.set()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the sentiment sample project."""
    target = tmp_path / "sentiment"
    shutil.copytree(
        REPO / "sample_projects" / "sentiment", target, ignore=shutil.ignore_patterns(".tuneboard")
    )
    return target


@pytest.fixture
def launch(project: Path) -> Iterator[Launcher]:
    """Launches the `tiny` experiment through a `slurm` executor; shuts the engine down after."""
    launcher = Launcher(project)
    try:
        yield launcher
    finally:
        launcher.close()


class Launcher:
    """An engine over the project with a `slurm` executor, as `tuneboard run` makes one."""

    def __init__(self, project: Path) -> None:
        self.project = load_project(project)
        self.registry = load_plugins(self.project.root)
        self.store = Store(self.project.database)
        self.statuses = Statuses()
        self.engine: Engine | None = None

    def __call__(self, params: SlurmParams, *overrides: str) -> str:
        """Launch one run of `tiny` with `overrides`; its id."""
        executor = SlurmExecutor(params, self.project)
        self.engine = Engine(
            self.project, self.store, self.registry, observer=self.statuses, executor=executor
        )
        config = self.project.experiment("tiny", self.registry, overrides)
        return self.engine.launch(self.engine.prepare(config))

    def wait(self, run_id: str) -> None:
        """Wait for the run's end (it fails the test after `TIMEOUT` s)."""
        assert self.engine is not None
        assert self.engine.wait([run_id], timeout=TIMEOUT), f"run {run_id} did not end"
        self.store.flush()

    def submitted(self, run_id: str) -> list[tuple[str, Path]]:
        """The jobs the run was submitted as: (job id, output file)."""
        self.store.flush()
        found = [SUBMITTED.search(e.message) for e in self.store.events(run_id)]
        return [(m.group(1), Path(m.group(2))) for m in found if m]

    def close(self) -> None:
        """Stop what still runs and let go of the database."""
        if self.engine is not None:
            self.engine.shutdown(timeout=60)
        self.store.close()


def wait_for_checkpoint(run_dir: Path, deadline: float) -> int:
    """Wait until the run's first stage has a resume checkpoint on disk; its step."""
    while (found := checkpoint.latest(run_dir / "stage-0")) is None:
        assert time.monotonic() < deadline, "no resume checkpoint was written"
        time.sleep(0.2)
    return int(checkpoint.read_meta(found)["step"])


def assert_resumed_to_completion(launcher: Launcher, run_id: str, steps: int) -> None:
    """The run completed as one run: resumed from a checkpoint, every step's point once."""
    store = launcher.store
    run = store.get_run(run_id)
    assert (run.status, run.error, run.device) == ("completed", None, "slurm:cpu")
    messages = [e.message for e in store.events(run_id)]
    resumed = [int(m.group(1)) for m in map(GOES_ON.search, messages) if m]
    assert resumed and resumed[0] >= 20, messages  # from the checkpoint, not from scratch
    assert store.series(run_id, "train/loss").xs == list(range(1, steps + 1))
    assert [(s.plugin, s.status) for s in store.stages(run_id)] == [
        ("finetune", "completed"),
        ("evaluate", "completed"),
        ("export", "completed"),
    ]
    assert len(launcher.submitted(run_id)) == 1  # one job, requeued: not a second submission


def local(**settings: object) -> SlurmParams:
    """Settings of a `slurm` executor on submitit's local cluster."""
    return SlurmParams(cluster="local", time=30, **settings)  # type: ignore[arg-type]


def test_a_run_completes_as_a_local_submitit_job(launch: Launcher) -> None:
    run_id = launch(local(), "stages.0.epochs=1")
    launch.wait(run_id)
    run = launch.store.get_run(run_id)
    assert (run.status, run.error, run.device) == ("completed", None, "slurm:cpu")
    assert {"train/loss", "val/accuracy", "test/accuracy"} <= set(launch.store.metric_names(run_id))
    assert launch.statuses.seen == ["queued", "running", "completed"]
    [(_, output)] = launch.submitted(run_id)
    assert output.parent == launch.project.runs_dir / run_id / "slurm"  # the default folder
    assert "@tuneboard-record " in output.read_text()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_cancelling_a_run_stops_its_local_job(launch: Launcher, sigint: str) -> None:
    # "ignored": as in `nohup tuneboard run ... &` from a script, where everything started
    # (submitit's local controller too) inherits SIGINT ignored.
    previous = signal.signal(
        signal.SIGINT, signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler
    )
    try:
        run_id = launch(local(), "stages.0.epochs=200", "stages.0.patience=200")
        wait_for_checkpoint(launch.project.runs_dir / run_id, time.monotonic() + TIMEOUT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert launch.engine is not None and launch.engine.cancel(run_id)
    launch.wait(run_id)
    run = launch.store.get_run(run_id)
    assert (run.status, run.error) == ("cancelled", "cancelled by the user")
    assert launch.store.stages(run_id)[0].status == "cancelled"  # the run stopped by itself


def test_a_preempted_local_job_is_requeued_and_resumes_the_run(launch: Launcher) -> None:
    run_id = launch(local(), "stages.0.epochs=3")
    run_dir = launch.project.runs_dir / run_id
    wait_for_checkpoint(run_dir, time.monotonic() + TIMEOUT)
    # What Slurm does to a preempted job's processes, and submitit's local cluster at a time
    # limit: SIGTERM, then the preemption signal (SlurmJob._interrupt); LocalJob._interrupt
    # would signal the local controller, which has no handler for it.
    controller = _local_controller(launch, run_id)
    for sig in (signal.SIGTERM, signal.SIGUSR2):
        for process in psutil.Process(controller).children(recursive=True):
            process.send_signal(sig)
    launch.wait(run_id)
    assert_resumed_to_completion(launch, run_id, steps=60)
    [(_, output)] = launch.submitted(run_id)
    assert f"tuneboard-slurm: run {run_id} requeued to resume" in output.read_text()


def test_a_run_on_a_single_node_slurm_survives_a_preemption(
    launch: Launcher, slurm_cluster: SlurmCluster
) -> None:
    params = SlurmParams(partition=slurm_cluster.partition, time=30, cpus_per_task=1)
    run_id = launch(params, "stages.0.epochs=3")
    wait_for_checkpoint(launch.project.runs_dir / run_id, time.monotonic() + TIMEOUT)
    [(job_id, output)] = launch.submitted(run_id)
    # A preemption as submitit's SlurmJob._interrupt makes one: SIGTERM, then USR2.
    for sig in ("TERM", "USR2"):
        done = subprocess.run(
            ["scancel", f"--signal={sig}", job_id], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    launch.wait(run_id)
    assert_resumed_to_completion(launch, run_id, steps=60)
    assert f"tuneboard-slurm: run {run_id} requeued to resume" in output.read_text(), (
        slurm_cluster.tail()
    )


def test_cancelling_a_run_on_slurm_stops_it_between_steps(
    launch: Launcher, slurm_cluster: SlurmCluster
) -> None:
    params = SlurmParams(partition=slurm_cluster.partition, time=30, cpus_per_task=1)
    run_id = launch(params, "stages.0.epochs=200", "stages.0.patience=200")
    wait_for_checkpoint(launch.project.runs_dir / run_id, time.monotonic() + TIMEOUT)
    assert launch.engine is not None and launch.engine.cancel(run_id)
    launch.wait(run_id)
    run = launch.store.get_run(run_id)
    assert (run.status, run.error) == ("cancelled", "cancelled by the user")
    assert launch.store.stages(run_id)[0].status == "cancelled", slurm_cluster.tail()
    [(job_id, _)] = launch.submitted(run_id)
    deadline = time.monotonic() + 120
    while (state := _slurm_state(job_id)) not in ("", "COMPLETED"):  # the job ends too
        assert time.monotonic() < deadline, f"job {job_id} is still {state}"
        time.sleep(0.5)


def _slurm_state(job_id: str) -> str:
    """The job's state in Slurm's queue ("" once it left it)."""
    done = subprocess.run(
        ["squeue", "--noheader", "--jobs", job_id, "--format=%T"], capture_output=True, text=True
    )
    return done.stdout.strip()


def _local_controller(launch: Launcher, run_id: str) -> int:
    """The process id of the run's local job (submitit's local job id is its controller's)."""
    [(job_id, _)] = launch.submitted(run_id)
    return int(job_id)
