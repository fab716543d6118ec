"""The built-in `local` executor, and `build_executor`, which picks the project's executor.

The engine hands every launched run to one executor (the contract is `tuneboard.Executor`).
`LocalExecutor`, the default, runs them in background threads of this process on the
project's device slots. Executor plugins that run runs elsewhere build on
`tuneboard.RemoteExecutor` (`tuneboard.sdk.remote`). `build_executor` picks and validates the
project's executor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tuneboard.config import LOCAL_EXECUTOR, ExecutorSpec, Project
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.contracts import NoParams
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.execution import Executor, ProjectInfo, RunJob
from tuneboard.sdk.params import build_params, did_you_mean
from tuneboard.sdk.scheduler import Scheduler


class LocalExecutor(Executor[NoParams]):
    """The built-in executor: background threads of this process on its device slots.

    Every visible GPU (else the CPU) gives slots, as `[project]` says; runs wait in a queue
    for a free one (see `tuneboard.sdk.scheduler`).
    """

    name = LOCAL_EXECUTOR
    description = "this machine's GPUs (or its CPU), in background threads"

    def __init__(
        self, params: NoParams, project: ProjectInfo, *, scheduler: Scheduler | None = None
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
        """Queue the run for the next free slot (a slot on each of its `gpus`)."""
        self.scheduler.submit(
            job.run_id,
            job,
            job.dropped,
            group=group,
            group_limit=group_limit,
            devices=devices_wanted(job.config),
        )

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


def devices_wanted(config: Mapping[str, Any]) -> int:
    """The devices a run uses together: its experiment's `gpus` (1 when not set)."""
    gpus = config.get("gpus", 1)
    return gpus if isinstance(gpus, int) and gpus > 1 else 1


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
