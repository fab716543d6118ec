"""The contract between tuneboard and executor plugins: where launched runs execute."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tuneboard.sdk.contracts import P, Plugin

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.engine.runner import RunJob


class Executor(Plugin[P], ABC):
    """An executor plugin: where launched runs execute.

    The engine makes one per process, as ``ExecutorClass(params, project)`` with the validated
    `Params` of the project's executor table (or of `tuneboard run --executor`), and hands it
    every launched run as a ``tuneboard.engine.runner.RunJob``: `job.run_id`, `job.prepared`
    (the project, the validated experiment and its data), `job.run_dir`, and `job.store`,
    `job.observer` and `job.lifecycle`, where the run's progress and results go. Calling
    ``job(device, cancel_event)`` runs the whole run in the calling thread (what the built-in
    `local` executor does on its device slots); a remote executor runs it elsewhere and
    streams its records back (``tuneboard.executors.RemoteExecutor`` does the bookkeeping). A
    run cancelled before it started must end with `job.dropped()`. `submit` and `cancel` are
    called from the app's and the CLI's threads and must return quickly.
    """

    def __init__(self, params: P, project: Project) -> None:
        super().__init__(params)
        self.project = project

    @abstractmethod
    def submit(
        self, job: RunJob, *, group: str | None = None, group_limit: int | None = None
    ) -> None:
        """Start `job` now or when there is room, and return at once.

        Runs of one `group` (a sweep) run at most `group_limit` at a time.
        """

    @abstractmethod
    def cancel(self, run_id: str) -> bool:
        """Stop a queued or running run; False when this executor does not know the run."""

    @abstractmethod
    def active(self) -> list[str]:
        """Ids of this executor's queued and running runs."""

    @abstractmethod
    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the given runs (default: all) have ended; False on timeout."""

    @abstractmethod
    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Take no more runs; cancel the active ones if asked; wait for them (False: timeout)."""
