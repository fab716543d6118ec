"""Remote executors: run each run as a job on another machine and stream its records back.

A remote job runs the command from `remote_command`: ``python -m tuneboard.remote --spec
SPEC``, where SPEC (a `RemoteSpec`) carries the project folder, the experiment's resolved
config, the run id, the run folder and the device. That process prepares and runs the run with
the same runner as a local run (with `resume`, going on from the checkpoints in the run
folder, as `tuneboard resume` does) and writes what the run records as lines on stdout; the
launching process feeds them to the run's `Replayer`, which writes them into its database.
SIGTERM or SIGINT cancel the remote run cleanly between steps. `RemoteExecutor` does the
queueing and the bookkeeping, so a subclass only starts, follows and stops jobs.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from tuneboard.sdk.contracts import P
from tuneboard.sdk.errors import TuneboardError, one_line
from tuneboard.sdk.execution import Executor, ProjectInfo, Replayer, RunJob
from tuneboard.sdk.scheduler import Scheduler, detect_devices
from tuneboard.sdk.status import CANCELLED, COMPLETED, FAILED

log = logging.getLogger(__name__)

SPEC_VERSION = 1


@dataclass(frozen=True)
class RemoteSpec:
    """What the remote process needs to execute one run.

    `project` is the project folder as the remote machine sees it (its `tuneboard.toml`,
    data files and `plugins/` are read there); `config` the experiment's resolved table (what
    `runs.config` holds); `run_dir` the folder the run writes checkpoints and exports to on
    the remote machine. `device` is ``"cpu"``, or ``"auto"`` for the first GPU the process
    can see (the CPU when none; ``cuda:LOCAL_RANK`` in a rank of a data-parallel run);
    `threads`, when set, caps torch's CPU threads. With `resume`, the run goes on from the
    checkpoints and handoffs in `run_dir` (from its beginning when there are none), and tells
    the launcher where, so that its database drops the metric points logged after that point.
    """

    project: str
    experiment: str
    config: dict[str, Any]
    run_id: str
    run_dir: str
    device: str = "auto"
    threads: int | None = None
    version: int = field(default=SPEC_VERSION)
    resume: bool = False


def encode_spec(spec: RemoteSpec) -> str:
    """The spec as one shell-safe word (URL-safe base64 of its JSON)."""
    fields = asdict(spec)
    if not spec.resume:  # left out, so that a remote of an older version still reads it
        del fields["resume"]
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode("ascii")


def decode_spec(text: str) -> RemoteSpec:
    """The spec that `encode_spec` made; `TuneboardError` when it is not one."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        if fields.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {fields.get('version')!r}, expected {SPEC_VERSION}")
        return RemoteSpec(**fields)
    except (ValueError, TypeError, AttributeError) as error:
        raise TuneboardError(f"not a tuneboard remote run spec: {error}") from None


def remote_command(python: str, spec: RemoteSpec) -> str:
    """The shell command that runs `spec` with the interpreter `python` on the remote machine."""
    return shlex.join([python, "-m", "tuneboard.remote", "--spec", encode_spec(spec)])


@dataclass(frozen=True)
class RemoteOutcome:
    """How a remote job ended, used when the run did not record its own end."""

    status: str
    error: str | None = None


class RemoteExecutor(Executor[P], ABC):
    """Base of executors that run each run as a job elsewhere and stream its records back.

    Every submitted run gets a thread of this process (at most `max_jobs` at a time; the
    others wait, queued) that calls `execute`. A subclass starts the job there, running
    ``remote_command(python, self.remote_spec(job, ...))`` on the remote machine; feeds the
    job's log to `replayer.feed` as it arrives; stops the job when `cancel` is set; and
    returns how the job ended. What the run recorded itself (its status, error, metrics)
    wins; the returned outcome ends only a run that did not record its end (killed, lost,
    failed before it started). A resumed run (`tuneboard resume`) goes on from checkpoints
    in its folder here, so it runs on this machine, unless `resumes_remotely` says that the
    remote machines see the run folder too (a shared file system): then its job is started
    like a new run's, with a spec whose `resume` is set.
    """

    max_jobs: int = 16  # a subclass may set its own, before the first submit
    resumes_remotely: bool = False  # True: resumed runs are jobs too (`RemoteSpec.resume`)

    def __init__(self, params: P, project: ProjectInfo) -> None:
        super().__init__(params, project)
        self._scheduler: Scheduler | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def execute(self, job: RunJob, replayer: Replayer, cancel: threading.Event) -> RemoteOutcome:
        """Run `job` remotely, feeding its log to `replayer`, until the job has ended."""

    def remote_spec(
        self,
        job: RunJob,
        *,
        project_dir: str | None = None,
        run_dir: str | None = None,
        device: str = "auto",
        threads: int | None = None,
    ) -> RemoteSpec:
        """What the remote process needs; the folders default to this machine's paths, and
        `resume` is set for a resumed run."""
        return RemoteSpec(
            project=project_dir or str(job.project_dir),
            experiment=job.experiment,
            config=dict(job.config),
            run_id=job.run_id,
            run_dir=run_dir or str(job.run_dir),
            device=device,
            threads=threads,
            resume=job.resumed,
        )

    def submit(
        self, job: RunJob, *, group: str | None = None, group_limit: int | None = None
    ) -> None:
        """Queue the run; a thread starts and follows its job when fewer than `max_jobs` run."""
        self._jobs().submit(
            job.run_id,
            functools.partial(self._follow, job),
            job.dropped,
            group=group,
            group_limit=group_limit,
        )

    def cancel(self, run_id: str) -> bool:
        """Drop a queued run, or stop a running run's job."""
        return self._jobs().cancel(run_id)

    def active(self) -> list[str]:
        """Runs queued here or running remotely."""
        return self._jobs().active()

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the runs end; False on timeout."""
        return self._jobs().wait(run_ids, timeout)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Take no more runs, stop the jobs if asked, and wait for them."""
        return self._jobs().shutdown(cancel=cancel, timeout=timeout)

    def _local_device(self) -> str:
        devices = self.project.devices
        if devices != "auto":
            return devices[0]
        try:
            return detect_devices()[0]
        except Exception:  # no torch here: the run fails with its own clear error
            return "cpu"

    def _jobs(self) -> Scheduler:
        with self._lock:
            if self._scheduler is None:
                self._scheduler = Scheduler([self.name], slots_per_device=self.max_jobs)
            return self._scheduler

    def _follow(self, job: RunJob, slot: str, cancel: threading.Event) -> None:
        if job.resumed and not self.resumes_remotely:
            device = self._local_device()
            job.log_event(
                f"resuming on this machine ({device}): {self.name} starts only new runs remotely"
            )
            job(device, cancel)
            return
        replayer = job.replayer(self.name)
        try:
            outcome = self.execute(job, replayer, cancel)
        except Exception as error:  # the executor's own failure fails this run only
            log.exception("run %s: the %s executor failed", job.run_id, self.name)
            outcome = RemoteOutcome(FAILED, f"{self.name} executor: {one_line(error)}")
        replayer.end()
        if cancel.is_set() and outcome.status != COMPLETED:
            outcome = RemoteOutcome(CANCELLED, "cancelled by the user")
        replayer.finish(outcome.status, outcome.error)
