"""The plugins' run lifecycle hooks, called by the engine as a run goes.

A plugin that raises inside one of these hooks is skipped for that call: the run gets a
warning event naming the plugin, the hook and the error, and goes on as if nothing happened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuneboard.engine.observer import StageSummary
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.recording import RunRecorder

log = logging.getLogger(__name__)


class RunLifecycle:
    """Tells every plugin about one run: queued, started, each stage finished, finished."""

    def __init__(
        self,
        registry: PluginRegistry,
        store: RunRecorder,
        *,
        run_id: str,
        experiment: str,
        run_dir: Path,
        project_dir: Path,
    ) -> None:
        self._registry = registry
        self._store = store
        self.run_id = run_id
        self.experiment = experiment
        self.run_dir = run_dir
        self.project_dir = project_dir

    def queued(self) -> None:
        """Call `run_queued`."""
        self._call(
            "run_queued",
            experiment=self.experiment,
            run_dir=self.run_dir,
            project_dir=self.project_dir,
        )

    def started(self, device: str) -> None:
        """Call `run_started`."""
        self._call(
            "run_started",
            experiment=self.experiment,
            device=device,
            run_dir=self.run_dir,
            project_dir=self.project_dir,
        )

    def stage_finished(self, stage_index: int, summary: StageSummary) -> None:
        """Call `stage_finished` with what the stage did."""
        self._call(
            "stage_finished",
            stage_index=stage_index,
            name=summary.name,
            plugin=summary.plugin,
            status=summary.status,
            steps=summary.steps,
            seconds=summary.seconds,
            best_metric=summary.best_metric,
            best_value=summary.best_value,
            run_dir=self.run_dir,
            _stage_index=stage_index,
        )

    def finished(self, status: str, error: str | None, metrics: Mapping[str, float]) -> None:
        """Call `run_finished` with the final status and the last value of every metric."""
        self._call(
            "run_finished",
            experiment=self.experiment,
            status=status,
            error=error,
            metrics=dict(metrics),
            run_dir=self.run_dir,
            project_dir=self.project_dir,
        )

    def _call(self, hook: str, _stage_index: int | None = None, **arguments: Any) -> None:
        try:
            failures = self._registry.call_lifecycle(hook, run_id=self.run_id, **arguments)
        except Exception:  # never let bookkeeping for plugins fail a run
            log.exception("calling the %s hooks failed", hook)
            return
        for failure in failures:
            message = (
                f"plugin {failure.plugin!r} raised in its {failure.hook} hook and was "
                f"skipped: {failure.error}"
            )
            log.warning("run %s: %s", self.run_id, message)
            self._store.log_event(self.run_id, message, level="warning", stage_index=_stage_index)
