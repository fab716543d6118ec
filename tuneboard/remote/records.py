"""A remote run's records: its recorder and observer calls as JSON lines, and their replay.

A run that executes on another machine (a Ray job, see `tuneboard.RemoteExecutor`) gets a
`RemoteRecorder` and a `RecordingObserver`: instead of the project's database, every write
and notification goes to stdout as one line, ``@tuneboard-record {...}``. The process that
launched the run reads the job's log, and a `RecordReplayer` (the engine's
`tuneboard.Replayer`) applies each record to its own store (through the batched writer, like
a local run's writes), observer and lifecycle hooks, so the run looks the same as a local one
to the app, `compare` and SQL. Lines without the prefix are kept as the log's tail, for error
messages.

Only the operations named in `RecordReplayer` are replayed, always for the launched run's id: a
record can never touch another run or run SQL of its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneboard.engine.lifecycle import RunLifecycle
from tuneboard.engine.observer import RunObserver, StageSummary
from tuneboard.sdk.recording import RunRecorder
from tuneboard.sdk.status import COMPLETED, FAILED, FINISHED_STATUSES, RUNNING
from tuneboard.sdk.tasks import Generation
from tuneboard.store.schema import is_system_metric
from tuneboard.store.store import Store, hash_path

if TYPE_CHECKING:
    from tuneboard.engine.resume import ResumePlan
    from tuneboard.engine.runner import EngineJob

log = logging.getLogger(__name__)

RECORD_PREFIX = "@tuneboard-record "
RECORD_VERSION = 1


class RecordWriter:
    """Writes records to a file descriptor (stdout by default), each as one whole line."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def write(self, op: str, **fields: Any) -> None:
        """Write the record `op` with its fields; safe from any thread."""
        record = {"v": RECORD_VERSION, "op": op, **fields}
        data = (RECORD_PREFIX + json.dumps(record, default=str) + "\n").encode()
        with self._lock:
            # One write call per line, so that lines of other writers never split a record.
            while data:
                data = data[os.write(self._fd, data) :]


class FlushAcks:
    """The launcher's answers to a rank's flush records, read from the rank's stdin.

    A rank process of a local data-parallel run (`tuneboard.engine.distributed`) gets a pipe
    from its launcher as stdin: ``ack N`` lines say that the launcher stored everything up to
    flush record N; the end of the pipe says the launcher is gone, and the rank ends at once
    (writing nothing more, so the run resumes from what its database holds).
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._sent = 0
        self._acked = 0

    def watch(self, stream: Any) -> None:
        """Read acks from `stream` in a daemon thread; end the process when it closes."""

        def read() -> None:
            for line in stream:
                word, _, number = line.partition(" ")
                if word == "ack" and number.strip().isdigit():
                    with self._lock:
                        self._acked = max(self._acked, int(number))
                        self._lock.notify_all()
            os._exit(1)  # the launcher died: stop now, as if killed with it

        threading.Thread(target=read, name="tuneboard-launcher-watch", daemon=True).start()

    def next(self) -> int:
        """The number of the next flush record."""
        with self._lock:
            self._sent += 1
            return self._sent

    def wait(self, number: int, timeout: float | None) -> bool:
        """Wait until flush record `number` is acknowledged; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._acked >= number, timeout)


