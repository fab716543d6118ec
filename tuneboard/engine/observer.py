"""In-process notifications about runs, for clients that draw progress (the CLI, the app).

The database is the record; observers only make the process that runs a job feel live.
Every method is called from a run's worker thread and must return quickly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class RunObserver:
    """Receives run updates; every method is a no-op here, override what you need."""

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """A run changed status (`queued`, `running`, `completed`, `failed`, `cancelled`)."""

    def stage_started(self, run_id: str, stage_index: int, name: str, plugin: str) -> None:
        """A stage of a run started."""

    def progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None, description: str
    ) -> None:
        """A stage reported progress."""

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """A stage logged metric values."""

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """A stage ended (completed, failed or cancelled)."""


@dataclass(frozen=True)
class StageSummary:
    """What a stage did, for summary tables: status, steps, best metric and duration."""

    name: str
    plugin: str
    status: str
    steps: int
    seconds: float
    best_metric: str | None = None
    best_step: int | None = None
    best_value: float | None = None


class ObserverGroup(RunObserver):
    """Forwards every notification to several observers; one failing never stops the others."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self._observers = list(observers)

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            _quietly(observer.run_status, run_id, status, error)

    def stage_started(self, run_id: str, stage_index: int, name: str, plugin: str) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            _quietly(observer.stage_started, run_id, stage_index, name, plugin)

    def progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None, description: str
    ) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            _quietly(observer.progress, run_id, stage_index, completed, total, description)

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            _quietly(observer.metrics, run_id, stage_index, step, values)

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            _quietly(observer.stage_finished, run_id, stage_index, summary)


def _quietly(method: Any, *args: Any) -> None:
    # A drawing bug in a client must not fail the run that notified it.
    try:
        method(*args)
    except Exception:
        logging.getLogger(__name__).exception("run observer failed")
