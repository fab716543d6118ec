"""The writer thread: every write of the store is queued, then applied in batches, in order.

Callers only put a tuple on a `queue.SimpleQueue` (a few microseconds, no I/O). At least
every `flush_interval` seconds the thread takes everything queued and applies it in one
connection use and one transaction: statements in order, metric points, events and
generations as one columnar Arrow insert each, progress updates coalesced to the latest per
stage. Then it lets go of the file so other processes can open it. A batch that fails for a
while (the file locked by another process, memory) is kept and retried with back-off; an
operation that can never succeed is dropped and logged. A failure that waiting cannot heal (a
damaged file, permission denied, a full disk) stops the writer at once: it keeps the error in
`failure` and drops what is queued and what comes after, so that its users stop and report it
rather than retry forever (and so the damaged file is left as it is).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb

from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.scheduler import QueueRules
from tuneboard.store.database import (
    DEFAULT_LOCK_TIMEOUT,
    Database,
    UnusableDatabase,
    first_line,
    is_damage,
    os_reason,
)
from tuneboard.store.queue import read_rules

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)


def import_batch_libraries() -> None:
    """Import numpy and pyarrow now, which the writer needs for its first batch.

    The store leaves them out so the app can paint its runs sooner; a process about to train
    imports them up front, or a run's first metrics batch pays ~0.2 s while the run trains.
    """
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401


# Operations are plain tuples, cheap to build in the caller, tagged by their first item.
METRICS = "metrics"  # (METRICS, run_id, stage_index, step, {name: value}, wall_time)
PROGRESS = "progress"  # (PROGRESS, run_id, stage_index, completed, total)
EVENT = "event"  # (EVENT, run_id, stage_index, time, level, message)
ARTIFACT = "artifact"  # (ARTIFACT, run_id, stage_index, kind, path, bytes, sha256, time)
# (GENERATIONS, run_id, stage_index, ((split, idx, prompt, output, reference, step), ...), time)
GENERATIONS = "generations"
# (LOG, run_id, stage_index, line, time, stream, level, source, message)
LOG = "log"
STATEMENT = "statement"  # (STATEMENT, sql, params)
DELETE_RUN = "delete_run"  # (DELETE_RUN, run_id)
_FLUSH = "flush"  # (_FLUSH, threading.Event set once everything before it is committed)
_STOP = "stop"  # (_STOP, threading.Event)

Op = tuple[Any, ...]

RUN_TABLES = (
    "metrics",
    "events",
    "artifacts",
    "generations",
    "logs",
    "stages",
    "run_parents",
    "queue",
    "runs",
)

# Seconds after a process last asked for the queue's rules during which batches read them.
_RULES_WANTED = 5.0

_RETRY_FIRST = 0.05
_RETRY_MAX = 2.0
_LOG_EVERY = 10.0

# Errors after which the same batch may well succeed later: the file locked or busy in
# another process (a `TuneboardError` on opening), memory, a conflict. Those that cannot heal
# are told apart first (`_cannot_heal`).
_TRANSIENT = (
    TuneboardError,
    duckdb.IOException,
    duckdb.OutOfMemoryException,
    duckdb.TransactionException,
    duckdb.InterruptException,
)


def _cannot_heal(error: Exception) -> UnusableDatabase | None:
    """The error to stop writing with, when waiting will not make `error` go away."""
    if isinstance(error, UnusableDatabase):
        return error
    if isinstance(error, OSError):
        return UnusableDatabase(
            f"cannot write to {error.filename or 'the database'}: {os_reason(error)}"
        )
    if isinstance(error, duckdb.Error) and is_damage(error):
        return UnusableDatabase(first_line(error))
    return None


FLUSH_INTERVAL = 0.5
"""Seconds between the writer's batches. Each batch opens, writes and lets go of the database
file (~15-20 ms of CPU in DuckDB), time a training thread on a small CPU shares; twice a
second keeps that within the noise of a training run (BENCHMARKS.md, section 1) while a point
still reaches a query well within a second."""


class Writer:
    """The writer thread of one database in this process, shared by its stores.

    Get it with `Writer.acquire(db)` and give it back with `release()`; the thread stops
    (after writing everything) when the last user releases it, or at interpreter exit.
    `put(op)` queues an operation. Counters: `batches` (transactions committed), `inserts`
    (columnar inserts of metric points), `points` (metric points written), `dropped`
    (operations given up as impossible, each logged).
    """

    _live: ClassVar[dict[Database, Writer]] = {}
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        db: Database,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.db = db
        self.flush_interval = flush_interval
        self.lock_timeout = lock_timeout
        self.batches = 0
        self.inserts = 0
        self.points = 0
        self.dropped = 0
        self.failure: UnusableDatabase | None = None
        # Runs other processes asked to cancel, read after each batch while the file is open
        # anyway, and when (monotonic time): see `Store.cancel_requests`.
        self.cancel_requested: frozenset[str] = frozenset()
        self.cancel_read_at = -math.inf
        # The queue's rules (order, holds, pins, pause), read at the same moments while a
        # process with queued runs asked for them lately (`rules_wanted_at`).
        self.queue_rules = QueueRules()
        self.rules_read_at = -math.inf
        self.rules_wanted_at = -math.inf
        self._users = 0
        self._abandoned = False
        self._queue: queue.SimpleQueue[Op] = queue.SimpleQueue()
        self.put: Callable[[Op], None] = self._queue.put
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"tuneboard-writer:{db.path.name}", daemon=True
        )
        self._thread.start()

    @classmethod
    def acquire(
        cls,
        db: Database,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Writer:
        """The running writer of `db`, started if needed; pair with `release()`."""
        with cls._live_lock:
            writer = cls._live.get(db)
            if writer is None:
                writer = cls(db, flush_interval=flush_interval, lock_timeout=lock_timeout)
                cls._live[db] = writer
            writer._users += 1
            return writer

    def release(self) -> None:
        """Give back a writer from `acquire()`; the last release writes everything and stops."""
        with self._live_lock:
            self._users -= 1
            last = self._users <= 0
            if last and self._live.get(self.db) is self:
                del self._live[self.db]
        if last:
            self.close()

    @classmethod
    def close_all(cls) -> None:
        """Write everything queued in every writer and stop them (run at interpreter exit)."""
        with cls._live_lock:
            writers = list(cls._live.values())
            cls._live.clear()
        for writer in writers:
            writer.close()

    @classmethod
    def _forget_all(cls) -> None:
        # After fork the child has none of the parent's threads.
        cls._live = {}
        cls._live_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True until the thread has stopped."""
        return not self._stopped.is_set()

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued before this call is committed.

        Raises `TuneboardError` after `timeout` seconds (None: wait as long as it takes), and
        the writer's `failure` (an `UnusableDatabase`) once it stopped writing.
        """
        if self.running:
            done = threading.Event()
            self.put((_FLUSH, done))
            self._wake.set()
            if not self._wait(done, timeout):
                raise self._not_written(timeout)
        if self.failure is not None:
            raise self.failure

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then stop the thread. Safe to call twice."""
        if not self.running:
            return
        done = threading.Event()
        self.put((_STOP, done))
        self._wake.set()
        if not self._wait(done, timeout):
            raise self._not_written(timeout)
        self._thread.join(timeout)

    def abandon(self) -> None:
        """Stop at once, dropping every write not committed yet and every later one: what
        a killed process loses. The crash tests simulate `kill -9` in process with it."""
        with self._live_lock:
            if self._live.get(self.db) is self:
                del self._live[self.db]
        self._abandoned = True
        self.close()

    def _not_written(self, timeout: float | None) -> TuneboardError:
        if self._thread.is_alive():
            return TuneboardError(
                f"timed out after {timeout:g} s waiting for writes to {self.db.path}"
            )
        return TuneboardError(f"the writer of {self.db.path} stopped; see the log for why")

    def _wait(self, done: threading.Event, timeout: float | None) -> bool:
        # Waits in slices so a writer thread that died cannot leave the caller hanging.
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.5 if deadline is None else min(0.5, deadline - time.monotonic())):
            if not self._thread.is_alive():
                return done.is_set()
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                items = self._drain()
                if items and self._handle(items):
                    return
        finally:
            self._stopped.set()

    def _drain(self) -> list[Op]:
        items = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self._queue.get_nowait())
        return items

    def _handle(self, items: list[Op]) -> bool:
        """Write one drained batch and wake its waiters; True when asked to stop."""
        ops: list[Op] = []
        waiters: list[threading.Event] = []
        stop = False
        for op in items:
            if op[0] == _FLUSH:
                waiters.append(op[1])
            elif op[0] == _STOP:
                waiters.append(op[1])
                stop = True
            else:
                ops.append(op)
        try:
            if ops and not self._abandoned and self.failure is None:
                self._write(ops)
            elif ops:
                self.dropped += len(ops)
        except _Stop as stopped:
            self._fail(stopped.error, len(ops))
        except Exception:
            logger.exception("tuneboard writer: unexpected error writing to %s", self.db.path)
        finally:
            for waiter in waiters:
                waiter.set()
        return stop

    def _fail(self, error: UnusableDatabase, pending: int) -> None:
        """Stop writing for good: keep why, drop what is queued (see the module's docstring)."""
        if str(self.db.path) not in str(error):
            error = UnusableDatabase(f"cannot write to {self.db.path}: {error}")
        self.failure = error
        self.dropped += pending
        # The users report the failure; a later `Writer.acquire` starts afresh.
        with self._live_lock:
            if self._live.get(self.db) is self:
                del self._live[self.db]
        logger.info("%s; dropped %d operations", error, pending)

    def _write(self, ops: list[Op]) -> None:
        """Commit `ops`, retrying transient failures; raises only `_Stop`."""
        delay = _RETRY_FIRST
        last_log: float | None = None
        while True:
            try:
                self._apply(ops)
            except Exception as error:
                fatal = _cannot_heal(error)
                if fatal is not None:
                    raise _Stop(fatal) from error
                if isinstance(error, _TRANSIENT):
                    now = time.monotonic()
                    if last_log is None or now - last_log >= _LOG_EVERY:
                        logger.warning(
                            "cannot write to %s yet (%s); keeping %d operations and retrying",
                            self.db.path,
                            first_line(error),
                            len(ops),
                        )
                        last_log = now
                    time.sleep(delay * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                if len(ops) == 1:
                    self.dropped += 1
                    logger.error(
                        "dropped a write to %s that cannot succeed: %s (%s)",
                        self.db.path,
                        first_line(error),
                        _describe(ops[0]),
                    )
                    return
                # Split the batch to find the operations at fault; the rest still commit,
                # in order.
                middle = len(ops) // 2
                self._write(ops[:middle])
                self._write(ops[middle:])
                return
            if last_log is not None:
                logger.warning("writing to %s again", self.db.path)
            return

    def _apply(self, ops: list[Op]) -> None:
        with self.db.cursor(write=True, lock_timeout=self.lock_timeout) as cur:
            cur.begin()
            try:
                batch = _Batch(cur)
                for op in ops:
                    batch.add(op)
                batch.finish()
                cur.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.rollback()
                raise
            self._read_cancel_requests(cur)
        self.batches += 1
        self.inserts += batch.inserts
        self.points += batch.points

    def _read_cancel_requests(self, cur: duckdb.DuckDBPyConnection) -> None:
        # Every open of the file costs a training thread far more than its ~25 ms of CPU
        # (measured: one extra open a second slowed training steps ~20%), so the engine's
        # poll for cancel requests reads this instead of opening the file itself.
        try:
            rows = cur.execute("SELECT run_id FROM runs WHERE cancel_requested").fetchall()
            now = time.monotonic()
            rules = read_rules(cur) if now - self.rules_wanted_at < _RULES_WANTED else None
        except duckdb.Error:
            return
        self.cancel_requested = frozenset(run_id for (run_id,) in rows)
        self.cancel_read_at = now
        if rules is not None:
            self.queue_rules = rules
            self.rules_read_at = now


class _Stop(Exception):
    """Raised inside the writer thread by a failure that waiting cannot heal."""

    def __init__(self, error: UnusableDatabase) -> None:
        super().__init__(str(error))
        self.error = error


class _Batch:
    """Accumulates a batch's rows column by column and writes them in one insert per table."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        self.inserts = 0
        self.points = 0
        self._metrics: list[Op] = []
        self._events: tuple[list[Any], ...] = ([], [], [], [], [])
        self._artifacts: list[tuple[Any, ...]] = []
        self._generations: list[Op] = []
        self._logs: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
        self._progress: dict[tuple[str, int], tuple[int, int | None]] = {}

    def add(self, op: Op) -> None:
        tag = op[0]
        if tag == METRICS:
            self._metrics.append(op)  # turned into columns all at once in `_write_metrics`
        elif tag == PROGRESS:
            self._progress[(op[1], op[2])] = (op[3], op[4])
        elif tag == EVENT:
            for column, value in zip(self._events, op[1:], strict=True):
                column.append(value)
        elif tag == LOG:
            for column, value in zip(self._logs, op[1:], strict=True):
                column.append(value)
        elif tag == ARTIFACT:
            self._artifacts.append(op[1:])
        elif tag == GENERATIONS:
            self._generations.append(op)  # turned into columns in `_write_generations`
        elif tag == STATEMENT:
            self._write_progress()
            self.cur.execute(op[1], op[2])
        elif tag == DELETE_RUN:
            self.finish()
            for table in RUN_TABLES:
                self.cur.execute(f"DELETE FROM {table} WHERE run_id = ?", [op[1]])
        else:
            raise ValueError(f"unknown store operation {tag!r}")

    def finish(self) -> None:
        """Write everything accumulated so far."""
        self._write_progress()
        self._write_metrics()
        self._write_events()
        self._write_generations()
        self._write_logs()
        if self._artifacts:
            self.cur.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?, to_timestamp(?))",
                self._artifacts,
            )
            self._artifacts = []

    def _write_progress(self) -> None:
        if self._progress:
            self.cur.executemany(
                "UPDATE stages SET steps = ?, total_steps = ? WHERE run_id = ? AND stage_index = ?",
                [
                    (done, total, run, stage)
                    for (run, stage), (done, total) in self._progress.items()
                ],
            )
            self._progress = {}

    def _write_metrics(self) -> None:
        ops, self._metrics = self._metrics, []
        if not ops:
            return
        table = metrics_table(ops)
        if not table.num_rows:
            return
        self._insert(
            table,
            "INSERT INTO metrics SELECT run_id, stage_index, step, name, value,"
            " to_timestamp(wall_time) FROM _tuneboard_batch",
        )
        self.inserts += 1
        self.points += table.num_rows

    def _write_events(self) -> None:
        runs, stages, times, levels, messages = self._events
        if not runs:
            return
        import pyarrow as pa  # here, not at import: the app's first paint must not wait for it

        table = pa.Table.from_arrays(
            [
                pa.array(runs, pa.string()),
                pa.array(stages, pa.int32()),
                pa.array(times, pa.float64()),
                pa.array(levels, pa.string()),
                pa.array(messages, pa.string()),
            ],
            names=["run_id", "stage_index", "time", "level", "message"],
        )
        self._insert(
            table,
            "INSERT INTO events SELECT run_id, stage_index, to_timestamp(time), level, message"
            " FROM _tuneboard_batch",
        )
        self._events = ([], [], [], [], [])

    def _write_generations(self) -> None:
        ops, self._generations = self._generations, []
        if not ops:
            return
        table = generations_table(ops)
        if not table.num_rows:
            return
        self._insert(
            table,
            "INSERT INTO generations SELECT run_id, stage_index, step, split, idx, prompt,"
            " output, reference, to_timestamp(created_at) FROM _tuneboard_batch",
        )

    def _write_logs(self) -> None:
        columns, self._logs = self._logs, ([], [], [], [], [], [], [], [])
        if not columns[0]:
            return
        import pyarrow as pa  # here, not at import: see `_write_events`

        types = (
            pa.string(),
            pa.int32(),
            pa.int64(),
            pa.float64(),
            pa.string(),
            pa.string(),
            pa.string(),
            pa.string(),
        )
        names = ["run_id", "stage_index", "line", "time", "stream", "level", "source", "message"]
        table = pa.Table.from_arrays(
            [pa.array(column, kind) for column, kind in zip(columns, types, strict=True)],
            names=names,
        )
        self._insert(
            table,
            "INSERT INTO logs SELECT run_id, stage_index, line, to_timestamp(time), stream,"
            " level, source, message FROM _tuneboard_batch",
        )

    def _insert(self, table: pa.Table, sql: str) -> None:
        self.cur.register("_tuneboard_batch", table)
        try:
            self.cur.execute(sql)
        finally:
            self.cur.unregister("_tuneboard_batch")


def metrics_table(ops: list[Op]) -> pa.Table:
    """The points of METRICS operations as one Arrow table, built a column at a time.

    Only the names and values are touched point by point (and in C: `chain`, `map(float)`,
    `np.fromiter`); the run, stage, step and time of each operation are converted once per
    operation and repeated for its points by one Arrow `take`. A value `float()` refuses fails
    the whole table, so a bad batch leaves no partial rows behind.
    """
    # Imported here, not with the module: the app reads the database (and paints its runs)
    # long before anything writes metrics, and numpy and pyarrow take ~0.2 s to import.
    import numpy as np
    import pyarrow as pa

    # One list per field; `zip(*ops)` would make an iterator per operation, and the garbage
    # collector runs many times over a big batch while it does.
    runs, stages, steps, values, times = (list(map(itemgetter(i), ops)) for i in range(1, 6))
    counts = np.fromiter(map(len, values), np.int64, len(values))
    total = int(counts.sum())
    per_op = pa.Table.from_arrays(
        [
            pa.array(runs, pa.string()),
            pa.array(stages, pa.int32()),
            pa.array(steps, pa.int64()),
            pa.array(times, pa.float64()),
        ],
        names=["run_id", "stage_index", "step", "wall_time"],
    )
    if total != len(ops) or not (counts == 1).all():  # e.g. {} next to two values
        per_op = per_op.take(np.repeat(np.arange(len(ops)), counts))
    names = pa.array(list(chain.from_iterable(values)), pa.string())
    floats = np.fromiter(
        map(float, chain.from_iterable(map(dict.values, values))), np.float64, total
    )
    return per_op.append_column("name", names).append_column("value", pa.array(floats))


def generations_table(ops: list[Op]) -> pa.Table:
    """The rows of GENERATIONS operations as one Arrow table.

    A value of the wrong type (an output that is not text) fails the whole table, so a bad
    batch leaves no partial rows behind.
    """
    import pyarrow as pa  # here, not at import: see `metrics_table`

    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [], [])
    run_ids, stage_indexes, steps, splits, idxs, prompts, outputs, references, times = columns
    for _, run_id, stage_index, rows, at in ops:
        for split, idx, prompt, output, reference, step in rows:
            run_ids.append(run_id)
            stage_indexes.append(stage_index)
            steps.append(step)
            splits.append(split)
            idxs.append(idx)
            prompts.append(prompt)
            outputs.append(output)
            references.append(reference)
            times.append(at)
    types = (
        pa.string(),
        pa.int32(),
        pa.int64(),
        pa.string(),
        pa.int64(),
        pa.string(),
        pa.string(),
        pa.string(),
        pa.float64(),
    )
    return pa.Table.from_arrays(
        [pa.array(column, kind) for column, kind in zip(columns, types, strict=True)],
        names=[
            "run_id",
            "stage_index",
            "step",
            "split",
            "idx",
            "prompt",
            "output",
            "reference",
            "created_at",
        ],
    )


def _describe(op: Op) -> str:
    if op[0] == STATEMENT:
        return f"{' '.join(op[1].split())[:60]} {op[2]!r:.80}"
    return f"{op[0]} {op[1:]!r:.100}"


atexit.register(Writer.close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Writer._forget_all)
