"""Runs read as pipelines: which stage of a run lines up with a stage of another run.

Pure functions over the store's rows (no Textual), shared by the CLI and the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tuneboard.store import StageValues


def trained(stage: StageValues) -> bool:
    """Whether the stage trained (it logged `train/...` values)."""
    return any(name.startswith("train/") for name in stage.last)


def match_stage(stages: Sequence[StageValues], wanted: str) -> StageValues | None:
    """The stage of a run that lines up with the stage named `wanted` in another run.

    In order: the stage of that name; else the only stage whose plugin is named `wanted`;
    else, for a run with a single stage that trained (a baseline), that stage. None when
    no stage lines up.
    """
    for stage in stages:
        if stage.name == wanted:
            return stage
    by_plugin = [stage for stage in stages if stage.plugin == wanted]
    if len(by_plugin) == 1:
        return by_plugin[0]
    training = [stage for stage in stages if trained(stage)]
    if len(training) == 1:
        return training[0]
    return None


def stage_names(runs: Iterable[Sequence[StageValues]]) -> list[str]:
    """The stage names of several runs, each once, in the pipeline order of the first run
    that has it."""
    names: dict[str, None] = {}
    for stages in runs:
        names.update(dict.fromkeys(stage.name for stage in stages))
    return list(names)