class RemoteRecorder(RunRecorder):
    """The recorder of a run executing remotely: every write becomes a record on stdout.

    A remote run has no database, so there is nothing to read. `final_status` is the last
    finished status the run recorded. With `acks` (a local rank process), `flush` waits
    until the launcher has stored every record written before it.
    """

    def __init__(self, records: RecordWriter, acks: FlushAcks | None = None) -> None:
        self._records = records
        self._acks = acks
        self.final_status: str | None = None

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        device: str | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        """Record a status change."""
        if status in FINISHED_STATUSES:
            self.final_status = status
        self._records.write(
            "store.set_run_status", status=status, device=device, error=error, at=_now(at)
        )

    def set_headline_value(self, run_id: str, value: float) -> None:
        """Record the headline metric's value."""
        self._records.write("store.set_headline_value", value=float(value))

    def stage_started(
        self,
        run_id: str,
        stage_index: int,
        *,
        name: str,
        plugin: str,
        params: Mapping[str, Any],
        at: float | None = None,
    ) -> None:
        """Record that a stage started."""
        self._records.write(
            "store.stage_started",
            stage_index=stage_index,
            name=name,
            plugin=plugin,
            params=dict(params),
            at=_now(at),
        )

    def set_progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None
    ) -> None:
        """Record a stage's progress."""
        self._records.write(
            "store.set_progress", stage_index=stage_index, completed=completed, total=total
        )

    def stage_finished(
        self,
        run_id: str,
        stage_index: int,
        status: str,
        *,
        best_metric: str | None = None,
        best_step: int | None = None,
        best_value: float | None = None,
        at: float | None = None,
    ) -> None:
        """Record that a stage ended."""
        self._records.write(
            "store.stage_finished",
            stage_index=stage_index,
            status=status,
            best_metric=best_metric,
            best_step=best_step,
            best_value=best_value,
            at=_now(at),
        )

    def log_metrics(
        self,
        run_id: str,
        stage_index: int,
        step: int,
        values: Mapping[str, float],
        wall_time: float | None = None,
    ) -> None:
        """Record metric values at a step."""
        self._records.write(
            "store.log_metrics",
            stage_index=stage_index,
            step=step,
            values={name: float(value) for name, value in values.items()},
            wall_time=_now(wall_time),
        )

    def log_event(
        self,
        run_id: str,
        message: str,
        *,
        level: str = "info",
        stage_index: int | None = None,
        at: float | None = None,
    ) -> None:
        """Record an event."""
        self._records.write(
            "store.log_event", message=message, level=level, stage_index=stage_index, at=_now(at)
        )

    def log_generations(
        self,
        run_id: str,
        stage_index: int,
        generations: Sequence[Generation],
        *,
        at: float | None = None,
    ) -> None:
        """Record a stage's generations, all in one record."""
        if not generations:
            return
        self._records.write(
            "store.log_generations",
            stage_index=stage_index,
            generations=[
                {
                    "split": g.split,
                    "index": g.index,
                    "prompt": g.prompt,
                    "output": g.output,
                    "reference": g.reference,
                    "step": g.step,
                }
                for g in generations
            ],
            at=_now(at),
        )

    def add_artifact(
        self, run_id: str, stage_index: int, kind: str, path: Path, *, at: float | None = None
    ) -> None:
        """Measure an artifact here and record where it lies on this machine."""
        path = Path(path).resolve()
        size, digest = hash_path(path)
        self._records.write(
            "store.add_artifact",
            stage_index=stage_index,
            kind=kind,
            path=str(path),
            bytes=size,
            sha256=digest,
            host=socket.gethostname(),
            at=_now(at),
        )

    def record_artifact(
        self,
        run_id: str,
        stage_index: int,
        kind: str,
        path: str,
        size: int,
        sha256: str,
        *,
        at: float | None = None,
    ) -> None:
        """Record an artifact measured elsewhere (a remote run measures its own: unused)."""
        self._records.write(
            "store.add_artifact",
            stage_index=stage_index,
            kind=kind,
            path=path,
            bytes=int(size),
            sha256=sha256,
            host=None,
            at=_now(at),
        )

    def resumed(self, plan: ResumePlan) -> None:
        """Record that the run goes on from `plan` (the launcher drops the metric points
        logged after that point and completes the stage rows handed on)."""
        self._records.write(
            "run.resumed",
            row=plan.row,
            step=plan.step,
            completed=[dataclasses.asdict(handoff) for handoff in plan.completed],
        )
        self.log_event(plan.run_id, f"the remote process goes on from {plan.describe()}")

    def flush(self, timeout: float | None = None) -> None:
        """Records are written at once; with acks, wait until the launcher stored them."""
        if self._acks is not None:
            number = self._acks.next()
            self._records.write("flush", number=number)
            self._acks.wait(number, timeout)


class SilentRecorder(RemoteRecorder):
    """The recorder of a rank other than 0: it records nothing, but says on stderr why its
    run failed (the launcher keeps a rank's last error line for the run's error)."""

    def __init__(self) -> None:
        super().__init__(RecordWriter(os.open(os.devnull, os.O_WRONLY)))

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        device: str | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        """Keep the final status; print a failure's reason."""
        if status in FINISHED_STATUSES:
            self.final_status = status
        if status == FAILED and error:
            print(f"error: {error}", file=sys.stderr, flush=True)


class LeftToLauncher(RunLifecycle):
    """The lifecycle hooks of a remote run: the launching process calls them as it replays the
    records (`Replayer`), so the remote process calls none."""

    def queued(self) -> None:
        """Not called remotely."""

    def started(self, device: str) -> None:
        """Not called remotely."""

    def stage_finished(self, stage_index: int, summary: StageSummary) -> None:
        """Not called remotely."""

    def finished(self, status: str, error: str | None, metrics: Mapping[str, float]) -> None:
        """Not called remotely."""


