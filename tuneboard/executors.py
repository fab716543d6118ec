"""Executors: where launched runs execute. The built-in `local` one, and the base of remote ones.

The engine hands every launched run to one executor (the contract is `tuneboard.Executor`).
`LocalExecutor`, the default, runs them in background threads of this process on the
project's device slots. `RemoteExecutor` is the base of executor plugins that run each run as
a job somewhere else (a Ray cluster): it follows every job from a thread of this process and
replays the job's records into the local database (`tuneboard.remote`), so a subclass only
starts, follows and stops jobs. `build_executor` picks and validates the project's executor.
"""

from __future__ import annotations

import functools
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneboard.config import LOCAL_EXECUTOR, ExecutorSpec, Project
from tuneboard.engine.scheduler import Scheduler
from tuneboard.plugins import PluginRegistry
from tuneboard.remote import RemoteSpec
from tuneboard.remote.records import Replayer
from tuneboard.sdk.contracts import NoParams, P
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.execution import Executor
from tuneboard.sdk.params import build_params, did_you_mean
from tuneboard.store.schema import CANCELLED, COMPLETED, FAILED

if TYPE_CHECKING:
    from tuneboard.engine.runner import RunJob

log = logging.getLogger(__name__)


class LocalExecutor(Executor[NoParams]):
    """The built-in executor: background threads of this process on its device slots.

    Every visible GPU (else the CPU) gives slots, as `[project]` says; runs wait in a queue
    for a free one (see `tuneboard.engine.scheduler`).
    """

    name = LOCAL_EXECUTOR
    description = "this machine's GPUs (or its CPU), in background threads"

    def __init__(
        self, params: NoParams, project: Project, *, scheduler: Scheduler | None = None
    ) -> None:
        super().__init__(params, project)
        self.scheduler = scheduler or Scheduler(
            project.devices,
            slots_per_device=project.slots_per_device,
            cpu_slots=project.cpu_slots,
        )

    def submit(
        self, job: RunJob, *, group: str | None = None, group_limit: int | None = None
    ) -> None:
        """Queue the run for the next free slot."""
        self.scheduler.submit(job.run_id, job, job.dropped, group=group, group_limit=group_limit)

    def cancel(self, run_id: str) -> bool:
        """Drop a queued run, or ask a running one to stop between steps."""
        return self.scheduler.cancel(run_id)

    def active(self) -> list[str]:
        """Queued and running runs."""
        return self.scheduler.active()

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the runs end; False on timeout."""
        return self.scheduler.wait(run_ids, timeout)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Take no more runs, cancel the others if asked, and wait for them."""
        return self.scheduler.shutdown(cancel=cancel, timeout=timeout)


@dataclass(frozen=True)
class RemoteOutcome:
    """How a remote job ended, used when the run did not record its own end."""

    status: str
    error: str | None = None


class RemoteExecutor(Executor[P], ABC):
    """Base of executors that run each run as a job elsewhere and stream its records back.

    Every submitted run gets a thread of this process (at most `max_jobs` at a time; the
    others wait, queued) that calls `execute`. A subclass starts the job there, running
    `tuneboard.remote.remote_command(python, self.remote_spec(job, ...))` on the remote
    machine; feeds the job's log to `replayer.feed` as it arrives; stops the job when
    `cancel` is set; and returns how the job ended. What the run recorded itself (its
    status, error, metrics) wins; the returned outcome ends only a run that did not record
    its end (killed, lost, failed before it started).
    """

    max_jobs: int = 16  # a subclass may set its own, before the first submit

    def __init__(self, params: P, project: Project) -> None:
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
        """What the remote process needs; the folders default to this machine's paths."""
        experiment = job.prepared.experiment
        return RemoteSpec(
            project=project_dir or str(job.prepared.project.root),
            experiment=experiment.name,
            config=dict(experiment.raw),
            run_id=job.run_id,
            run_dir=run_dir or str(job.run_dir),
            device=device,
            threads=threads,
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
        from tuneboard.engine.scheduler import detect_devices

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
        if getattr(getattr(job, "recovery", None), "plan", None) is not None:
            # A resumed run goes on from checkpoints in its folder here: run it here.
            device = self._local_device()
            job.store.log_event(
                job.run_id,
                f"resuming on this machine ({device}): {self.name} starts only new runs remotely",
            )
            job(device, cancel)
            return
        replayer = Replayer(job, device_prefix=self.name)
        try:
            outcome = self.execute(job, replayer, cancel)
        except Exception as error:  # the executor's own failure fails this run only
            from tuneboard.engine.runner import one_line

            log.exception("run %s: the %s executor failed", job.run_id, self.name)
            outcome = RemoteOutcome(FAILED, f"{self.name} executor: {one_line(error)}")
        replayer.end()
        if cancel.is_set() and outcome.status != COMPLETED:
            outcome = RemoteOutcome(CANCELLED, "cancelled by the user")
        replayer.finish(outcome.status, outcome.error)


def executor_names(registry: PluginRegistry) -> list[str]:
    """Every executor a project can name: `local`, then the plugins' executors."""
    return [LOCAL_EXECUTOR, *sorted(name for name in registry.executors if name != LOCAL_EXECUTOR)]


def build_executor(
    project: Project,
    registry: PluginRegistry,
    spec: ExecutorSpec | None = None,
    *,
    scheduler: Scheduler | None = None,
) -> Executor[Any]:
    """The executor `spec` names (default: the project's), with its settings validated.

    `scheduler` is the local executor's (tests pass their own). Raises `ConfigError` naming
    the table and key at fault, or listing the available executors for an unknown name.
    """
    spec = spec or project.executor
    where = f"{spec.where} ({spec.plugin})"
    if spec.plugin == LOCAL_EXECUTOR:
        return LocalExecutor(
            build_params(NoParams, spec.settings, where), project, scheduler=scheduler
        )
    if spec.plugin not in registry.executors:
        names = executor_names(registry)
        message = (
            f"{spec.where}: unknown executor {spec.plugin!r}{did_you_mean(spec.plugin, names)}; "
            f"available: {', '.join(names)} (executors come from installed plugins, such as "
            "tuneboard-ray)"
        )
        if registry.failures:
            failed = ", ".join(failure.name for failure in registry.failures)
            message += f"; plugins that failed to load: {failed}"
        raise ConfigError(message)
    executor_cls = registry.executor(spec.plugin)
    return executor_cls(build_params(executor_cls.Params, spec.settings, where), project)
