"""Registration of the built-in stages: one module per stage, each registered here.

Each stage module holds its parameters, its class and its work, and imports torch inside the
work, so loading plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import Stage, hookimpl
from tuneboard.builtin.augment import Augment
from tuneboard.builtin.clm import Clm
from tuneboard.builtin.distill import Distill
from tuneboard.builtin.evaluate import Evaluate
from tuneboard.builtin.export import Export
from tuneboard.builtin.feedback import Feedback
from tuneboard.builtin.finetune import Finetune
from tuneboard.builtin.generate import Generate
from tuneboard.builtin.mlm import Mlm
from tuneboard.builtin.predict import Predict
from tuneboard.builtin.preference import Preference
from tuneboard.builtin.repeat import Repeat
from tuneboard.builtin.single_step import SingleStep

BUILTIN_STAGES: tuple[type[Stage[Any]], ...] = (
    Finetune,
    SingleStep,
    Evaluate,
    Export,
    Mlm,
    Augment,
    Predict,
    Distill,
    Feedback,
    Preference,
    Repeat,
    Generate,
    Clm,
)


@hookimpl
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in stages."""
    for stage in BUILTIN_STAGES:
        register(stage)
