"""The engine: the one object clients (CLI, app) use to launch, cancel and wait for runs."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tuneboard.config import ExperimentConfig, Project
from tuneboard.engine import killpoints
from tuneboard.engine.executors import build_executor
from tuneboard.engine.observer import ObserverGroup, RunObserver
from tuneboard.engine.provenance import build_record
from tuneboard.engine.queue import StoreQueuePolicy
from tuneboard.engine.resume import ResumePlan
from tuneboard.engine.runner import EngineJob, PreparedRun, prepare_run
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.execution import Executor
from tuneboard.sdk.files import private_folder
from tuneboard.sdk.scheduler import Scheduler
from tuneboard.store import ACTIVE_STATUSES, Store
from tuneboard.store.writer import import_batch_libraries

log = logging.getLogger(__name__)

# How often a process looks for cancel requests made by other processes for its runs, and
# at the queue's order, holds, pins and pause.
CANCEL_POLL_SECONDS = 1.0
# The longest `shutdown` waits for the watcher's last poll (one query) to end.
WATCHER_JOIN_SECONDS = 30.0


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
        executor: Executor[Any] | None = None,
    ) -> None:
        import_batch_libraries()
        self.project = project
        self.store = store
        self.registry = registry
        self.observer = observer or RunObserver()
        # The queue as people steer it (`tuneboard queue`, the app's Queue screen).
        self.queue_policy = StoreQueuePolicy()
        self.scheduler = scheduler or Scheduler(
            project.devices,
            slots_per_device=project.slots_per_device,
            cpu_slots=project.cpu_slots,
            policy=self.queue_policy,
            recheck=CANCEL_POLL_SECONDS,
        )
        self._waiting: dict[str, str] = {}  # why runs wait, as last recorded
        # Where runs execute: the project's executor (`local`: the scheduler's slots).
        self.executor = executor or build_executor(project, registry, scheduler=self.scheduler)
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()

    def prepare(self, experiment: ExperimentConfig) -> PreparedRun:
        """Load and check an experiment's data; raises TuneboardError on bad input."""
        return prepare_run(self.project, experiment, self.registry, store=self.store)

    def launch(
        self,
        prepared: PreparedRun,
        *,
        sweep_id: str | None = None,
        sweep_values: Mapping[str, Any] | None = None,
        sweep_objective: Mapping[str, Any] | None = None,
        max_parallel: int | None = None,
        watcher: RunObserver | None = None,
    ) -> str:
        """Record a new queued run and hand it to the scheduler; return its id.

        Runs of one `sweep_id` run at most `max_parallel` at a time; `sweep_values` (the
        values the sweep chose) and `sweep_objective` (its `method`, `metric` and `direction`)
        go into the run's provenance. `watcher` is told about this
        run only, besides the engine's observer (a sweep prunes trials through it).
        """
        experiment = prepared.experiment
        sweep = None
        if sweep_id is not None:
            sweep = {
                "id": sweep_id,
                "values": dict(sweep_values or {}),
                **(sweep_objective or {}),
            }
        provenance = build_record(experiment, self.project.root, prepared.data_files, sweep=sweep)
        with self._lock:  # two launches in one second must not share an id
            run_id = new_run_id()
            while self._run_dir(run_id).exists():
                run_id = new_run_id()
            try:
                run_dir = private_folder(
                    self._run_dir(run_id),
                    self.project.root,
                    f"{self.project.file.name}: [project]: key 'runs_dir'",
                )
            except OSError as error:
                reason = error.strerror or str(error)
                raise TuneboardError(
                    f"cannot create the run folder {self._run_dir(run_id)}: {reason}"
                ) from None
        self.store.create_run(
            run_id,
            experiment.name,
            dict(experiment.raw),
            headline=experiment.headline,
            sweep_id=sweep_id,
            provenance=provenance,
        )
        if prepared.origin is not None:
            self.store.record_parent(prepared.origin.link(run_id))
            self.store.log_event(run_id, f"model from {prepared.origin.describe()}")
        self.store.log_event(run_id, f"queued experiment {experiment.name!r}")
        # Committed before the id is returned (and shown): a process killed at any moment
        # after that leaves a run that `tuneboard resume` finds.
        self.store.flush()
        killpoints.reached("run.created")
        observer = self.observer if watcher is None else ObserverGroup([self.observer, watcher])
        observer.run_status(run_id, "queued", None)
        job = EngineJob(
            run_id,
            prepared,
            store=self.store,
            registry=self.registry,
            observer=observer,
            run_dir=run_dir,
        )
        job.lifecycle.queued()
        self.queue_policy.expect(run_id, experiment.memory_gb)
        self.read_queue()  # a paused queue holds it from the start
        self.executor.submit(job, group=sweep_id, group_limit=max_parallel)
        self._watch_cancel_requests()
        return run_id

    def resume(self, run_id: str) -> ResumePlan:
        """Continue a cancelled, failed or interrupted run (same id) from its last checkpoint.

        Raises TuneboardError, changing nothing, when it cannot be resumed (see
        `tuneboard.engine.resume.prepare_resume`). Returns where it goes on.
        """
        from tuneboard.engine.resume import prepare_resume

        prepared, plan = prepare_resume(self.project, self.store, self.registry, run_id)
        self.observer.run_status(plan.run_id, "queued", None)
        job = EngineJob(
            plan.run_id,
            prepared,
            store=self.store,
            registry=self.registry,
            observer=self.observer,
            run_dir=self._run_dir(plan.run_id),
            resume=plan,
        )
        job.lifecycle.queued()
        self.queue_policy.expect(plan.run_id, prepared.experiment.memory_gb)
        self.read_queue()
        self.executor.submit(job)
        self._watch_cancel_requests()
        return plan

    def cancel(self, run_id: str) -> bool:
        """Ask a queued or running run to stop, whichever process runs it.

        Runs of this process are cancelled directly; runs of another process through a flag
        in the database that their process polls. False when the run is not active.
        """
        if self.executor.cancel(run_id):
            return True
        if self.store.get_run(run_id).status not in ACTIVE_STATUSES:
            return False
        self.store.request_cancel(run_id)
        return True

    @property
    def closed(self) -> bool:
        """True once `shutdown` was called: no more launches."""
        return self._closed.is_set()

    def active(self) -> list[str]:
        """Ids of this process's queued and running runs."""
        return self.executor.active()

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the runs end; False on timeout."""
        return self.executor.wait(run_ids, timeout)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Cancel (if asked) and wait for every run, then flush the store."""
        self._closed.set()
        done = self.executor.shutdown(cancel=cancel, timeout=timeout)
        self._stop_watching()
        try:
            self.store.flush()
        except TuneboardError:
            if self.store.failure is None:  # else nothing more gets written: the owner reports it
                raise
        return done

    def read_queue(self) -> None:
        """Read the queue's rules from the database now and apply them (after a change made
        in this process; other processes' changes arrive with the next poll)."""
        try:
            _, rules = self.store.controls([])
        except Exception:  # a busy database only delays the rules to the next poll
            log.warning("could not read the queue", exc_info=True)
            return
        if rules is not None:
            self.queue_policy.update(rules)
        self.scheduler.nudge()

    def _record_waiting(self) -> None:
        """Record why this process's queued runs wait, where it changed."""
        waiting = self.scheduler.waiting()
        changed = {r: why for r, why in waiting.items() if self._waiting.get(r) != why}
        self._waiting = waiting
        if changed:
            self.store.set_queue_waiting(changed)

    def _watch_cancel_requests(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._poll_cancel_requests, name="tuneboard-cancel-watch", daemon=True
                )
                self._watcher.start()

    def _stop_watching(self) -> None:
        """Wait for the cancel watcher to end its last poll: a daemon thread still in a DuckDB
        query as Python exits aborts the process (see `Database._close_instances`)."""
        with self._lock:
            watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(WATCHER_JOIN_SECONDS)

    def _poll_cancel_requests(self) -> None:
        while not self._closed.wait(CANCEL_POLL_SECONDS):
            active = self.executor.active()
            if not active:
                continue
            if self.store.failure is not None:
                # Nothing the runs do can be recorded any more: stop them, rather than train
                # for nothing (whoever owns the store reports why).
                for run_id in active:
                    self.executor.cancel(run_id)
                continue
            # The queue's rules only matter while this process has runs waiting in it.
            queued = bool(self.scheduler.queued())
            try:
                requested, rules = self.store.controls(active, rules=queued)
            except Exception:  # a busy database only delays the cancel to the next poll
                log.warning("could not read cancel requests", exc_info=True)
                continue
            for run_id in requested:
                self.executor.cancel(run_id)
            if rules is not None:
                self.queue_policy.update(rules)
                self.scheduler.nudge()
            self._record_waiting()

    def _run_dir(self, run_id: str) -> Path:
        return self.project.runs_dir / run_id
