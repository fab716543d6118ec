"""The `ray` executor: each run is a Ray job, submitted and followed through the Ray Jobs API.

A run's job executes ``python -m tuneboard.remote --spec ...`` on the cluster
(`tuneboard.remote_command`): the same runner as a local run, writing what the run records as
lines on its stdout. This process follows the job's log (`JobSubmissionClient.tail_job_logs`) and
replays those lines into the project's database as they come, so the app's live charts,
`compare` and SQL see the run as they see a local one. Cancelling the run stops the job
(`stop_job`: SIGTERM, which the run handles between steps). A job that fails before the run
could record its end fails the run with the last lines of the job's log.

Each run asks Ray for `gpus_per_run` GPUs, `cpus_per_run` CPUs, `memory_per_run` GiB and the
custom `resources`. A run whose experiment has ``gpus = N`` (N > 1) is one job running a Ray
Train driver instead (`tuneboard_ray.train`): N ranks, each asking for all that, on one node or
several, rank 0's records relayed to the driver's output, which this process follows the same way.

Ray is imported only when a run is submitted: `tuneboard --help`, `tuneboard plugins` and the
app start without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import logging
import secrets
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tuneboard import (
    ConfigError,
    ProjectInfo,
    RemoteExecutor,
    RemoteOutcome,
    Replayer,
    RunJob,
    RunStatus,
    param,
    remote_command,
)
from tuneboard_ray.command import WorkerResources, train_command

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Seconds between reconnections when the log stream breaks while the job still runs.
RECONNECT_SECONDS = 2.0
# How often the follower looks at the cancel flag.
CANCEL_POLL_SECONDS = 0.25
# Once the run recorded its end, how long to wait for the rest of its log (the job's process
# still has to exit, and Ray to notice, which takes seconds).
FINAL_GRACE_SECONDS = 2.0


@dataclass
class RayParams:
    """The keys of a `[project.executor]` table with ``plugin = "ray"``."""

    address: str = param(
        DEFAULT_ADDRESS, "the cluster's Ray Jobs API (dashboard) address, http://HOST:8265"
    )
    gpus_per_run: float = param(
        0.0,
        "GPUs each run's job asks Ray for, per rank when the experiment has gpus = N > 1 "
        "(0: the run uses CPUs)",
        min=0,
    )
    cpus_per_run: float = param(
        1.0, "CPUs each run's job (each rank) asks Ray for; torch uses as many", min=0
    )
    memory_per_run: float = param(
        0.0, "memory in GiB each run's job (each rank) asks Ray for (0: none reserved)", min=0
    )
    resources: dict[str, float] = param(
        {},
        "custom Ray resources each run's job (each rank) asks for, "
        'e.g. { "accelerator_type:H100" = 1 }',
    )
    python: str = param(
        "",
        "the cluster's Python with tuneboard installed "
        "(default: this one for a cluster on this machine, else python)",
    )
    project_dir: str = param(
        "", "the project folder as the cluster sees it (default: the same path as here)"
    )
    runs_dir: str = param(
        "", "the folder runs write to on the cluster (default: the project's runs folder)"
    )
    runtime_env: dict[str, Any] = param({}, "Ray runtime_env of every job (env_vars, pip, ...)")
    max_jobs: int = param(16, "runs submitted at once; more wait here, queued", min=1)
    stop_seconds: int = param(
        30, "after a cancel, how long a run's job has to end cleanly before Ray kills it", min=1
    )

    def __post_init__(self) -> None:
        parts = urlsplit(self.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"key 'address' must look like http://HOST:8265 (the Ray dashboard), "
                f"got {self.address!r}"
            )
        for name, amount in self.resources.items():
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0:
                raise ValueError(f"key 'resources': {name!r} must be a number >= 0, got {amount!r}")


class RayExecutor(RemoteExecutor[RayParams]):
    """Runs each run as a job on a Ray cluster, streaming its records back as it goes."""

    name = "ray"
    description = "a Ray cluster, one Ray job per run (Ray Jobs API)"
    Params = RayParams

    def __init__(self, params: RayParams, project: ProjectInfo) -> None:
        super().__init__(params, project)
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(
                "the ray executor needs Ray in this Python: pip install 'tuneboard-ray[ray]'"
            )
        self.max_jobs = params.max_jobs

    def execute(self, job: RunJob, replayer: Replayer, cancel: threading.Event) -> RemoteOutcome:
        """Submit the run as a Ray job, replay its log until it ends, stop it on cancel."""
        from ray.job_submission import JobStatus, JobSubmissionClient

        logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)
        params = self.params
        try:
            client = JobSubmissionClient(params.address)
        except ConnectionError as error:
            return RemoteOutcome(
                RunStatus.FAILED,
                f"cannot reach the Ray cluster at {params.address}: {_first_line(error)}",
            )
        spec = self.remote_spec(
            job,
            project_dir=params.project_dir or None,
            run_dir=f"{params.runs_dir.rstrip('/')}/{job.run_id}" if params.runs_dir else None,
            device="auto" if params.gpus_per_run > 0 else "cpu",
            threads=max(1, int(params.cpus_per_run)) if params.cpus_per_run else None,
        )
        submission_id = f"tuneboard-{job.run_id}-{secrets.token_hex(3)}"
        if cancel.is_set():
            return RemoteOutcome(RunStatus.CANCELLED, "cancelled before it was submitted")
        ranks = run_ranks(job.config)
        if ranks > 1:  # a Ray Train driver that asks nothing itself: its ranks ask
            entrypoint = train_command(self._python(), spec, self._worker_resources(ranks))
            asks: dict[str, Any] = {}
        else:
            entrypoint = remote_command(self._python(), spec)
            asks = {
                "entrypoint_num_cpus": params.cpus_per_run or None,
                "entrypoint_num_gpus": params.gpus_per_run or None,
                "entrypoint_memory": _bytes(params.memory_per_run) or None,
                "entrypoint_resources": dict(params.resources) or None,
            }
        client.submit_job(
            entrypoint=entrypoint,
            submission_id=submission_id,
            runtime_env=self._runtime_env(),
            metadata={
                "tuneboard_run": job.run_id,
                "tuneboard_experiment": job.experiment,
                "tuneboard_project": self.project.name,
            },
            **asks,
        )
        job.log_event(f"submitted as Ray job {submission_id} to {params.address}")
        asyncio.run(_follow(client, submission_id, replayer, cancel))
        if replayer.final_status is not None:  # the run recorded its end: the job is exiting
            return RemoteOutcome(replayer.final_status)
        info = client.get_job_info(submission_id)
        if info.status == JobStatus.STOPPED:
            if cancel.is_set():
                return RemoteOutcome(RunStatus.CANCELLED, "cancelled by the user")
            return RemoteOutcome(
                RunStatus.FAILED, f"Ray job {submission_id} was stopped outside tuneboard"
            )
        if info.status == JobStatus.FAILED:
            reason = _first_line(info.message or "") or "the job failed"
            tail = replayer.error_tail()
            return RemoteOutcome(
                RunStatus.FAILED,
                f"Ray job {submission_id} failed: {reason}" + (f" | {tail}" if tail else ""),
            )
        return RemoteOutcome(
            RunStatus.FAILED,
            f"Ray job {submission_id} ended ({info.status}) without the run's result; "
            f"see its log: {replayer.error_tail() or '(empty)'}",
        )

    def _worker_resources(self, ranks: int) -> WorkerResources:
        params = self.params
        return WorkerResources(
            workers=ranks,
            cpus=params.cpus_per_run,
            gpus=params.gpus_per_run,
            memory=_bytes(params.memory_per_run),
            resources=dict(params.resources),
        )

    def _runtime_env(self) -> dict[str, Any]:
        """The user's runtime_env, with the time a cancelled job has to end cleanly
        (Ray's default, 3 s, is shorter than one step of a large model)."""
        runtime_env = dict(self.params.runtime_env)
        env_vars = {"RAY_JOB_STOP_WAIT_TIME_S": str(self.params.stop_seconds)}
        env_vars.update(runtime_env.get("env_vars") or {})
        runtime_env["env_vars"] = env_vars
        return runtime_env

    def _python(self) -> str:
        if self.params.python:
            return self.params.python
        return sys.executable if _is_this_machine(self.params.address) else "python"


async def _follow(
    client: JobSubmissionClient, submission_id: str, replayer: Replayer, cancel: threading.Event
) -> None:
    """Feed the job's log to `replayer` until the job ends; stop the job once `cancel` is set."""
    stopper = asyncio.create_task(_stop_on_cancel(client, submission_id, cancel))
    log_text = _LogText(replayer)
    try:
        while True:
            try:
                await _stream(client, submission_id, log_text, replayer)
                break
            except Exception as error:  # the stream broke: carry on while the job runs
                info = await asyncio.to_thread(client.get_job_info, submission_id)
                if info.status.is_terminal():
                    break
                log.warning(
                    "log stream of Ray job %s broke (%s); reconnecting", submission_id, error
                )
                await asyncio.sleep(RECONNECT_SECONDS)
                log_text.restart()
    finally:
        stopper.cancel()
    if replayer.final_status is None:  # whatever the stream had not delivered at the end
        log_text.restart()
        log_text.feed(await asyncio.to_thread(client.get_job_logs, submission_id))


async def _stream(
    client: JobSubmissionClient, submission_id: str, log_text: _LogText, replayer: Replayer
) -> None:
    """Follow one log stream until the job ends, or shortly after the run recorded its end
    (the job's process may take seconds more to exit, and Ray to notice)."""
    chunks = client.tail_job_logs(submission_id)
    try:
        while True:
            wait = FINAL_GRACE_SECONDS if replayer.final_status is not None else None
            try:
                chunk = await asyncio.wait_for(anext(chunks), wait)
            except (StopAsyncIteration, TimeoutError):
                return
            log_text.feed(chunk)
    finally:
        close = getattr(chunks, "aclose", None)  # an async generator: end its websocket
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


class _LogText:
    """Hands a job's log to the replayer once, however many times a stream repeats it."""

    def __init__(self, replayer: Replayer) -> None:
        self._replayer = replayer
        self._position = 0  # where the current stream is in the log
        self._replayed = 0  # how much of the log the replayer has had

    def restart(self) -> None:
        """A new stream (or a whole copy of the log) starts from its first character."""
        self._position = 0

    def feed(self, chunk: str) -> None:
        """Pass on the part of `chunk` that the replayer has not had yet."""
        start, self._position = self._position, self._position + len(chunk)
        if self._position > self._replayed:
            self._replayer.feed(chunk[max(0, self._replayed - start) :])
            self._replayed = self._position


async def _stop_on_cancel(
    client: JobSubmissionClient, submission_id: str, cancel: threading.Event
) -> None:
    while not cancel.is_set():
        await asyncio.sleep(CANCEL_POLL_SECONDS)
    await asyncio.to_thread(client.stop_job, submission_id)


def _is_this_machine(address: str) -> bool:
    host = urlsplit(address).hostname or ""
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_ranks(config: Mapping[str, Any]) -> int:
    """The rank count of a run's resolved experiment (its top-level `gpus`, default 1)."""
    value = config.get("gpus", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def _bytes(gib: float) -> int:
    return int(gib * 1024**3)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


__all__ = ["RayExecutor", "RayParams"]
