"""The task plugin of an experiment: built once per run from its `task` and task table."""

from __future__ import annotations

from typing import Any

from tuneboard.config import ExperimentConfig
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.contracts import CLASSIFICATION_TASKS
from tuneboard.sdk.tasks import Task


def build_task(experiment: ExperimentConfig, registry: PluginRegistry) -> Task[Any] | None:
    """The experiment's `Task` plugin, or None for the classification tasks the engine
    handles itself."""
    if experiment.task in CLASSIFICATION_TASKS:
        return None
    return registry.task(experiment.task)(experiment.task_params)