class RecordingObserver(RunObserver):
    """The observer of a run executing remotely: every notification becomes a record."""

    def __init__(self, records: RecordWriter) -> None:
        self._records = records

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Record the notification."""
        self._records.write("observer.run_status", status=status, error=error)

    def stage_started(self, run_id: str, stage_index: int, name: str, plugin: str) -> None:
        """Record the notification."""
        self._records.write(
            "observer.stage_started", stage_index=stage_index, name=name, plugin=plugin
        )

    def progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None, description: str
    ) -> None:
        """Record the notification."""
        self._records.write(
            "observer.progress",
            stage_index=stage_index,
            completed=completed,
            total=total,
            description=description,
        )

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Record the notification."""
        self._records.write(
            "observer.metrics", stage_index=stage_index, step=step, values=dict(values)
        )

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """Record the notification."""
        self._records.write(
            "observer.stage_finished",
            stage_index=stage_index,
            summary={
                "name": summary.name,
                "plugin": summary.plugin,
                "status": summary.status,
                "steps": summary.steps,
                "seconds": summary.seconds,
                "best_metric": summary.best_metric,
                "best_step": summary.best_step,
                "best_value": summary.best_value,
            },
        )


class RecordReplayer:
    """Applies one remote run's records to this process's store, observer and lifecycle hooks.

    The engine's `tuneboard.Replayer`, made by `EngineJob.replayer`.

    Feed it the job's log as it comes (`feed`, in chunks of any size; `end` at the end of the
    log). `device_prefix` marks the run's device (``ray`` makes ``ray:cpu``); artifacts
    written on another host are recorded as ``HOST:PATH``. `lines` counts the log's complete
    lines so far, `tail` keeps its last lines that are not records, `final_status` is set
    once the run recorded its end, and `last_values` holds each metric's latest value (system
    metrics left out).
    """

    def __init__(
        self,
        job: EngineJob,
        *,
        device_prefix: str,
        tail_lines: int = 40,
        device: str | None = None,
        on_flush: Callable[[int], None] | None = None,
    ) -> None:
        self.job = job
        self.device_prefix = device_prefix
        self.device = device  # the run's device as recorded, in place of PREFIX:DEVICE
        self.on_flush = on_flush
        self.lines = 0
        self.records = 0
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.final_status: str | None = None
        self.last_values: dict[str, float] = {}
        self._partial = ""
        self._local_host = socket.gethostname()
        store = job.store
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "store.set_run_status": self._set_run_status,
            "store.set_headline_value": lambda r: store.set_headline_value(
                self.job.run_id, float(r["value"])
            ),
            "store.stage_started": lambda r: store.stage_started(
                self.job.run_id,
                int(r["stage_index"]),
                name=str(r["name"]),
                plugin=str(r["plugin"]),
                params=dict(r["params"]),
                at=float(r["at"]),
            ),
            "store.set_progress": lambda r: store.set_progress(
                self.job.run_id, int(r["stage_index"]), int(r["completed"]), _int(r["total"])
            ),
            "store.stage_finished": lambda r: store.stage_finished(
                self.job.run_id,
                int(r["stage_index"]),
                str(r["status"]),
                best_metric=_str(r["best_metric"]),
                best_step=_int(r["best_step"]),
                best_value=_float(r["best_value"]),
                at=float(r["at"]),
            ),
            "store.log_metrics": self._log_metrics,
            "store.log_event": lambda r: store.log_event(
                self.job.run_id,
                str(r["message"]),
                level=str(r["level"]),
                stage_index=_int(r["stage_index"]),
                at=float(r["at"]),
            ),
            "store.add_artifact": self._add_artifact,
            "store.log_generations": lambda r: store.log_generations(
                self.job.run_id,
                int(r["stage_index"]),
                _generations(r["generations"]),
                at=float(r["at"]),
            ),
            "observer.run_status": lambda r: job.observer.run_status(
                self.job.run_id, str(r["status"]), _str(r["error"])
            ),
            "observer.stage_started": lambda r: job.observer.stage_started(
                self.job.run_id, int(r["stage_index"]), str(r["name"]), str(r["plugin"])
            ),
            "observer.progress": lambda r: job.observer.progress(
                self.job.run_id,
                int(r["stage_index"]),
                int(r["completed"]),
                _int(r["total"]),
                str(r["description"]),
            ),
            "observer.metrics": lambda r: job.observer.metrics(
                self.job.run_id, int(r["stage_index"]), int(r["step"]), _values(r["values"])
            ),
            "observer.stage_finished": self._stage_finished,
            "flush": self._flush,
            "run.resumed": self._resumed,
        }

    # --- input ----------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Take the next piece of the log; every complete line in it is handled."""
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._line(line)

    def end(self) -> None:
        """The log ended: handle its last line, if it had no newline."""
        if self._partial:
            line, self._partial = self._partial, ""
            self._line(line)

    def error_tail(self, lines: int = 12) -> str:
        """The last lines of the log that were not records, joined into one line."""
        kept = [line.strip() for line in self.tail if line.strip()][-lines:]
        return " | ".join(kept)

    def finish(self, status: str, error: str | None) -> None:
        """End the run with `status` unless it recorded its own end already."""
        if self.final_status is not None:
            return
        if status != COMPLETED:
            self.job.store.log_event(
                self.job.run_id, error or status, level="error" if status == FAILED else "warning"
            )
        self._end_run(status, error, at=time.time())
        self.job.observer.run_status(self.job.run_id, status, error)

    # --- records --------------------------------------------------------------------------

    def _line(self, line: str) -> None:
        self.lines += 1
        start = line.find(RECORD_PREFIX)
        if start < 0:
            self.tail.append(line)
            return
        try:
            record = json.loads(line[start + len(RECORD_PREFIX) :])
            handler = self._handlers[record["op"]]
        except (ValueError, KeyError, TypeError):
            log.warning("run %s: ignoring a malformed record: %.200s", self.job.run_id, line)
            return
        self.records += 1
        try:
            handler(record)
        except Exception:  # one bad record must not stop the others
            log.exception("run %s: could not apply record %.200s", self.job.run_id, line)

    def _set_run_status(self, record: dict[str, Any]) -> None:
        status, error, at = str(record["status"]), _str(record["error"]), float(record["at"])
        if status in FINISHED_STATUSES:
            self._end_run(status, error, at=at)
            return
        device = _str(record["device"])
        label = f"{self.device_prefix}:{device}" if device else None
        if device and self.device:
            label = self.device
        self.job.store.set_run_status(self.job.run_id, status, device=label, error=error, at=at)
        if status == RUNNING:
            self.job.lifecycle.started(label or self.device_prefix)

    def _end_run(self, status: str, error: str | None, *, at: float) -> None:
        self.final_status = status
        self.job.store.set_run_status(self.job.run_id, status, error=error, at=at)
        self.job.lifecycle.finished(status, error, dict(self.last_values))

    def _flush(self, record: dict[str, Any]) -> None:
        """Store what came before, then tell the remote process (a local rank) so."""
        if self.on_flush is not None:
            self.job.store.flush()
            self.on_flush(int(record["number"]))

    def _log_metrics(self, record: dict[str, Any]) -> None:
        values = _values(record["values"])
        # As in a local run, the run-finished hooks get the training metrics, not `sys/` ones.
        self.last_values.update((k, v) for k, v in values.items() if not is_system_metric(k))
        self.job.store.log_metrics(
            self.job.run_id,
            int(record["stage_index"]),
            int(record["step"]),
            values,
            float(record["wall_time"]),
        )

    def _add_artifact(self, record: dict[str, Any]) -> None:
        path, host = str(record["path"]), _str(record.get("host"))
        if host and host != self._local_host:
            path = f"{host}:{path}"
        self.job.store.record_artifact(
            self.job.run_id,
            int(record["stage_index"]),
            str(record["kind"]),
            path,
            int(record["bytes"]),
            str(record["sha256"]),
            at=float(record["at"]),
        )

    def _resumed(self, record: dict[str, Any]) -> None:
        from tuneboard.engine.resume import Handoff, record_resume_point

        completed = [Handoff(**dict(fields)) for fields in record["completed"]]
        store = self.job.store
        if isinstance(store, Store):  # the launcher's database (always, but for tests)
            # A statement runs ahead of the points queued in its batch: those go in first.
            store.flush()
            row, step = int(record["row"]), _int(record["step"])
            record_resume_point(store, self.job.run_id, row, step, completed)

    def _stage_finished(self, record: dict[str, Any]) -> None:
        fields = dict(record["summary"])
        summary = StageSummary(
            name=str(fields["name"]),
            plugin=str(fields["plugin"]),
            status=str(fields["status"]),
            steps=int(fields["steps"]),
            seconds=float(fields["seconds"]),
            best_metric=_str(fields.get("best_metric")),
            best_step=_int(fields.get("best_step")),
            best_value=_float(fields.get("best_value")),
        )
        index = int(record["stage_index"])
        self.job.observer.stage_finished(self.job.run_id, index, summary)
        self.job.lifecycle.stage_finished(index, summary)


def _now(at: float | None) -> float:
    return time.time() if at is None else float(at)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _generations(value: Any) -> list[Generation]:
    if not isinstance(value, list):
        raise TypeError(f"generations must be a list, got {type(value).__name__}")
    return [
        Generation(
            split=str(row["split"]),
            index=int(row["index"]),
            prompt=str(row["prompt"]),
            output=str(row["output"]),
            reference=_str(row.get("reference")),
            step=_int(row.get("step")),
        )
        for row in value
    ]


def _values(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError(f"metric values must be an object, got {type(value).__name__}")
    return {str(name): float(number) for name, number in value.items()}


__all__ = [
    "RECORD_PREFIX",
    "LeftToLauncher",
    "RecordReplayer",
    "RecordWriter",
    "RecordingObserver",
    "RemoteRecorder",
    "SilentRecorder",
]
