"""The queue as the database holds it: queued runs in order, holds, pins, the pause.

Tables `queue` and `queue_settings` (migration m007). Every process reads them: the engine
to decide what starts (see `tuneboard.engine.queue`), the CLI and the app to show and
change them. A run without a `queue` row waits after the placed ones, by creation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.scheduler import QueueRules

QUEUE_SELECT = """
SELECT r.run_id, r.experiment, epoch(r.created_at), q.position, coalesce(q.held, false),
       q.device, q.waiting, r.config->>'$.memory_gb'
FROM runs r LEFT JOIN queue q USING (run_id)
WHERE r.status = 'queued'
ORDER BY q.position NULLS LAST, r.created_at, r.run_id
"""

PAUSED_SELECT = "SELECT coalesce(any_value(paused), false) FROM queue_settings"

# What a process needs to obey the queue, in one cheap statement: the pause, and the rows of
# `queue` (only runs someone steered, or whose process said why they wait, have one).
RULES_SELECT = """
SELECT (SELECT coalesce(any_value(paused), false) FROM queue_settings),
       list({'run_id': run_id, 'position': position, 'held': held, 'device': device}
            ORDER BY position NULLS LAST, run_id)
FROM queue
"""

Move = Literal["up", "down", "top", "bottom"]
MOVES: tuple[Move, ...] = ("up", "down", "top", "bottom")


@dataclass(frozen=True)
class QueueEntry:
    """A queued run, with how the user steered it."""

    run_id: str
    experiment: str
    created_at: float | None
    position: int | None
    held: bool
    pinned: str | None
    waiting: str | None
    memory_gb: float | None


@dataclass(frozen=True)
class QueueState:
    """The whole queue: whether it is paused, and its runs in the order they start."""

    paused: bool
    entries: tuple[QueueEntry, ...]

    @property
    def order(self) -> tuple[str, ...]:
        """Run ids in queue order."""
        return tuple(entry.run_id for entry in self.entries)

    def entry(self, run_id: str) -> QueueEntry | None:
        """The entry of `run_id`, None when it is not queued."""
        return next((e for e in self.entries if e.run_id == run_id), None)


EMPTY = QueueState(False, ())


def read_queue(cur: duckdb.DuckDBPyConnection) -> QueueState:
    """The queue, read through an open cursor (an unmigrated file: an empty queue)."""
    try:
        rows = cur.execute(QUEUE_SELECT).fetchall()
        (paused,) = cur.execute(PAUSED_SELECT).fetchone() or (False,)
    except duckdb.CatalogException:
        return EMPTY
    return QueueState(bool(paused), tuple(_entry(row) for row in rows))


def read_rules(cur: duckdb.DuckDBPyConnection) -> QueueRules:
    """The queue's rules for the scheduler (an unmigrated file: no rules)."""
    try:
        row = cur.execute(RULES_SELECT).fetchone()
    except duckdb.CatalogException:
        return QueueRules()
    paused, rows = row if row is not None else (False, None)
    rows = rows or []
    return QueueRules(
        paused=bool(paused),
        order=tuple(r["run_id"] for r in rows if r["position"] is not None),
        held=frozenset(r["run_id"] for r in rows if r["held"]),
        pinned={r["run_id"]: r["device"] for r in rows if r["device"]},
    )


def _entry(row: tuple[Any, ...]) -> QueueEntry:
    memory = row[7]
    try:
        memory_gb = float(memory) if memory is not None else None
    except ValueError:
        memory_gb = None
    return QueueEntry(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], memory_gb)


def moved(order: Sequence[str], run_id: str, move: Move) -> list[str]:
    """`order` with `run_id` moved one place up or down, or to the top or bottom."""
    ids = list(order)
    index = ids.index(run_id)
    ids.pop(index)
    if move == "up":
        ids.insert(max(0, index - 1), run_id)
    elif move == "down":
        ids.insert(min(len(ids), index + 1), run_id)
    elif move == "top":
        ids.insert(0, run_id)
    elif move == "bottom":
        ids.append(run_id)
    else:
        raise ValueError(f"unknown move {move!r}; expected one of {', '.join(MOVES)}")
    return ids


def queued_entry(state: QueueState, run_id: str, status: str) -> QueueEntry:
    """The queue entry of `run_id` (whose status is `status`); a one-line error if it is not
    queued."""
    entry = state.entry(run_id)
    if entry is None:
        raise TuneboardError(f"run {run_id} is {status}, not queued")
    return entry


# --- statements (the store queues them for its writer) -------------------------------------

SET_ORDER = (
    "INSERT INTO queue (run_id, position)"
    " SELECT unnest($ids), unnest(generate_series(1, len($ids)))"
    " ON CONFLICT (run_id) DO UPDATE SET position = excluded.position"
)
SET_HELD = (
    "INSERT INTO queue (run_id, held) VALUES (?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET held = excluded.held"
)
SET_PIN = (
    "INSERT INTO queue (run_id, device) VALUES (?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET device = excluded.device"
)
# Only for runs still queued: a run that started since its reason was read keeps no row.
SET_WAITING = (
    "INSERT INTO queue (run_id, waiting)"
    " SELECT w.run_id, w.reason FROM (SELECT unnest($ids) AS run_id, unnest($reasons) AS reason) w"
    " JOIN runs r USING (run_id) WHERE r.status = 'queued'"
    " ON CONFLICT (run_id) DO UPDATE SET waiting = excluded.waiting"
)
SET_PAUSED = (
    "INSERT INTO queue_settings VALUES (1, ?, to_timestamp(?))"
    " ON CONFLICT (id) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at"
)
LEAVE_QUEUE = "DELETE FROM queue WHERE run_id = ?"
