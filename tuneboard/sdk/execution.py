"""The contract between tuneboard and executor plugins: where launched runs execute.

The engine makes one `Executor` per process and hands it every launched run as a `RunJob`.
What the executor may read of the project is a `ProjectInfo`. A remote executor (see
`tuneboard.sdk.remote`) also gets a `Replayer` for each run, which turns the remote job's log
back into the run's records here. The engine implements `RunJob` and `Replayer`; executors
only use them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tuneboard.sdk.contracts import LogLevel, P, Plugin


class ProjectInfo(Protocol):
    """What an executor reads of the project (`tuneboard.toml`'s `[project]` table)."""

    @property
    def name(self) -> str:
        """The project's name."""

    @property
    def root(self) -> Path:
        """The project folder on this machine (holding `tuneboard.toml`)."""

    @property
    def devices(self) -> str | tuple[str, ...]:
        """``"auto"`` (every visible GPU, else the CPU) or the devices named, such as cuda:0."""

    @property
    def slots_per_device(self) -> int:
        """Runs that may share one GPU at a time."""

    @property
    def cpu_slots(self) -> int:
        """Runs that may share the CPU at a time."""


class Replayer(Protocol):
    """Turns a remote run's log back into the run's records here, as the log arrives.

    A `RemoteExecutor` gets one per run (`RunJob.replayer`) and feeds it the remote process's
    output; lines that are not records are kept for error messages.
    """

    @property
    def final_status(self) -> str | None:
        """The status the run recorded as its end; None until it did."""

    def feed(self, text: str) -> None:
        """Take the next piece of the log, in a chunk of any size."""

    def end(self) -> None:
        """The log ended: handle its last line, if it had no newline."""

    def finish(self, status: str, error: str | None) -> None:
        """End the run with `status` and `error`, unless it recorded its own end already."""

    def error_tail(self, lines: int = 12) -> str:
        """The last lines of the log that were not records, joined into one line."""


class RunJob(Protocol):
    """One launched run, as the engine hands it to `Executor.submit`.

    Calling ``job(device, cancel)`` runs the whole run in the calling thread and never raises;
    a run cancelled before it started must end with `dropped()` instead. The rest describes
    the run for executors that run it elsewhere (see `RemoteExecutor`).
    """

    @property
    def run_id(self) -> str:
        """The run's id."""

    @property
    def run_dir(self) -> Path:
        """The run's folder on this machine (checkpoints, exports)."""

    @property
    def experiment(self) -> str:
        """The name of the experiment the run is of."""

    @property
    def config(self) -> Mapping[str, Any]:
        """The experiment's resolved table, overrides applied (what a remote process runs)."""

    @property
    def project_dir(self) -> Path:
        """The project folder on this machine."""

    @property
    def resumed(self) -> bool:
        """True when the run goes on from checkpoints in its folder here (`tuneboard resume`)."""

    def __call__(self, device: str, cancel: threading.Event) -> None:
        """Run every stage on `device` in this thread; stop between steps once `cancel` is set."""

    def dropped(self) -> None:
        """End the run as cancelled before it started."""

    def log_event(self, message: str, *, level: LogLevel = "info") -> None:
        """Add an event to the run's log (shown in the app and by `tuneboard show`)."""

    def replayer(self, device_prefix: str) -> Replayer:
        """A replayer of this run's remote log; its device shows as ``PREFIX:DEVICE``."""


class Executor(Plugin[P], ABC):
    """An executor plugin: where launched runs execute.

    The engine makes one per process, as ``ExecutorClass(params, project)`` with the validated
    `Params` of the project's executor table (or of `tuneboard run --executor`), and hands it
    every launched run as a `RunJob`. The built-in `local` executor calls
    ``job(device, cancel_event)`` on its device slots; a remote executor runs the job elsewhere
    and streams its records back (`RemoteExecutor` does the bookkeeping). A run cancelled
    before it started must end with `job.dropped()`. `submit` and `cancel` are called from the
    app's and the CLI's threads and must return quickly.
    """

    def __init__(self, params: P, project: ProjectInfo) -> None:
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
