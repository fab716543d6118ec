"""The `slurm` executor: each run is a Slurm job, submitted and requeued through submitit.

A run's job executes ``python -m tuneboard.remote --spec ...`` on a node (see
`tuneboard_slurm.job`), its stdout going to the job's output file in the submitit folder. This
process follows that file as it grows and replays its lines into the project's database, so
the app's live charts, `compare` and SQL see the run as they see a local one. Cancelling the run
sends the job SIGINT (``scancel --signal=INT``; the run stops between steps), then cancels it
outright if it has not ended a minute later. A preempted or timed-out job is requeued by
submitit and goes on from the run's last checkpoint, under the same run id; this process keeps
following the same file. A job that ends before the run recorded its end fails the run with the
last lines of its output.

Runs are single jobs: a sweep's runs are submitted one by one as the engine hands them over,
at most `max_parallel` of them at a time (the `RemoteExecutor` queue), not as a job array.

With ``cluster = "local"``, submitit's local executor runs the same jobs as processes of this
machine (no Slurm): for a laptop, and for the tests. submitit is imported when a run is
submitted, so `tuneboard --help` and the app start without it.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib.util
import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneboard import (
    ConfigError,
    ProjectInfo,
    RemoteExecutor,
    RemoteOutcome,
    Replayer,
    RunJob,
    RunStatus,
    param,
)

if TYPE_CHECKING:
    from submitit import Executor as SubmititExecutor
    from submitit import Job

log = logging.getLogger(__name__)

CLUSTERS = ("slurm", "local")
# How often the follower reads the job's output file, and asks Slurm whether the job is queued.
READ_SECONDS = 0.5
QUEUE_SECONDS = 5.0
# After SIGINT, how long a run has to stop by itself before its job is cancelled outright.
STOP_SECONDS = 60.0
# Once the job ended, how long to wait for the rest of its output (a file system shared with
# the node may show the last writes late) when the run has not recorded its end.
FINAL_GRACE_SECONDS = 10.0


@dataclass
class SlurmParams:
    """The keys of a `[project.executor]` table with ``plugin = "slurm"``."""

    cluster: str = param(
        "slurm", "slurm: sbatch on this cluster; local: submitit's local processes (no Slurm)"
    )
    partition: str = param("", "the Slurm partition of every run's job (default: Slurm's)")
    time: int = param(60, "time limit of each job in minutes; a job near it is requeued", min=1)
    gpus_per_run: int = param(0, "GPUs each run's job asks for (0: the run uses CPUs)", min=0)
    cpus_per_task: int = param(1, "CPUs each run's job asks for; torch uses as many", min=1)
    mem: str = param("", "memory of each job, as sbatch --mem takes it (16G); default: Slurm's")
    account: str = param("", "the Slurm account charged (sbatch --account)")
    qos: str = param("", "the Slurm quality of service (sbatch --qos)")
    sbatch: dict[str, Any] = param(
        {}, 'more sbatch options, as { constraint = "a100", exclude = "node3" }'
    )
    setup: list[str] = param([], "shell lines run in the job before the run (module load ...)")
    folder: str = param(
        "", "where submitit keeps jobs and their output (default: the run's folder, slurm/)"
    )
    python: str = param("", "the nodes' Python that has tuneboard and submitit (default: this one)")
    max_timeouts: int = param(3, "times a job may reach its time limit and be requeued", min=0)
    max_jobs: int = param(64, "runs submitted at once; more wait here, queued", min=1)

    def __post_init__(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ValueError(f"key 'cluster' must be slurm or local, got {self.cluster!r}")


class SlurmExecutor(RemoteExecutor[SlurmParams]):
    """Runs each run as a Slurm job (through submitit), streaming its records back."""

    name = "slurm"
    description = "a Slurm cluster, one job per run (submitit); requeued and resumed if preempted"
    Params = SlurmParams
    resumes_remotely = True  # the nodes see the run folders: `tuneboard resume` is a job too

    def __init__(self, params: SlurmParams, project: ProjectInfo) -> None:
        super().__init__(params, project)
        if importlib.util.find_spec("submitit") is None:
            raise ConfigError(
                "the slurm executor needs submitit in this Python: pip install tuneboard-slurm"
            )
        self.max_jobs = params.max_jobs

    def execute(self, job: RunJob, replayer: Replayer, cancel: threading.Event) -> RemoteOutcome:
        """Submit the run as a job, replay its output until the job ends, stop it on cancel."""
        import cloudpickle  # type: ignore[import-untyped]

        from tuneboard_slurm import job as job_module
        from tuneboard_slurm.job import RemoteRun

        # By value: the nodes need tuneboard and submitit, not this plugin.
        cloudpickle.register_pickle_by_value(job_module)
        params = self.params
        spec = self.remote_spec(
            job,
            device="auto" if params.gpus_per_run > 0 else "cpu",
            threads=params.cpus_per_task,
        )
        folder = Path(params.folder) if params.folder else job.run_dir / "slurm"
        executor = self._executor(folder, job.run_id)
        if cancel.is_set():
            return RemoteOutcome(RunStatus.CANCELLED, "cancelled before it was submitted")
        try:
            submitted = executor.submit(RemoteRun(), spec)
        except Exception as error:  # sbatch refused it (a partition that does not exist, ...)
            return RemoteOutcome(RunStatus.FAILED, f"sbatch refused the job: {_last_line(error)}")
        where = "Slurm job" if params.cluster == "slurm" else "local submitit job"
        job.log_event(f"submitted as {where} {submitted.job_id}; output: {submitted.paths.stdout}")
        follower = _Follower(submitted, params.cluster, replayer)
        follower.follow(cancel)
        return follower.outcome(cancel)

    def _executor(self, folder: Path, run_id: str) -> SubmititExecutor:
        import submitit

        params = self.params
        python = params.python or None
        common: dict[str, Any] = {"stderr_to_stdout": True}
        if params.setup:
            common["setup"] = list(params.setup)
        if params.cluster == "local":
            local = submitit.LocalExecutor(
                folder, max_num_timeout=params.max_timeouts, python=python
            )
            local.update_parameters(
                timeout_min=params.time, gpus_per_node=params.gpus_per_run, **common
            )
            return local
        slurm = submitit.SlurmExecutor(folder, max_num_timeout=params.max_timeouts, python=python)
        options: dict[str, Any] = {
            "job_name": f"tuneboard-{run_id}",
            "time": params.time,
            "cpus_per_task": params.cpus_per_task,
            **common,
        }
        if params.gpus_per_run:
            options["gpus_per_node"] = params.gpus_per_run
        for key in ("partition", "mem", "account", "qos"):
            if getattr(params, key):
                options[key] = getattr(params, key)
        if params.sbatch:
            options["additional_parameters"] = dict(params.sbatch)
        slurm.update_parameters(**options)
        return slurm


class _Follower:
    """Feeds a job's output file to the replayer as it grows, until the job has ended."""

    def __init__(self, submitted: Job[Any], cluster: str, replayer: Replayer) -> None:
        self.job = submitted
        self.cluster = cluster
        self.replayer = replayer
        self._position = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._queued_at = 0.0
        self._queued = True

    def follow(self, cancel: threading.Event) -> None:
        """Replay the output until the job ended (its last output included)."""
        stop_sent: float | None = None
        while not self._ended():
            self._read()
            if cancel.is_set():
                now = time.monotonic()
                if stop_sent is None:
                    self._stop()
                    stop_sent = now
                elif now - stop_sent > STOP_SECONDS:
                    with contextlib.suppress(Exception):
                        self.job.cancel(check=False)
                    stop_sent = now
            if stop_sent is None:
                cancel.wait(READ_SECONDS)
            else:
                time.sleep(READ_SECONDS)
        quiet_since = time.monotonic()
        while self.replayer.final_status is None:
            if self._read():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > FINAL_GRACE_SECONDS:
                break
            time.sleep(READ_SECONDS)
        self._read()

    def outcome(self, cancel: threading.Event) -> RemoteOutcome:
        """How the job ended, for a run that did not record its end."""
        if self.replayer.final_status is not None:
            return RemoteOutcome(self.replayer.final_status)
        if cancel.is_set():
            return RemoteOutcome(RunStatus.CANCELLED, "cancelled by the user")
        tail = self.replayer.error_tail()
        name = f"job {self.job.job_id}"
        result = _result(self.job)
        if result is not None and result[0] == "success":
            reason = f"the run's process exited with {result[1]}"
        elif result is not None:
            reason = _last_line(result[1])
        else:
            reason = f"it ended ({self._final_state()})"
        return RemoteOutcome(
            RunStatus.FAILED,
            f"{name} ended without the run's result: {reason}" + (f" | {tail}" if tail else ""),
        )

    def _read(self) -> bool:
        """Feed what the output file gained; True when it gained something."""
        path = self.job.paths.stdout
        try:
            size = path.stat().st_size
        except OSError:  # not created yet: the job waits in the queue
            return False
        if size < self._position:  # written anew (a requeue without --open-mode=append)
            self._position = 0
            self._decoder.reset()
        if size == self._position:
            return False
        with path.open("rb") as f:
            f.seek(self._position)
            data = f.read(size - self._position)
        self._position += len(data)
        text = self._decoder.decode(data)
        if text:
            self.replayer.feed(text)
        return bool(data)

    def _ended(self) -> bool:
        if self.job.paths.result_pickle.exists():  # the callable returned or raised
            return True
        if self.cluster == "local":
            return self.job.done()  # the local controller (and every requeue) exited
        now = time.monotonic()
        if now - self._queued_at >= QUEUE_SECONDS:
            self._queued_at = now
            self._queued = _in_queue(self.job.job_id)
        return not self._queued

    def _stop(self) -> None:
        if self.cluster == "local":
            _interrupt_local(self.job)
            return
        done = subprocess.run(
            ["scancel", "--signal=INT", self.job.job_id],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:  # still pending (nothing to signal): cancel it outright
            with contextlib.suppress(Exception):
                self.job.cancel(check=False)

    def _final_state(self) -> str:
        if self.cluster == "local":
            return "its process was killed"
        with contextlib.suppress(Exception):
            state = self.job.get_info(mode="force").get("State")
            if state:
                return f"Slurm state {state}"
        return "it left Slurm's queue"


def _interrupt_local(job: Job[Any]) -> None:
    """SIGINT to a local job's controller (its id is the controller's pid) and to its tasks.
    The controller passes it on itself, but not when it started with SIGINT ignored, as
    everything started in the background of a shell script or under nohup does: the tasks
    then have it from here."""
    import psutil

    job.cancel(check=False)
    with contextlib.suppress(psutil.Error, ValueError):
        for task in psutil.Process(int(job.job_id)).children():
            with contextlib.suppress(psutil.Error):
                task.send_signal(signal.SIGINT)


def _in_queue(job_id: str) -> bool:
    """Whether Slurm still has the job (pending, running, requeued); True when it cannot tell."""
    try:
        done = subprocess.run(
            ["squeue", "--noheader", "--jobs", job_id, "--format=%T"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    if done.returncode != 0:
        return "Invalid job id" not in done.stderr  # an ended job leaves the queue
    states = done.stdout.split()
    return bool(states) and not all(s in _ENDED for s in states)


_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def _result(submitted: Job[Any]) -> tuple[str, Any] | None:
    """The callable's outcome as submitit saved it: ("success", exit status) or ("error",
    traceback); None when the job ended without one (killed, cancelled, lost)."""
    path = submitted.paths.result_pickle
    if not path.exists():
        return None
    try:
        from submitit.core.utils import pickle_load

        outcome: tuple[str, Any] = pickle_load(path)
        return outcome
    except Exception:
        return None


def _last_line(value: object) -> str:
    lines = [line.strip() for line in str(value).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


__all__ = ["SlurmExecutor", "SlurmParams"]
