"""Registration of the built-in `prompt-classification` task (its own entry point, beside the
generation tasks' ``tuneboard.builtin.tasks``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import hookimpl
from tuneboard.builtin.prompt_classification import PromptClassification


@hookimpl
def register_tasks(register: Callable[[type[Any]], None]) -> None:
    """Register the `prompt-classification` task."""
    register(PromptClassification)
