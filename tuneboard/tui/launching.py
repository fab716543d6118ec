"""Launching runs from the app: validate, prepare (loads data) and queue, off the event loop."""

from __future__ import annotations

from collections.abc import Sequence

from tuneboard.config import ExperimentConfig, Project, experiment_from_raw
from tuneboard.engine.engine import Engine, new_run_id
from tuneboard.plugins import PluginRegistry
from tuneboard.store import RunRow


def launch_all(engine: Engine, configs: Sequence[ExperimentConfig]) -> list[str]:
    """Prepare every config first (so bad input launches nothing), then queue them all.

    Several runs share a sweep id. Raises TuneboardError on bad input. Call from a thread:
    preparing loads the dataset.
    """
    prepared = [engine.prepare(config) for config in configs]
    sweep_id = f"sweep-{new_run_id()}" if len(prepared) > 1 else None
    return [engine.launch(item, sweep_id=sweep_id) for item in prepared]


def relaunch(project: Project, registry: PluginRegistry, engine: Engine, run: RunRow) -> str:
    """Launch a past run's experiment again with the config it ran with; return the new id."""
    config = experiment_from_raw(project, run.experiment, run.config, registry)
    [run_id] = launch_all(engine, [config])
    return run_id
