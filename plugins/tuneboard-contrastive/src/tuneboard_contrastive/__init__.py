"""tuneboard-contrastive: supervised contrastive fine-tuning of sequence classifiers.

It provides the `supcon` strategy (cross-entropy mixed with a supervised contrastive loss on
the batch's sentence embeddings, see `tuneboard_contrastive.supcon`) and the `contrastive`
stage that trains with it and measures how well the embeddings separate the classes (see
`tuneboard_contrastive.stage`). The ``tuneboard`` entry point names this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuneboard import hookimpl
from tuneboard_contrastive.stage import Contrastive
from tuneboard_contrastive.supcon import SupCon

__version__ = "0.1.0"


@hookimpl
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Provide the `contrastive` stage."""
    register(Contrastive)


@hookimpl
def register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Provide the `supcon` strategy (usable from any training stage, e.g. `finetune`)."""
    register(SupCon)
