"""Run detail's x axes and what its charts draw besides the series: which stage boundaries, their
labels (merged where stages take no room, with the checkpoint each stage starts from), the
stages' best checkpoints, and where the labels fit on a chart's top edge."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from tuneboard.store import Series, StageSpan
from tuneboard.tui.axes import (
    RUN_STEPS,
    AxisMode,
    best_marks,
    boundaries,
    chart_marks,
    handoff_note,
    next_mode,
    step_range,
)
from tuneboard.tui.axes import axis_modes as modes_of
from tuneboard.tui.widgets.chart import (
    Boundary,
    ChartMarks,
    Mark,
    MetricChart,
    label_top_edge,
    place_labels,
    step_ticks,
)


def span(
    index: int,
    name: str,
    first: int,
    last: int,
    best: int | None = None,
    value: float | None = None,
    *,
    epochs: float = 0.0,
    first_epoch: float = 0.0,
) -> StageSpan:
    steps = last - first
    return StageSpan(
        stage_index=index,
        name=name,
        plugin="finetune" if steps else name,
        status="completed",
        first_step=first,
        last_step=last,
        first_epoch=first_epoch,
        last_epoch=first_epoch + epochs,
        epochs_per_step=epochs / steps if epochs and steps else None,
        best_metric="val/accuracy" if best is not None else None,
        best_step=best,
        best_value=value,
    )


# warm-up 0-20 (best at 20), full 20-60 (best at 50), polish 60-80 (best at 75), then
# evaluate and export, which take no steps; two epochs per training stage.
PIPELINE = [
    span(0, "warmup", 0, 20, 20, 0.63, epochs=2.0),
    span(1, "full", 20, 60, 50, 0.86, epochs=2.0, first_epoch=2.0),
    span(2, "polish", 60, 80, 75, 0.88, epochs=2.0, first_epoch=4.0),
    span(3, "evaluate", 80, 80, first_epoch=6.0),
    span(4, "export", 80, 80, first_epoch=6.0),
]


def test_the_axis_key_cycles_run_steps_each_training_stage_epochs_then_time() -> None:
    labels = []
    mode = RUN_STEPS
    for _ in range(7):
        labels.append(mode.label)
        mode = next_mode(mode, PIPELINE)
    assert labels == [
        "step (whole run)",
        "step in stage warmup",
        "step in stage full",
        "step in stage polish",
        "epoch (whole run)",
        "seconds since start",
        "step (whole run)",
    ]
    assert AxisMode("step", 1, "full").choice == "steps in stage full"


def test_no_epoch_axis_without_epochs_and_a_vanished_stage_falls_back_to_run_steps() -> None:
    plain = [span(0, "finetune", 0, 20, 20, 0.8), span(1, "evaluate", 20, 20)]
    assert [m.label for m in modes_of(plain)] == [
        "step (whole run)",
        "step in stage finetune",
        "seconds since start",
    ]
    assert next_mode(AxisMode("step", 5, "gone"), plain) == RUN_STEPS


def test_a_stage_row_shows_its_run_wide_steps() -> None:
    assert [step_range(s) for s in PIPELINE] == ["1–20", "21–60", "61–80", "at 80", "at 80"]


def test_each_stage_starts_from_the_best_checkpoint_of_the_last_stage_that_trained() -> None:
    assert handoff_note([]) == ""
    assert handoff_note(PIPELINE[:1]) == "← best@20"
    # evaluate and export hand on the model they were given
    assert handoff_note(PIPELINE[:4]) == "← best@75"
    # a stage that trained without keeping a best hands on its last weights
    assert handoff_note([PIPELINE[0], span(1, "more", 20, 30)]) == ""


def test_boundaries_on_run_steps_epochs_and_time_but_not_within_a_stage() -> None:
    assert boundaries(RUN_STEPS, PIPELINE) == (
        Boundary(0.0, "warmup", ""),
        Boundary(20.0, "full", "← best@20"),
        Boundary(60.0, "polish", "← best@50"),
        Boundary(80.0, "evaluate", "← best@75"),
        Boundary(80.0, "export", "← best@75"),
    )
    assert [b.x for b in boundaries(AxisMode("epoch"), PIPELINE)] == [0, 2, 4, 6, 6]
    # time: where the stage started, relative to the run; a stage not started has none
    starts = {0: 1.0, 1: 22.0, 2: 63.0}
    on_time = boundaries(AxisMode("time"), PIPELINE, starts)
    assert [(b.x, b.label) for b in on_time] == [(1, "warmup"), (22, "full"), (63, "polish")]
    assert boundaries(AxisMode("step", 1, "full"), PIPELINE) == ()


def test_best_checkpoints_are_marked_on_the_chart_of_their_metric() -> None:
    accuracy = ["val/accuracy", "test/accuracy"]
    assert best_marks(RUN_STEPS, PIPELINE, accuracy) == (
        Mark(20.0, 0.63, "best"),
        Mark(50.0, 0.86, "best"),
        Mark(75.0, 0.88, "best"),
    )
    assert best_marks(RUN_STEPS, PIPELINE, ["val/loss", "train/loss"]) == ()
    # within one stage: only its own, at its own step
    assert best_marks(AxisMode("step", 1, "full"), PIPELINE, accuracy) == (
        Mark(30.0, 0.86, "best"),
    )
    on_epochs = best_marks(AxisMode("epoch"), PIPELINE, accuracy)
    assert [m.x for m in on_epochs] == [2.0, 3.5, 5.5]
    assert best_marks(AxisMode("time"), PIPELINE, accuracy) == ()
    marks = chart_marks(RUN_STEPS, PIPELINE, accuracy)
    assert len(marks.boundaries) == 5 and len(marks.points) == 3


def test_labels_of_stages_that_take_no_room_are_merged_and_end_at_their_line() -> None:
    lines = boundaries(RUN_STEPS, PIPELINE)
    # 200 columns: every label whole; evaluate and export share one, ending at the run's end
    assert place_labels(lines, 0, 80, 200) == [
        (0, "warmup"),
        (51, "full ← best@20"),
        (150, "polish ← best@50"),
        (199 - len("evaluate+export ← best@75"), "evaluate+export ← best@75"),
    ]
    # less room: the merged label drops its note, then names only its first stage
    assert place_labels(lines, 0, 80, 160)[-1] == (144, "evaluate+export")
    assert place_labels(lines, 0, 80, 130)[-1] == (119, "evaluate+…")


def test_labels_squeeze_their_note_then_give_way_when_the_chart_is_narrow() -> None:
    lines = boundaries(RUN_STEPS, PIPELINE)
    placed = place_labels(lines, 0, 80, 70)
    assert placed == [(0, "warmup"), (18, "full ← best@20"), (53, "polish←best@50")]
    narrower = place_labels(lines, 0, 80, 60)
    assert [text for _, text in narrower] == ["warmup", "full ← best@20", "polish", "evalua…"]
    ends = [start + len(text) for start, text in narrower]
    assert all(end < start for end, (start, _) in zip(ends, narrower[1:], strict=False))
    # a name too long for the room before the next line is cut short; one in the middle
    # never ends left of its line (it would read as the previous stage's)
    long = [Boundary(0, "warmup"), Boundary(10, "a-very-long-stage-name"), Boundary(16, "x")]
    assert place_labels(long, 0, 20, 40) == [(0, "warmup"), (21, "a-very-l…"), (32, "x")]
    # lines too close for a label between them share one
    cramped = [Boundary(0, "warmup"), Boundary(10, "a-very-long-stage-name"), Boundary(12.6, "x")]
    assert place_labels(cramped, 0, 20, 40) == [(0, "warmup"), (21, "a-very-long-stage-…")]
    # ... which ends at the run's end when there is no room after it
    close = [Boundary(0, "finetune"), Boundary(20, "evaluate", "← best@20"), Boundary(21, "export")]
    assert place_labels(close, 0, 21, 70) == [(0, "finetune"), (41, "evaluate+export ← best@20")]


def test_labels_are_written_into_the_top_edge_of_the_frame() -> None:
    figure = Text.from_ansi("      title\n   ┌──────────┬─────────┐\n   │          │         │")
    marked = label_top_edge(figure, [Boundary(0, "a"), Boundary(10, "b", "← c")], 0, 19)
    lines = marked.plain.split("\n")
    assert lines[0] == "      title"
    assert lines[1] == "   ┌a─────────┬b ← c────┐"
    assert lines[2] == figure.plain.split("\n")[2]
    assert label_top_edge(figure, [], 0, 19).plain == figure.plain


def test_step_ticks_fall_on_round_whole_numbers() -> None:
    assert step_ticks(1, 40) == [10, 20, 30, 40]
    assert step_ticks(1, 120) == [20, 40, 60, 80, 100, 120]
    assert step_ticks(10, 40) == [10, 20, 30, 40]
    assert step_ticks(1, 2) == [1, 2]
    # plotext's own five ticks are whole numbers already: kept.
    assert step_ticks(0, 120) is None and step_ticks(20, 80) is None


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricChart("loss")


def axis_numbers(chart: MetricChart) -> list[str]:
    """The numbers under the chart's frame: its x tick labels."""
    figure = chart.render()
    assert isinstance(figure, Text)
    rows = figure.plain.split("\n")
    frame = next(i for i, row in enumerate(rows) if "└" in row)
    return rows[frame + 1].split()


async def test_a_chart_of_steps_labels_its_x_axis_with_whole_steps() -> None:
    app = ChartApp()
    async with app.run_test(size=(80, 16)):
        chart = app.query_one(MetricChart)
        steps = [float(x) for x in range(1, 41)]
        chart.set_series(
            {"train/loss": Series(steps, [1 / x for x in steps])}, "step in stage full"
        )
        assert axis_numbers(chart) == ["10", "20", "30", "40"]
        marks = ChartMarks(boundaries=(Boundary(40.0, "full"),))
        chart.set_series({"train/loss": Series(steps, [1 / x for x in steps])}, "step", marks)
        assert axis_numbers(chart) == ["10", "20", "30", "40"]
        seconds = [x / 3 for x in range(1, 41)]
        chart.set_series({"train/loss": Series(seconds, steps)}, "seconds since start")
        assert "." in "".join(axis_numbers(chart))  # not whole numbers: plotext's own ticks
