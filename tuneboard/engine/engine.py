"""The engine: the one object clients (CLI, app) use to launch, cancel and wait for runs."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from tuneboard.config import ExperimentConfig, Project
from tuneboard.engine.observer import RunObserver
from tuneboard.engine.runner import PreparedRun, RunJob, prepare_run
from tuneboard.engine.scheduler import Scheduler
from tuneboard.plugins import PluginRegistry
from tuneboard.privacy import private_files
from tuneboard.store import ACTIVE_STATUSES, Store

log = logging.getLogger(__name__)

# How often a process looks for cancel requests made by other processes for its runs.
CANCEL_POLL_SECONDS = 1.0


def new_run_id() -> str:
    """A sortable, readable id that is safe as a folder name: `20261123-031522-a3f9`."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Engine:
    """Launches runs of a project's experiments on a scheduler and records them in a store."""

    def __init__(
        self,
        project: Project,
        store: Store,
        registry: PluginRegistry,
        *,
        observer: RunObserver | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.project = project
        self.store = store
        self.registry = registry
        self.observer = observer or RunObserver()
        self.scheduler = scheduler or Scheduler(
            project.devices,
            slots_per_device=project.slots_per_device,
            cpu_slots=project.cpu_slots,
        )
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()

    def prepare(self, experiment: ExperimentConfig) -> PreparedRun:
        """Load and check an experiment's data; raises TuneboardError on bad input."""
        return prepare_run(self.project, experiment, self.registry)

    def launch(self, prepared: PreparedRun, *, sweep_id: str | None = None) -> str:
        """Record a new queued run and hand it to the scheduler; return its id."""
        experiment = prepared.experiment
        with self._lock:  # two launches in one second must not share an id
            run_id = new_run_id()
            while self._run_dir(run_id).exists():
                run_id = new_run_id()
            run_dir = self._run_dir(run_id)
            with private_files():  # the runs folder too, when this creates it
                run_dir.mkdir(mode=0o700, parents=True)
        self.store.create_run(
            run_id,
            experiment.name,
            dict(experiment.raw),
            headline=experiment.headline,
            sweep_id=sweep_id,
        )
        self.store.log_event(run_id, f"queued experiment {experiment.name!r}")
        self.observer.run_status(run_id, "queued", None)
        job = RunJob(
            run_id,
            prepared,
            store=self.store,
            registry=self.registry,
            observer=self.observer,
            run_dir=run_dir,
        )
        self.scheduler.submit(run_id, job, job.dropped)
        self._watch_cancel_requests()
        return run_id

    def cancel(self, run_id: str) -> bool:
        """Ask a queued or running run to stop, whichever process runs it.

        Runs of this process are cancelled directly; runs of another process through a flag
        in the database that their process polls. False when the run is not active.
        """
        if self.scheduler.cancel(run_id):
            return True
        if self.store.get_run(run_id).status not in ACTIVE_STATUSES:
            return False
        self.store.request_cancel(run_id)
        return True

    def active(self) -> list[str]:
        """Ids of this process's queued and running runs."""
        return self.scheduler.active()

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the runs end; False on timeout."""
        return self.scheduler.wait(run_ids, timeout)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Cancel (if asked) and wait for every run, then flush the store."""
        self._closed.set()
        done = self.scheduler.shutdown(cancel=cancel, timeout=timeout)
        self.store.flush()
        return done

    def _watch_cancel_requests(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._poll_cancel_requests, name="tuneboard-cancel-watch", daemon=True
                )
                self._watcher.start()

    def _poll_cancel_requests(self) -> None:
        while not self._closed.wait(CANCEL_POLL_SECONDS):
            active = self.scheduler.active()
            if not active:
                continue
            try:
                requested = self.store.cancel_requests(active)
            except Exception:  # a busy database only delays the cancel to the next poll
                log.warning("could not read cancel requests", exc_info=True)
                continue
            for run_id in requested:
                self.scheduler.cancel(run_id)

    def _run_dir(self, run_id: str) -> Path:
        return self.project.runs_dir / run_id
