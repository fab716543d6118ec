"""The `Store`: the one door to a project's database for the runner, the CLI and the app.

Writes only queue an operation for the process's writer thread (see `writer.py`); reads run
synchronously through a short-lived cursor. Several processes can share one file: each holds
it only while it reads or writes a batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import psutil

from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.recording import RunRecorder
from tuneboard.sdk.scheduler import QueueRules
from tuneboard.store import queue as q
from tuneboard.store.database import (
    DEFAULT_LOCK_TIMEOUT,
    Database,
    UnusableDatabase,
    first_line,
    is_damage,
    is_lock_error,
)
from tuneboard.store.migrations import STAGE_SPANS
from tuneboard.store.schema import (
    FINISHED_STATUSES,
    STATUSES,
    SYSTEM_PREFIX,
    X_AXES,
    ArtifactRow,
    EventRow,
    GenerationRow,
    LogRow,
    RunLink,
    RunRow,
    RunStatus,
    Series,
    StageLink,
    StageRow,
    StageSpan,
    StageValues,
    SweepRun,
    XAxis,
)
from tuneboard.store.writer import (
    ARTIFACT,
    DELETE_RUN,
    EVENT,
    FLUSH_INTERVAL,
    GENERATIONS,
    LOG,
    METRICS,
    PROGRESS,
    STATEMENT,
    Op,
    Writer,
)

if TYPE_CHECKING:
    from tuneboard.sdk.tasks import Generation

INTERRUPTED_ERROR = "the process running it ended unexpectedly"

# Seconds for which the writer's last read of cancel requests answers `cancel_requests`.
_CANCEL_FRESH = 1.0

_RUN_SELECT = """
SELECT r.run_id, r.experiment, r.status, r.config, epoch(r.created_at), epoch(r.started_at),
       epoch(r.finished_at), r.device, r.error, r.headline, r.headline_value, r.sweep_id,
       r.owner_host, r.owner_pid, r.owner_started, s.name, s.steps, s.total_steps
FROM runs r LEFT JOIN (
    SELECT run_id, name, steps, total_steps FROM stages WHERE status = 'running'
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY stage_index DESC) = 1
) s ON s.run_id = r.run_id
"""

# A run's columns and, last, its sweep record (the `sweep` part of its provenance).
_SWEEP_RUN_SELECT = _RUN_SELECT.replace(
    "s.total_steps\nFROM", "s.total_steps, json_extract(r.provenance, '$.sweep')\nFROM", 1
)

_SPAN_SELECT = f"""
WITH stage_spans AS ({STAGE_SPANS})
SELECT stage_index, name, plugin, status, first_step, last_step, first_epoch, last_epoch,
       epochs_per_step, best_metric, best_run_step, best_value
FROM stage_spans WHERE run_id = ? ORDER BY stage_index
"""

_STAGE_SELECT = """
SELECT run_id, stage_index, name, plugin, params, status, epoch(started_at), epoch(finished_at),
       steps, total_steps, best_metric, best_step, best_value
