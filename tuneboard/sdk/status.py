"""The statuses of runs and stages, shared by executors, the engine and the store."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The status of a run or a stage (members compare equal to their plain strings)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


QUEUED = RunStatus.QUEUED
RUNNING = RunStatus.RUNNING
COMPLETED = RunStatus.COMPLETED
FAILED = RunStatus.FAILED
CANCELLED = RunStatus.CANCELLED
INTERRUPTED = RunStatus.INTERRUPTED

STATUSES: frozenset[str] = frozenset(RunStatus)
ACTIVE_STATUSES: frozenset[str] = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINISHED_STATUSES: frozenset[str] = STATUSES - ACTIVE_STATUSES
