"""The schema as Python sees it: run statuses (from `tuneboard.sdk.status`) and the rows the
store's read API returns.

Timestamps in rows are float epoch seconds (UTC), like the timestamps the write API takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tuneboard.sdk.status import (  # the statuses of the `status` columns
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED_STATUSES,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STATUSES,
    RunStatus,
)

XAxis = Literal["run_step", "step", "epoch", "time"]
"""What a series is drawn against: `run_step` (optimizer steps counted across the whole run,
each stage continuing where the previous ended), `step` (within each stage, from 0), `epoch`
(run-wide epochs) or `time` (epoch seconds of wall-clock time)."""

X_AXES: tuple[XAxis, ...] = ("run_step", "step", "epoch", "time")

SYSTEM_PREFIX = "sys/"
"""The prefix of the system metrics a run's process samples (`tuneboard.engine.sysmetrics`)."""


def is_system_metric(name: str) -> bool:
    """Whether `name` is a system metric (`sys/...`): how the machine fared, not how good the
    model is, so never a best value, a headline or the metric shown first."""
    return name.startswith(SYSTEM_PREFIX)


@dataclass(frozen=True)
class RunRow:
    """One row of `runs`, with the name and progress (0..1) of its running stage, if any."""

    run_id: str
    experiment: str
    status: str
    config: dict[str, Any] = field(hash=False)
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    device: str | None
    error: str | None
    headline: str | None
    headline_value: float | None
    sweep_id: str | None
    owner_host: str | None
    owner_pid: int | None
    owner_started: float | None
    current_stage: str | None
    progress: float | None


@dataclass(frozen=True)
class StageRow:
    """One row of `stages`."""

    run_id: str
    stage_index: int
    name: str
    plugin: str
    params: dict[str, Any] = field(hash=False)
    status: str
    started_at: float | None
    finished_at: float | None
    steps: int | None
    total_steps: int | None
    best_metric: str | None
    best_step: int | None
    best_value: float | None


@dataclass(frozen=True)
class StageSpan:
    """A stage's place on the run-wide axes (a row of the `stage_spans` view).

    The stage covers run-wide steps `first_step`..`last_step` and epochs `first_epoch`..
    `last_epoch`; `best_step` is the run-wide step of its best checkpoint (None without one).
    `epochs_per_step` is None for a stage that logged no `train/epoch`.
    """

    stage_index: int
    name: str
    plugin: str
    status: str
    first_step: int
    last_step: int
    first_epoch: float
    last_epoch: float
    epochs_per_step: float | None
    best_metric: str | None
    best_step: int | None
    best_value: float | None

    @property
    def steps(self) -> int:
        """How many steps of the run-wide axis the stage takes."""
        return self.last_step - self.first_step


@dataclass(frozen=True)
class StageValues:
    """The last and the best value of each metric one stage logged."""

    stage_index: int
    name: str
    plugin: str
    last: dict[str, float] = field(hash=False)
    best: dict[str, float] = field(hash=False)


@dataclass(frozen=True)
class EventRow:
    """One row of `events`; `stage_index` is None for run-level events."""

    run_id: str
    stage_index: int | None
    time: float
    level: str
    message: str


@dataclass(frozen=True)
class LogRow:
    """One row of `logs`: a line a run printed, a Python warning or a logging record.

    `stream` is stdout, stderr, warnings, logging or tuneboard (its note of dropped lines);
    `source` the logger's name or the warning's category ('' for prints); `stage_index`
    None outside a stage.
    """

    run_id: str
    stage_index: int | None
    line: int
    time: float
    stream: str
    level: str
    source: str
    message: str


@dataclass(frozen=True)
class ArtifactRow:
    """One row of `artifacts`."""

    run_id: str
    stage_index: int
    kind: str
    path: str
    bytes: int
    sha256: str
    created_at: float


@dataclass(frozen=True)
class RunLink:
    """One row of `run_parents`: run `run_id` started from a model that run `parent_run_id`
    made (its stage `parent_stage_index` recorded it as an artifact of `kind`).

    `source` is the model source as the child's config wrote it (``run:ID/STAGE`` or a
    path); `parent_stage` the name of that stage, None when the parent is not in the file.
    """

    run_id: str
    parent_run_id: str
    parent_stage_index: int | None
    kind: str | None
    artifact_path: str | None
    artifact_sha256: str | None
    source: str | None = None
    parent_stage: str | None = None


@dataclass(frozen=True)
class StageLink:
    """A stage-to-stage row of the `lineage` view: stage `parent_stage_index` of a run
    handed its model to stage `child_stage_index`, through the `kind` artifact at
    `artifact_path` (None: handed on in memory, with no artifact)."""

    parent_stage_index: int
    parent_stage: str | None
    child_stage_index: int
    child_stage: str | None
    kind: str | None
    artifact_path: str | None
    artifact_sha256: str | None


@dataclass(frozen=True)
class GenerationRow:
    """One row of `generations`: a stage's output for the prompt at row `idx` of `split`.

    `step` is the training step of the evaluation that generated it (None outside training);
    `reference` the expected output when known.
    """

    run_id: str
    stage_index: int
    step: int | None
    split: str
    idx: int
    prompt: str
    output: str
    reference: str | None
    created_at: float


@dataclass(frozen=True)
class SweepRun:
    """A run of a sweep and its sweep record (the `sweep` part of its provenance: `id`, the
    `values` the sweep chose, and for newer runs the sweep's `method`, `metric` and
    `direction`); the record is empty for a run recorded without provenance."""

    run: RunRow
    record: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Series:
    """The points of one metric, ordered by x (a step, or epoch seconds)."""

    xs: list[float]
    ys: list[float]


__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINISHED_STATUSES",
    "INTERRUPTED",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "X_AXES",
    "ArtifactRow",
    "EventRow",
    "GenerationRow",
    "LogRow",
    "RunLink",
    "RunRow",
    "RunStatus",
    "Series",
    "StageLink",
    "StageRow",
    "StageSpan",
    "StageValues",
    "SweepRun",
    "XAxis",
]