FROM stages
"""

# Min/max-preserving downsampling: the x range is cut into $buckets buckets, and each bucket
# keeps its lowest and its highest point of each stage, so spikes and every stage's extremes
# survive however many points there are.
_SERIES_SQL = """
WITH pts AS MATERIALIZED (
    SELECT stage_index, {x} AS x, value AS y FROM metrics
    WHERE run_id = $run_id AND name = $name {stage_filter}
),
span AS (SELECT min(x) AS lo, max(x) AS hi, count(*) AS n FROM pts),
bucketed AS (
    SELECT coalesce(least(floor((x - lo) / nullif(hi - lo, 0) * $buckets), $buckets - 1), 0)
               AS bucket, stage_index, x, y
    FROM pts, span WHERE n > $max_points
),
extremes AS (
    SELECT arg_min(x, y) AS x1, min(y) AS y1, arg_max(x, y) AS x2, max(y) AS y2
    FROM bucketed GROUP BY stage_index, bucket
)
SELECT x, y FROM pts, span WHERE n <= $max_points
UNION ALL SELECT x1, y1 FROM extremes
UNION ALL SELECT x2, y2 FROM extremes WHERE x2 <> x1 OR y2 <> y1
ORDER BY x
"""


class Store(RunRecorder):
    """A project's database: runs, stages, metric points, events, artifacts, generations.

    It is the `RunRecorder` of runs in this process, and what the CLI and the app read.

    Write methods queue the change and return at once (the writer thread commits it within
    `flush_interval` seconds); `flush()` waits for it. Timestamps are float epoch seconds and
    default to now. Read methods query the file directly. A store that is not read-only
    applies migrations when opened; every store, read-only too, marks runs whose process
    died as interrupted when opened.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        flush_interval: float = FLUSH_INTERVAL,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._db = Database.for_path(path)
        self._lock_timeout = lock_timeout
        self._read_only = read_only
        self._writer: Writer | None = None
        if read_only:
            if not self._db.path.exists():
                raise TuneboardError(f"there is no tuneboard database at {self._db.path}")
            self._put: Callable[[Op], None] = self._refuse_read_only
            self.mark_interrupted_if_any()
        else:
            self.mark_interrupted()
            self._writer = Writer.acquire(
                self._db, flush_interval=flush_interval, lock_timeout=lock_timeout
            )
            self._put = self._writer.put

    @property
    def path(self) -> Path:
        """The resolved path of the database file."""
        return self._db.path

    @property
    def read_only(self) -> bool:
        """True when the store was opened for reading only."""
        return self._read_only

    @property
    def database(self) -> Database:
        """The process's connection manager for this file (for user SQL and tests)."""
        return self._db

    @property
    def failure(self) -> UnusableDatabase | None:
        """Why this process stopped writing to the file, once a write failed in a way that
        waiting cannot heal (a damaged file, permission denied, a full disk); else None.
        Writes queued after that are dropped: whoever runs must stop and report it."""
        return None if self._writer is None else self._writer.failure

    @property
    def writer(self) -> Writer | None:
        """The writer thread this store queues to (None when read-only or closed)."""
        return self._writer

    @property
    def lock_timeout(self) -> float:
        """Seconds to wait for another process to let go of the file."""
        return self._lock_timeout

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        experiment: str,
        config: Mapping[str, Any],
        *,
        headline: str | None = None,
        sweep_id: str | None = None,
        status: str = "queued",
        at: float | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a new run, owned by this process (its host, pid and start time).

        `provenance` is its reproducibility record (see `tuneboard.engine.provenance`).
        """
        _check_status(status)
        host, pid, started = _owner()
        self._statement(
            "INSERT INTO runs (run_id, experiment, status, config, created_at, headline,"
            " sweep_id, owner_host, owner_pid, owner_started, provenance)"
            " VALUES (?, ?, ?, ?, to_timestamp(?), ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                experiment,
                status,
                _to_json(config),
                _now(at),
                headline,
                sweep_id,
                host,
                pid,
                started,
                None if provenance is None else _to_json(provenance),
            ],
        )

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        device: str | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        """Change a run's status.

        `running` sets `started_at` (and clears `finished_at` and `error`, for a resumed run);
        a finished status sets `finished_at`. `device` and `error` are kept when None.
        """
        _check_status(status)
        sets = ["status = ?", "device = coalesce(?, device)"]
        params: list[Any] = [status, device]
        if status == RunStatus.RUNNING:
            sets += ["started_at = to_timestamp(?)", "finished_at = NULL", "error = ?"]
            params += [_now(at), error]
        else:
            sets.append("error = coalesce(?, error)")
            params.append(error)
            if status in FINISHED_STATUSES:
                sets.append("finished_at = to_timestamp(?)")
                params.append(_now(at))
        self._statement(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*params, run_id])
        if status != RunStatus.QUEUED:  # its order, hold and pin applied to this wait only
            self._statement(q.LEAVE_QUEUE, [run_id])

    def set_headline_value(self, run_id: str, value: float) -> None:
        """Set the value shown next to the run's headline metric in run lists."""
        self._statement(
            "UPDATE runs SET headline_value = ? WHERE run_id = ?", [float(value), run_id]
        )

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
        """Record that a stage started running (replacing the row of an earlier attempt)."""
        self._statement(
            "INSERT OR REPLACE INTO stages (run_id, stage_index, name, plugin, params, status,"
            " started_at, steps) VALUES (?, ?, ?, ?, ?, 'running', to_timestamp(?), 0)",
            [run_id, stage_index, name, plugin, _to_json(params), _now(at)],
        )

    def set_progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None
    ) -> None:
        """Record a stage's progress units (only the latest per batch gets written)."""
        self._put((PROGRESS, run_id, stage_index, completed, total))

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
        """Record that a stage ended with `status`, and its best checkpoint if it kept one."""
        _check_status(status)
        self._statement(
            "UPDATE stages SET status = ?, finished_at = to_timestamp(?),"
            " best_metric = coalesce(?, best_metric), best_step = coalesce(?, best_step),"
            " best_value = coalesce(?, best_value) WHERE run_id = ? AND stage_index = ?",
            [status, _now(at), best_metric, best_step, best_value, run_id, stage_index],
        )

    def log_metrics(
        self,
        run_id: str,
        stage_index: int,
        step: int,
        values: Mapping[str, float],
        wall_time: float | None = None,
    ) -> None:
        """Record metric values at a step (cheap: a copy of `values` goes on a queue)."""
        self._put(
            (
                METRICS,
                run_id,
                stage_index,
                step,
                dict(values),
                time.time() if wall_time is None else wall_time,
            )
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
        """Record an event of a run (or of one of its stages)."""
        self._put((EVENT, run_id, stage_index, _now(at), level, message))

    def log_output(
        self,
        run_id: str,
        stage_index: int | None,
        line: int,
        stream: str,
        level: str,
        source: str,
        message: str,
        *,
        at: float | None = None,
    ) -> None:
        """Record one line of a run's output (a row of `logs`; see `tuneboard.engine.capture`)."""
        self._put((LOG, run_id, stage_index, line, _now(at), stream, level, source, message))

    def log_generations(
        self,
        run_id: str,
        stage_index: int,
        generations: Sequence[Generation],
        *,
        at: float | None = None,
    ) -> None:
        """Record outputs a stage's model generated (one columnar insert per writer batch)."""
        rows = tuple(
            (g.split, g.index, g.prompt, g.output, g.reference, g.step) for g in generations
        )
        if rows:
            self._put((GENERATIONS, run_id, stage_index, rows, _now(at)))

    def add_artifact(
        self, run_id: str, stage_index: int, kind: str, path: Path, *, at: float | None = None
    ) -> None:
        """Record a file or folder a stage produced, with its size and SHA-256.

        The hashing happens in the caller's thread. A folder's size is the total of its
        files; its hash runs over each file's relative path, size and content, in the order
        of the relative paths.
        """
        path = Path(path).resolve()
        size, digest = hash_path(path)
        self._put((ARTIFACT, run_id, stage_index, kind, str(path), size, digest, _now(at)))

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
        """Record an artifact measured elsewhere: a remote run's, which stays where the
        remote machine wrote it (`path` is its location there; nothing is read here)."""
        self._put((ARTIFACT, run_id, stage_index, kind, path, int(size), sha256, _now(at)))

    def record_parent(self, link: RunLink, *, at: float | None = None) -> None:
        """Record that run `link.run_id` started from a model another run made (lineage)."""
        self._statement(
            "INSERT INTO run_parents (run_id, parent_run_id, parent_stage_index, kind,"
            " artifact_path, artifact_sha256, source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, to_timestamp(?))",
            [
                link.run_id,
                link.parent_run_id,
                link.parent_stage_index,
                link.kind,
                link.artifact_path,
                link.artifact_sha256,
                link.source,
                _now(at),
            ],
        )

    def request_cancel(self, run_id: str) -> None:
        """Ask whichever process runs `run_id` to cancel it (it polls `cancel_requests`)."""
        self._statement(
            "UPDATE runs SET cancel_requested = true WHERE run_id = ? AND status IN (?, ?)",
            [run_id, RunStatus.QUEUED.value, RunStatus.RUNNING.value],
        )

    # --- the queue (see `tuneboard.store.queue`) ------------------------------------------

    def set_queue_order(self, run_ids: Sequence[str]) -> None:
        """Place these queued runs first, in this order (the others follow, by age)."""
        if run_ids:
            self._statement(q.SET_ORDER, {"ids": list(run_ids)})

    def set_held(self, run_id: str, held: bool) -> None:
        """Hold a queued run back (it stays queued), or release it."""
        self._statement(q.SET_HELD, [run_id, held])

    def set_pin(self, run_id: str, device: str | None) -> None:
        """Let a queued run start only on `device` (None: on any)."""
        self._statement(q.SET_PIN, [run_id, device])

    def set_queue_paused(self, paused: bool, *, at: float | None = None) -> None:
        """Pause the whole queue (no queued run starts, in any process) or resume it."""
        self._statement(q.SET_PAUSED, [paused, _now(at)])

    def set_queue_waiting(self, reasons: Mapping[str, str]) -> None:
        """Record why these queued runs of this process wait (shown by the CLI and the app)."""
        if reasons:
            self._statement(
                q.SET_WAITING,
                {"ids": list(reasons), "reasons": list(reasons.values())},
            )

    def queue(self) -> q.QueueState:
        """The queue as it is now: paused or not, its runs in the order they start."""
        with self._db.cursor(lock_timeout=self._lock_timeout) as cur, self._reading():
            return q.read_queue(cur)

    def controls(
        self, run_ids: Sequence[str], *, rules: bool = True
    ) -> tuple[list[str], QueueRules | None]:
        """Which of `run_ids` another process asked to cancel, and (with `rules`, for a
        process with queued runs) the queue's rules, else None.

        For a process's poll: the writer's read after its last batch when fresh (see
        `cancel_requests`; asking for the rules makes the next batches read them too), else
        one read of the file for both.
        """
        writer = self._writer
        if writer is not None:
            now = time.monotonic()
            if rules:
                writer.rules_wanted_at = now
            fresh = now - writer.cancel_read_at < _CANCEL_FRESH
            if fresh and (not rules or now - writer.rules_read_at < _CANCEL_FRESH):
                requested = [r for r in run_ids if r in writer.cancel_requested]
                return requested, writer.queue_rules if rules else None
        with self._db.cursor(lock_timeout=self._lock_timeout) as cur, self._reading():
            requested = []
            if run_ids:
                rows = cur.execute(
                    "SELECT run_id FROM runs WHERE cancel_requested AND list_contains(?, run_id)",
                    [list(run_ids)],
                ).fetchall()
                requested = [run_id for (run_id,) in rows]
            return requested, q.read_rules(cur) if rules else None

    def claim_run(self, run_id: str, *, from_statuses: Sequence[str]) -> None:
        """Make this process the owner of `run_id` and queue it again, if its status is still
        one of `from_statuses` (for resuming it; after a `flush()`, `get_run` tells whether
        this process won the run: a compare-and-set, since writes are serialised)."""
        host, pid, started = _owner()
        self._statement(
            "UPDATE runs SET status = 'queued', owner_host = ?, owner_pid = ?,"
            " owner_started = ?, cancel_requested = false, finished_at = NULL"
            " WHERE run_id = ? AND list_contains(?, status)",
            [host, pid, started, run_id, [str(s) for s in from_statuses]],
        )

    def delete_metrics_after(self, run_id: str, stage_index: int, step: int | None) -> None:
        """Delete the run's metric points and generations of the stages after `stage_index`
        and those of that stage after `step` (all of its rows when None), for a resume."""
        after = "" if step is None else f" AND step > {int(step)}"
        for table in ("metrics", "generations"):
            self._statement(
                f"DELETE FROM {table} WHERE run_id = ?"
                f" AND (stage_index > ? OR (stage_index = ?{after}))",
                [run_id, stage_index, stage_index],
            )

    def delete_run(self, run_id: str) -> None:
        """Remove the run's rows from every table."""
        self._put((DELETE_RUN, run_id))

    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued before this call is committed."""
        if self._writer is not None:
            self._writer.flush(timeout)

    def close(self) -> None:
        """Commit every queued write and let go of the writer. Safe to call twice."""
        writer, self._writer = self._writer, None
        self._put = self._refuse_closed
        if writer is not None:
            try:
                with contextlib.suppress(UnusableDatabase):  # already in `failure`
                    writer.flush()
            finally:
                writer.release()

    def _statement(self, sql: str, params: list[Any] | dict[str, Any]) -> None:
        self._put((STATEMENT, sql, params))

    def _refuse_read_only(self, op: Op) -> None:
        raise TuneboardError(f"{self.path} was opened read-only")

    def _refuse_closed(self, op: Op) -> None:
        raise TuneboardError(f"the store of {self.path} is closed")

    # --- reads ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the file open for the block, so several reads pay for one open (~20-40 ms).

        Other processes cannot open the file meanwhile: keep the block short.
        """
        with self._db.cursor(lock_timeout=self._lock_timeout), self._reading():
            yield

    def _fetch(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._db.cursor(lock_timeout=self._lock_timeout) as cur, self._reading():
            return cur.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn DuckDB's errors on reading the file (a damaged block, an I/O error) into one
        line naming it."""
        try:
            yield
        except duckdb.Error as error:
            if is_lock_error(error) or not is_damage(error):
                raise
            raise UnusableDatabase(f"cannot read {self.path}: {first_line(error)}") from None

    def list_runs(
        self,
        *,
        limit: int | None = None,
        experiment: str | None = None,
        status: str | None = None,
    ) -> list[RunRow]:
        """Runs, newest first, optionally only of one experiment or status."""
        where, params = [], []
        if experiment is not None:
            where.append("r.experiment = ?")
            params.append(experiment)
        if status is not None:
            where.append("r.status = ?")
            params.append(status)
        sql = _RUN_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at DESC, r.run_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_run_row(row) for row in self._fetch(sql, params)]

    def get_run(self, run_id_or_prefix: str) -> RunRow:
        """The run with this id, or the only run whose id starts with it, else the only run
        whose id ends with it (the app's short ids, `a3f9`, are the ends of run ids)."""
        key = run_id_or_prefix
        rows = self._fetch(
            _RUN_SELECT + " WHERE starts_with(r.run_id, ?) ORDER BY r.run_id LIMIT 11", [key]
        )
        exact = [row for row in rows if row[0] == key]
        if exact:
            return _run_row(exact[0])
        if not rows and key:
            rows = self._fetch(
                _RUN_SELECT + " WHERE ends_with(r.run_id, ?) ORDER BY r.run_id LIMIT 11", [key]
            )
        if not rows:
            raise TuneboardError(f"no run matches {key!r}")
        if len(rows) > 1:
            ids = ", ".join(row[0] for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise TuneboardError(f"{key!r} matches several runs: {ids}")
        return _run_row(rows[0])

    def provenance(self, run_id: str) -> dict[str, Any] | None:
        """The run's reproducibility record, or None for a run recorded without one."""
        rows = self._fetch("SELECT provenance FROM runs WHERE run_id = ?", [run_id])
        return _from_json(rows[0][0]) if rows and rows[0][0] is not None else None

    def sweep_runs(self, sweep_id: str) -> list[SweepRun]:
        """The runs of a sweep in launch order, each with its sweep record (see `SweepRun`)."""
        rows = self._fetch(
            _SWEEP_RUN_SELECT + " WHERE r.sweep_id = ? ORDER BY r.created_at, r.run_id",
            [sweep_id],
        )
        return [SweepRun(_run_row(row), _from_json(row[18])) for row in rows]

    def sweep_records(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The sweep record of each of `run_ids` that has one (see `SweepRun`)."""
        if not run_ids:
            return {}
        rows = self._fetch(
            "SELECT run_id, json_extract(provenance, '$.sweep') FROM runs"
            " WHERE list_contains(?, run_id) AND provenance IS NOT NULL",
            [list(run_ids)],
        )
        return {run_id: _from_json(record) for run_id, record in rows if record is not None}

    def find_sweep(self, text: str) -> str:
        """The id of the sweep whose id is `text`, or the only one that contains it."""
        rows = self._fetch(
            "SELECT DISTINCT sweep_id FROM runs WHERE contains(sweep_id, ?) ORDER BY sweep_id",
            [text],
        )
        ids = [sweep_id for (sweep_id,) in rows]
        if text in ids:
            return text
        if not ids:
            raise TuneboardError(f"no sweep matches {text!r}")
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise TuneboardError(f"{text!r} matches several sweeps: {shown}")
        return str(ids[0])

    def metric_bounds(
        self, metric_of: Mapping[str, str]
    ) -> dict[str, tuple[float | None, float | None]]:
        """The lowest and highest finite value of one metric per run (run id -> metric name
        in `metric_of`), in one read; runs that never logged theirs are left out."""
        if not metric_of:
            return {}
        rows = self._fetch(
            "SELECT m.run_id, min(m.value), max(m.value) FROM metrics m"
            " JOIN (SELECT unnest($runs) AS run_id, unnest($names) AS name) w"
            " ON m.run_id = w.run_id AND m.name = w.name"
            " WHERE isfinite(m.value) GROUP BY m.run_id",
            {"runs": list(metric_of), "names": list(metric_of.values())},
        )
        return {run_id: (low, high) for run_id, low, high in rows}

    def stages(self, run_id: str) -> list[StageRow]:
        """The run's stages in pipeline order."""
        rows = self._fetch(_STAGE_SELECT + " WHERE run_id = ? ORDER BY stage_index", [run_id])
        return [
            StageRow(
                run_id=row[0],
                stage_index=row[1],
                name=row[2],
                plugin=row[3],
                params=_from_json(row[4]),
                status=row[5],
                started_at=row[6],
                finished_at=row[7],
                steps=row[8],
                total_steps=row[9],
                best_metric=row[10],
                best_step=row[11],
                best_value=row[12],
            )
            for row in rows
        ]

    def events(self, run_id: str, *, limit: int | None = None) -> list[EventRow]:
        """The run's events, oldest first; with `limit`, only the latest `limit`."""
        sql = (
            "SELECT run_id, stage_index, epoch(time), level, message FROM events"
            " WHERE run_id = ? ORDER BY time DESC, rowid DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [EventRow(*row) for row in reversed(self._fetch(sql, [run_id]))]

    def logs(self, run_id: str, *, after: int = 0, last: int | None = None) -> list[LogRow]:
        """The run's log in order, without its first `after` rows; with `last`, only the
        latest `last` of those (a follower passes the number of rows it has seen). Empty
        for a file written before the table existed (unmigrated)."""
        sql = (
            "SELECT run_id, stage_index, line, epoch(time), stream, level, source, message"
            " FROM logs WHERE run_id = ? ORDER BY time, line"
        )
        params: list[Any] = [run_id]
        if after:
            sql += " OFFSET ?"
            params.append(int(after))
        if last is not None:
            sql = f"SELECT * FROM ({sql}) ORDER BY 4 DESC, 3 DESC LIMIT {int(last)}"
        try:
            rows = self._fetch(sql, params)
        except duckdb.CatalogException:
            return []
        return [LogRow(*row) for row in (reversed(rows) if last is not None else rows)]

    def log_count(self, run_id: str) -> int:
        """How many rows the run's log has."""
        try:
            rows = self._fetch("SELECT count(*) FROM logs WHERE run_id = ?", [run_id])
        except duckdb.CatalogException:
            return 0
        return int(rows[0][0])

    def artifacts(self, run_id: str) -> list[ArtifactRow]:
        """The run's artifacts in the order they were recorded."""
        rows = self._fetch(
            "SELECT run_id, stage_index, kind, path, bytes, sha256, epoch(created_at)"
            " FROM artifacts WHERE run_id = ? ORDER BY created_at, rowid",
            [run_id],
        )
        return [ArtifactRow(*row) for row in rows]

    def artifact_holding(self, path: str) -> ArtifactRow | None:
        """The artifact whose path is `path` or a folder holding it (the innermost one, and
        of those the latest recorded); None when no run recorded one there."""
        path = path.rstrip("/") or "/"
        rows = self._fetch(
            "SELECT run_id, stage_index, kind, path, bytes, sha256, epoch(created_at)"
            " FROM artifacts WHERE path = $path OR starts_with($path, rtrim(path, '/') || '/')"
            " ORDER BY length(path) DESC, created_at DESC, rowid DESC LIMIT 1",
            {"path": path},
        )
        return ArtifactRow(*rows[0]) if rows else None

    def run_links(self, around: str | None = None) -> list[RunLink]:
        """Runs' parents (`run_parents`, with the parent stage's name), oldest first: every
        run's, or with `around` only the links of that run to its parent and its children.

        Empty for a file written before lineage was recorded (opened read-only, unmigrated).
        """
        where, params = "", []
        if around is not None:
            where, params = " WHERE p.run_id = ? OR p.parent_run_id = ?", [around, around]
        try:
            rows = self._fetch(
                "SELECT p.run_id, p.parent_run_id, p.parent_stage_index, p.kind,"
                " p.artifact_path, p.artifact_sha256, p.source, s.name FROM run_parents p"
                " LEFT JOIN stages s ON s.run_id = p.parent_run_id"
                f" AND s.stage_index = p.parent_stage_index{where}"
                " ORDER BY p.created_at, p.run_id",
                params,
            )
        except duckdb.CatalogException:
            return []
        return [RunLink(*row) for row in rows]

    def stage_links(self, run_id: str) -> list[StageLink]:
        """How the run's stages handed the model on, in stage order (the `lineage` view's
        `stage` rows); empty for a file written before the view existed (unmigrated)."""
        try:
            rows = self._fetch(
                "SELECT parent_stage_index, parent_stage, child_stage_index, child_stage, kind,"
                " artifact_path, artifact_sha256 FROM lineage"
                " WHERE link = 'stage' AND parent_run_id = ? ORDER BY parent_stage_index",
                [run_id],
            )
        except duckdb.CatalogException:
            return []
        return [StageLink(*row) for row in rows]

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRow]:
        """The runs of these (full) ids that exist, by id."""
        if not run_ids:
            return {}
        rows = self._fetch(
            _RUN_SELECT + " WHERE list_contains(?, r.run_id)", [list(dict.fromkeys(run_ids))]
        )
        return {row[0]: _run_row(row) for row in rows}

    def generations(
        self, run_id: str, *, split: str | None = None, stage_index: int | None = None
    ) -> list[GenerationRow]:
        """The run's generations (optionally of one split or stage): by stage, then step
        (those outside training last), then split and row, then the order recorded."""
        sql = (
            "SELECT run_id, stage_index, step, split, idx, prompt, output, reference,"
            " epoch(created_at) FROM generations WHERE run_id = $run_id"
        )
        params: dict[str, Any] = {"run_id": run_id}
        if split is not None:
            sql += " AND split = $split"
            params["split"] = split
        if stage_index is not None:
            sql += " AND stage_index = $stage_index"
            params["stage_index"] = stage_index
        sql += " ORDER BY stage_index, step NULLS LAST, split, idx, created_at, rowid"
        return [GenerationRow(*row) for row in self._fetch(sql, params)]

    def metric_names(self, run_id: str) -> list[str]:
        """The names of the metrics the run logged, sorted."""
        rows = self._fetch(
            "SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", [run_id]
        )
        return [name for (name,) in rows]

    def last_metrics(self, run_id: str) -> dict[str, float]:
        """The last value of each metric (the highest step, then the latest time)."""
        # Two plain aggregates are several times faster than one arg_max over (step, time).
        rows = self._fetch(
            "WITH last AS (SELECT name, max(step) AS step FROM metrics WHERE run_id = $run_id"
            " GROUP BY name)"
            " SELECT name, arg_max(value, wall_time) FROM metrics JOIN last USING (name, step)"
            " WHERE run_id = $run_id GROUP BY name ORDER BY name",
            {"run_id": run_id},
        )
        return dict(rows)

    def best_metrics(
        self, run_id: str, higher_is_better: Callable[[str], bool]
    ) -> dict[str, float]:
        """The best value of each metric (NaN ignored), the direction given per name."""
        rows = self._fetch(
            "SELECT name, min(value) FILTER (WHERE NOT isnan(value)),"
            " max(value) FILTER (WHERE NOT isnan(value))"
            " FROM metrics WHERE run_id = ? GROUP BY name ORDER BY name",
            [run_id],
        )
        best = {}
        for name, low, high in rows:
            value = high if higher_is_better(name) else low
            if value is not None:
                best[name] = value
        return best

    def stage_values(
        self, run_id: str, higher_is_better: Callable[[str], bool]
    ) -> list[StageValues]:
        """Per stage (in pipeline order, stages that logged nothing left out), the last value
        of each metric (highest step, then latest time) and its best (NaN ignored).

        System metrics (`sys/...`) are left out: they tell how the machine fared while a stage
        ran, not what the stage achieved, so they never line stages up or fill a comparison.
        """
        rows = self._fetch(
            "SELECT m.stage_index, any_value(s.name), any_value(s.plugin), m.name,"
            " arg_max(m.value, (m.step, m.wall_time)),"
            " min(m.value) FILTER (WHERE NOT isnan(m.value)),"
            " max(m.value) FILTER (WHERE NOT isnan(m.value))"
            " FROM metrics m LEFT JOIN stages s USING (run_id, stage_index)"
            " WHERE m.run_id = ? AND NOT starts_with(m.name, ?)"
            " GROUP BY m.stage_index, m.name ORDER BY m.stage_index, m.name",
            [run_id, SYSTEM_PREFIX],
        )
        stages: dict[int, StageValues] = {}
        for index, stage, plugin, name, last, low, high in rows:
            values = stages.get(index)
            if values is None:
                values = stages[index] = StageValues(
                    index, stage or f"stage {index}", plugin or "", {}, {}
                )
            values.last[name] = last
            best = high if higher_is_better(name) else low
            if best is not None:
                values.best[name] = best
        return list(stages.values())

    def stage_spans(self, run_id: str) -> list[StageSpan]:
        """Where the run's stages lie on the run-wide step and epoch axes, in pipeline order."""
        return [StageSpan(*row) for row in self._fetch(_SPAN_SELECT, [run_id])]

    def series(
        self,
        run_id: str,
        name: str,
        *,
        max_points: int = 400,
        x: XAxis = "step",
        stage_index: int | None = None,
        spans: Sequence[StageSpan] | None = None,
    ) -> Series:
        """The points of one metric, ordered by x (see `XAxis`).

        `run_step` and `epoch` place each stage after the previous one (`stage_spans`);
        pass the run's `spans` when reading several series at once, to read them once.
        With more than `max_points` points, the x range is cut into `max_points // 2`
        buckets and each keeps its lowest and highest point per stage: about `max_points`
        points, and every stage's minimum and maximum always among them.
        """
        if x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
        params: dict[str, Any] = {
            "run_id": run_id,
            "name": name,
            "max_points": max_points,
            "buckets": max(1, max_points // 2),
        }
        stage_filter = ""
        if stage_index is not None:
            stage_filter = "AND stage_index = $stage_index"
            params["stage_index"] = stage_index
        if x == "time":
            expression = "epoch(wall_time)"
        elif x == "step":
            expression = "step::DOUBLE"
        else:
            if spans is None:
                spans = self.stage_spans(run_id)
            expression = _run_axis(spans, x)
        sql = _SERIES_SQL.format(x=expression, stage_filter=stage_filter)
        rows = self._fetch(sql, params)
        return Series([row[0] for row in rows], [row[1] for row in rows])

    # --- owners -----------------------------------------------------------------------------

    def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        """Which of `run_ids` another process asked to cancel.

        While this process writes (a run logs every step), the writer thread reads the
        requests after each batch; that answer is used when it is fresh, so polling does not
        open the file again (an open slows a training thread far more than its own cost).
        """
        if not run_ids:
            return []
        writer = self._writer
        if writer is not None and time.monotonic() - writer.cancel_read_at < _CANCEL_FRESH:
            return [run_id for run_id in run_ids if run_id in writer.cancel_requested]
        rows = self._fetch(
            "SELECT run_id FROM runs WHERE cancel_requested AND list_contains(?, run_id)",
            [list(run_ids)],
        )
        return [run_id for (run_id,) in rows]

    def mark_interrupted(self) -> list[str]:
        """Mark as interrupted the active runs whose owner process on this host is gone.

        Returns their ids. Runs owned by another host are left alone: there is no telling
        whether their process still lives.
        """
        with (
            self._db.cursor(write=True, lock_timeout=self._lock_timeout) as cur,
            self._reading(),
        ):
            dead = _dead_runs(cur)
            if not dead:
                return []
            now = time.time()
            cur.begin()
            try:
                cur.execute(
                    "UPDATE runs SET status = 'interrupted', error = ?,"
                    " finished_at = to_timestamp(?) WHERE list_contains(?, run_id)",
                    [INTERRUPTED_ERROR, now, dead],
                )
                cur.execute(
                    "UPDATE stages SET status = 'interrupted', finished_at = to_timestamp(?)"
                    " WHERE status = 'running' AND list_contains(?, run_id)",
                    [now, dead],
                )
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
        return dead

    def mark_interrupted_if_any(self) -> list[str]:
        """Like `mark_interrupted`, but cheap when no owner died: one read, no write open.

        Read-only stores call it when opened, so `tuneboard runs` after a crash shows
        `interrupted` rather than a run that runs forever; a long-lived reader (the app)
        can call it now and then to notice processes that died since. Never raises: a file
        that cannot be written (a read-only copy) is left as it is. Not inside `hold()`.
        """
        try:
            with self._db.cursor(lock_timeout=self._lock_timeout) as cur, self._reading():
                dead = _dead_runs(cur)
            return self.mark_interrupted() if dead else []
        except (TuneboardError, duckdb.Error, OSError):
            return []


# --- helpers ------------------------------------------------------------------------------


def _run_axis(spans: Sequence[StageSpan], x: XAxis) -> str:
    """The SQL expression of a metric point's run-wide step or epoch, given the stage spans
    (read once, so each series does not aggregate the run's metrics again)."""
    cases = []
    for span in spans:
        if x == "run_step":
            value = f"{float(span.first_step)!r} + step"
        else:
            rate = span.epochs_per_step or 0.0
            value = f"{float(span.first_epoch)!r} + step * {float(rate)!r}"
        cases.append(f"WHEN {int(span.stage_index)} THEN {value}")
    if not cases:
        return "step::DOUBLE" if x == "run_step" else "0.0"
    fallback = "step::DOUBLE" if x == "run_step" else "0.0"
    return f"(CASE stage_index {' '.join(cases)} ELSE {fallback} END)::DOUBLE"


def _dead_runs(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Ids of the queued and running runs whose owner process on this host is gone."""
    rows = cur.execute(
        "SELECT run_id, owner_pid, owner_started FROM runs"
        " WHERE status IN ('queued', 'running') AND owner_host = ?"
        " AND owner_pid IS NOT NULL",
        [socket.gethostname()],
    ).fetchall()
    return [run_id for run_id, pid, started in rows if not _is_alive(pid, started)]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {sorted(STATUSES)}")


def _now(at: float | None) -> float:
    return time.time() if at is None else float(at)


_owner_cache: dict[int, tuple[str, int, float]] = {}


def _owner() -> tuple[str, int, float]:
    """This process's host name, pid and create time (cached per pid: forks differ)."""
    pid = os.getpid()
    owner = _owner_cache.get(pid)
    if owner is None:
        owner = _owner_cache[pid] = (socket.gethostname(), pid, psutil.Process(pid).create_time())
    return owner


def _is_alive(pid: int, started: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # Create times are computed from clock ticks, so allow for rounding; a pid reused
        # within a second of the same boot is not a worry.
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _jsonable(value: Any) -> Any:
    # JSON has no NaN or infinity, and TOML configs can hold them.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def _to_json(value: Mapping[str, Any]) -> str:
    return json.dumps(_jsonable(value), default=str, allow_nan=False)


def _from_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def _run_row(row: tuple[Any, ...]) -> RunRow:
    stage, steps, total = row[15:18]
    progress = None
    if stage is not None and steps is not None and total:
        progress = max(0.0, min(1.0, steps / total))
    return RunRow(
        run_id=row[0],
        experiment=row[1],
        status=row[2],
        config=_from_json(row[3]),
        created_at=row[4],
        started_at=row[5],
        finished_at=row[6],
        device=row[7],
        error=row[8],
        headline=row[9],
        headline_value=row[10],
        sweep_id=row[11],
        owner_host=row[12],
        owner_pid=row[13],
        owner_started=row[14],
        current_stage=stage,
        progress=progress,
    )


def hash_path(path: Path) -> tuple[int, str]:
    """The size in bytes and SHA-256 hex digest of a file or a folder (see `add_artifact`)."""
    if path.is_file():
        with path.open("rb") as f:
            return path.stat().st_size, hashlib.file_digest(f, "sha256").hexdigest()
    if not path.is_dir():
        raise TuneboardError(f"artifact {path} does not exist")
    digest = hashlib.sha256()
    total = 0
    files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    for relative, file in files:
        size = file.stat().st_size
        total += size
        digest.update(f"{relative}\0{size}\0".encode())
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return total, digest.hexdigest()
