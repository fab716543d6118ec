"""The x axes of a run's charts, and what each chart draws on them besides the series: stage
boundaries with what each stage starts from, and the stages' best checkpoints. Pure functions
of the run's stage spans, no Textual."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuneboard.store import StageSpan, XAxis
from tuneboard.tui.widgets.chart import Boundary, ChartMarks, Mark

BEST_LABEL = "best"


@dataclass(frozen=True)
class AxisMode:
    """One x axis of the run's charts: run-wide steps, the steps of one stage (then only
    that stage's points are drawn), run-wide epochs or seconds since the run started."""

    x: XAxis
    stage_index: int | None = None
    stage_name: str = ""

    @property
    def label(self) -> str:
        """The charts' x-axis label."""
        if self.stage_index is not None:
            return f"step in stage {self.stage_name}"
        return _LABELS[self.x]

    @property
    def choice(self) -> str:
        """What the axis key switched to, in words."""
        if self.stage_index is not None:
            return f"steps in stage {self.stage_name}"
        return _CHOICES[self.x]


_LABELS: dict[XAxis, str] = {
    "run_step": "step (whole run)",
    "step": "step",
    "epoch": "epoch (whole run)",
    "time": "seconds since start",
}
_CHOICES: dict[XAxis, str] = {
    "run_step": "steps of the whole run",
    "step": "steps",
    "epoch": "epochs",
    "time": "time",
}

RUN_STEPS = AxisMode("run_step")


def axis_modes(spans: Sequence[StageSpan]) -> list[AxisMode]:
    """The axes the key cycles through: run-wide steps, the steps of each stage that took
    steps, epochs (once a stage logged `train/epoch`), then time."""
    modes = [RUN_STEPS]
    modes += [AxisMode("step", span.stage_index, span.name) for span in spans if span.steps > 0]
    if any(span.epochs_per_step for span in spans):
        modes.append(AxisMode("epoch"))
    modes.append(AxisMode("time"))
    return modes


def next_mode(mode: AxisMode, spans: Sequence[StageSpan]) -> AxisMode:
    """The axis after `mode` (run-wide steps after the last, or when `mode` is gone)."""
    modes = axis_modes(spans)
    keys = [(m.x, m.stage_index) for m in modes]
    key = (mode.x, mode.stage_index)
    if key not in keys:
        return RUN_STEPS
    return modes[(keys.index(key) + 1) % len(modes)]


def step_range(span: StageSpan) -> str:
    """The run-wide steps a stage took, `41–100`; `at 100` for one that took none (its
    points, if any, are drawn there)."""
    if span.steps <= 0:
        return f"at {span.last_step}"
    return f"{span.first_step + 1}–{span.last_step}"


def handoff_note(before: Sequence[StageSpan]) -> str:
    """What a stage starts from, given the stages `before` it: the best checkpoint of the
    last one that trained, when it kept one. Stages that took no steps and kept no best
    (evaluate, export) hand on the model they were given."""
    for span in reversed(before):
        if span.best_step is not None:
            return f"← best@{span.best_step}"
        if span.steps > 0:
            return ""
    return ""


def boundaries(
    mode: AxisMode, spans: Sequence[StageSpan], starts: Mapping[int, float] | None = None
) -> tuple[Boundary, ...]:
    """A stage's start, labelled with its name and what it starts from, on every axis but
    one stage's steps: at its first run-wide step or epoch, or at `starts[stage_index]`
    (seconds since the run started; a stage without one is left out) on the time axis.

    The chart merges the labels of stages that start at the same place."""
    if mode.stage_index is not None or mode.x == "step":
        return ()
    found = []
    for number, span in enumerate(spans):
        x: float | None
        if mode.x == "run_step":
            x = span.first_step
        elif mode.x == "epoch":
            x = span.first_epoch
        else:
            x = (starts or {}).get(span.stage_index)
        if x is None:
            continue
        found.append(Boundary(float(x), span.name, handoff_note(spans[:number])))
    return tuple(found)


def best_marks(
    mode: AxisMode, spans: Sequence[StageSpan], names: Sequence[str]
) -> tuple[Mark, ...]:
    """The best checkpoint of each stage whose monitored metric is one of `names`, at its
    step and value; none on the time axis (a checkpoint's time is not recorded)."""
    marks = []
    for span in spans:
        if span.best_metric not in names or span.best_step is None or span.best_value is None:
            continue
        if mode.x == "time" or mode.stage_index not in (None, span.stage_index):
            continue
        within = span.best_step - span.first_step
        x: float
        if mode.x == "run_step":
            x = span.best_step
        elif mode.x == "step":
            x = within
        else:
            x = span.first_epoch + within * (span.epochs_per_step or 0.0)
        marks.append(Mark(float(x), span.best_value, BEST_LABEL))
    return tuple(marks)


def chart_marks(
    mode: AxisMode,
    spans: Sequence[StageSpan],
    names: Sequence[str],
    starts: Mapping[int, float] | None = None,
) -> ChartMarks:
    """What the chart of the metrics `names` draws besides them on the axis `mode`."""
    return ChartMarks(boundaries(mode, spans, starts), best_marks(mode, spans, names))
