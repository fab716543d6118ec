"""What the generation dataset plugins share: the task check and the split loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tuneboard import (
    CAUSAL_LM,
    SEQ2SEQ,
    SEQUENCE_CLASSIFICATION,
    SPLITS,
    TOKEN_CLASSIFICATION,
    DataError,
    DatasetContext,
    Example,
    GenerationExample,
    Splits,
)

FileNames = str | list[str] | None
"""A split's file (or files, for the plugins that accept several), or None when not named."""


def check_generation_task(name: str, task: str) -> None:
    """DataError when `task` is a classification task: these datasets have no labels."""
    if task in (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION):
        raise DataError(
            f"dataset {name!r} is for generation tasks such as {CAUSAL_LM} and {SEQ2SEQ}, "
            f"not {task}"
        )


def load_splits(
    ctx: DatasetContext,
    files: Mapping[str, FileNames],
    read: Callable[[Path, str], list[GenerationExample]],
) -> Splits:
    """Each named split read with `read(path, key)` from its file(s), in `SPLITS` order.

    A split whose files hold no example is an error naming them.
    """
    splits: Splits = {}
    for split in SPLITS:
        names = files.get(split)
        if names is None:
            continue
        paths = [ctx.resolve(n, split) for n in ([names] if isinstance(names, str) else names)]
        if not paths:
            raise DataError(f"key {split!r}: no files named")
        examples: list[Example] = [e for path in paths for e in read(path, split)]
        if not examples:
            raise DataError(f"{_names(paths)}: no examples (split {split!r} is empty)")
        splits[split] = examples
    return splits


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)
