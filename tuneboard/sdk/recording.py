"""What a run writes: its status, stages, progress, metric points, events and artifacts.

A running run writes through a `RunRecorder` and never reads through it. The project's store
(`tuneboard.store.Store`) is one: it queues each write for its database. A run executing on
another machine gets another (`tuneboard.remote.records.RemoteRecorder`): it writes each call
as a record on stdout, which the launching process replays into its store. Timestamps are float
epoch seconds and default to now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tuneboard.sdk.tasks import Generation


class RunRecorder(Protocol):
    """Where a run's records go. Every method returns quickly; `flush` waits for the writes."""

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        device: str | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> None:
        """Change the run's status (`running` on `device`; a finished one with its `error`)."""

    def set_headline_value(self, run_id: str, value: float) -> None:
        """Set the value shown next to the run's headline metric."""

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
        """A stage (row `stage_index`) started, with its parameters."""

    def set_progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None
    ) -> None:
        """A stage's progress units (`total` None: unknown)."""

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
        """A stage ended with `status`, and its best checkpoint if it kept one."""

    def log_metrics(
        self,
        run_id: str,
        stage_index: int,
        step: int,
        values: Mapping[str, float],
        wall_time: float | None = None,
    ) -> None:
        """Metric values of a stage at a step."""

    def log_event(
        self,
        run_id: str,
        message: str,
        *,
        level: str = "info",
        stage_index: int | None = None,
        at: float | None = None,
    ) -> None:
        """An event of the run (or of one of its stages)."""

    def log_generations(
        self,
        run_id: str,
        stage_index: int,
        generations: Sequence[Generation],
        *,
        at: float | None = None,
    ) -> None:
        """Outputs a model of the stage generated (rows of the ``generations`` table)."""

    def add_artifact(
        self, run_id: str, stage_index: int, kind: str, path: Path, *, at: float | None = None
    ) -> None:
        """A file or folder a stage produced on this machine (measured and hashed here)."""

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
        """An artifact measured elsewhere (a remote run's): `path` is where it lies there."""

    def flush(self, timeout: float | None = None) -> None:
        """Block until every write made before this call is kept (at most `timeout` s)."""
