"""The built-in generation tasks, ``causal-lm`` and ``seq2seq``, and their registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import hookimpl
from tuneboard.builtin.generation.tasks import CausalLM, Seq2Seq

BUILTIN_TASKS = (CausalLM, Seq2Seq)


@hookimpl
def register_tasks(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in generation tasks."""
    for task in BUILTIN_TASKS:
        register(task)
