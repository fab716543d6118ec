"""Which metrics share a chart, and which run is best at a metric: pure functions, no Textual."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

# Families drawn first and last; the others come alphabetically in between.
_FIRST = ("loss",)
_LAST = ("lr", "samples_per_s")
_SPLITS = ("train", "val", "validation", "test")


def family_of(name: str) -> str:
    """The family of a logged metric: `val/loss` and `train/loss` are both `loss`."""
    return name.split("/", 1)[1] if "/" in name else name


def metric_families(names: Iterable[str]) -> dict[str, list[str]]:
    """Group metric names into families (one chart each), in a stable, readable order.

    Within a family, train comes before validation before test.
    """
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(family_of(name), []).append(name)

    def family_key(family: str) -> tuple[int, str]:
        if family in _FIRST:
            return (0, family)
        if family in _LAST:
            return (2, str(_LAST.index(family)))
        return (1, family)

    def split_key(name: str) -> tuple[int, str]:
        split = name.split("/", 1)[0] if "/" in name else ""
        return (_SPLITS.index(split) if split in _SPLITS else len(_SPLITS), name)

    return {
        family: sorted(members, key=split_key)
        for family, members in sorted(families.items(), key=lambda item: family_key(item[0]))
    }


def best_index(values: Sequence[float | None], higher_is_better: bool) -> int | None:
    """The position of the best value (NaN and None ignored), or None when there is none."""
    best: int | None = None
    for index, value in enumerate(values):
        if value is None or math.isnan(value):
            continue
        if best is None:
            best = index
            continue
        current = values[best]
        assert current is not None
        if (value > current) if higher_is_better else (value < current):
            best = index
    return best


def default_metric(names: Sequence[str], preferred: Sequence[str | None]) -> str | None:
    """The metric to show first: the first of `preferred` that exists, else a validation one."""
    for name in preferred:
        if name and name in names:
            return name
    for prefix in ("val/", "test/", "train/"):
        for name in names:
            if name.startswith(prefix) and not name.endswith("/lr"):
                return name
    return names[0] if names else None


def direction_word(name: str, higher_is_better: Callable[[str], bool]) -> str:
    """`↑` when higher values of the metric are better, `↓` otherwise."""
    return "↑" if higher_is_better(name) else "↓"


# Families that record how training went rather than how good the model is: a run with a
# higher learning rate or more epochs is not "best" at them.
_BOOKKEEPING = ("lr", "epoch")


def is_bookkeeping(name: str) -> bool:
    """Whether a metric is bookkeeping (learning rate, epoch, a `..._per_s` speed) rather
    than a measure of the model, so no run is "best" at it."""
    family = family_of(name)
    return family in _BOOKKEEPING or family.endswith("_per_s")


def winners(values: Sequence[float | None], higher_is_better: bool) -> set[int]:
    """The positions holding the best value, or none at all when fewer than two values are
    there or they all tie (NaN and None ignored)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    best = best_index(values, higher_is_better)
    if best is None or len(present) < 2 or all(v == present[0] for v in present):
        return set()
    return {index for index, value in enumerate(values) if value == values[best]}
