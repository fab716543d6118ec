"""Which metrics share a chart and which one to show first: pure functions, no Textual.

Which run is best at a metric in Compare is `tuneboard.ui.comparison`'s rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tuneboard.store.schema import is_system_metric

# Families drawn first and last; the others come alphabetically in between.
_FIRST = ("loss",)
_LAST = ("lr", "samples_per_s")
_SPLITS = ("train", "val", "validation", "test")


def family_of(name: str) -> str:
    """The family of a logged metric: `val/loss` and `train/loss` are both `loss`; a system
    metric (`sys/gpu_util`) is a family of its own, named in full."""
    if is_system_metric(name):
        return name
    return name.split("/", 1)[1] if "/" in name else name


def metric_families(names: Iterable[str], monitored: str | None = None) -> dict[str, list[str]]:
    """Group metric names into families (one chart each), in a stable, readable order: the
    `monitored` metric's family first (what picks the best checkpoint), then loss, the others
    alphabetically, and lr and throughput last, whatever order the names come in.

    Within a family, train comes before validation before test. System metrics' charts come
    after every training one.
    """
    first = family_of(monitored) if monitored else None
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(family_of(name), []).append(name)

    def family_key(family: str) -> tuple[int, str]:
        if is_system_metric(family):
            return (3, family)
        if family == first:
            return (-1, family)
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


def default_metric(names: Sequence[str], preferred: Sequence[str | None]) -> str | None:
    """The metric to show first: the first of `preferred` that exists, else a validation one;
    never a system metric (`sys/...`) unless nothing else was logged."""
    for name in preferred:
        if name and name in names and not is_system_metric(name):
            return name
    for prefix in ("val/", "test/", "train/"):
        for name in names:
            if name.startswith(prefix) and not name.endswith("/lr"):
                return name
    others = [name for name in names if not is_system_metric(name)]
    return others[0] if others else names[0] if names else None


def direction_word(name: str, higher_is_better: Callable[[str], bool]) -> str:
    """`↑` when higher values of the metric are better, `↓` otherwise."""
    return "↑" if higher_is_better(name) else "↓"


def monitored_metric(params: Iterable[Mapping[str, Any]], headline: str | None) -> str | None:
    """The metric a run is judged by: the first stage's `monitor` (from stages' `params`),
    else the run's headline; it fixes which chart comes first, the same in every run of an
    experiment and from a run's first step to its end."""
    for stage in params:
        monitor = stage.get("monitor")
        if isinstance(monitor, str) and monitor:
            return monitor
    return headline
