"""Run detail of a three-stage run: charts on the run-wide step axis with the stages' boundaries
and best checkpoints, the stages' run-wide steps, and the axis key cycling through run-wide
steps, each stage's own steps, epochs and time."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import THREE_STAGE, seed_three_stage
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.widgets.chart import MetricChart

RUN_WIDE = [
    (0.0, "warmup", ""),
    (20.0, "full", "← best@20"),
    (60.0, "polish", "← best@50"),
    (80.0, "evaluate", "← best@75"),
    (80.0, "export", "← best@75"),
]
# test/auroc is the evaluate stage's alone: no chart of it on one stage's steps
ALL_FAMILIES = ["accuracy", "loss", "auroc", "epoch"]  # the headline's family first


@pytest.fixture
def three_stage_project(seeded_project: Path) -> Path:
    seed_three_stage(seeded_project)
    return seeded_project


def titles(screen: DetailScreen) -> list[str]:
    return [chart.title for chart in screen.query(MetricChart)]


def lines(chart: MetricChart) -> list[tuple[float, str, str]]:
    return [(b.x, b.label, b.note) for b in chart.marks.boundaries]


def bests(chart: MetricChart) -> list[tuple[float, float]]:
    return [(m.x, m.y) for m in chart.marks.points]


async def test_the_axis_key_cycles_run_steps_stage_steps_epochs_and_time(
    three_stage_project: Path, make_app: AppFactory
) -> None:
    app = make_app(three_stage_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DetailScreen(THREE_STAGE))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: "accuracy" in screen.charts and screen.spans)
        accuracy, loss = screen.charts["accuracy"], screen.charts["loss"]
        assert accuracy.xlabel == "step (whole run)"
        assert lines(accuracy) == lines(loss) == RUN_WIDE
        assert titles(screen) == ALL_FAMILIES
        assert app.active_bindings["t"].binding.description == "X axis"
        assert bests(accuracy) == [(20.0, 0.63), (50.0, 0.86), (75.0, 0.88)]
        assert bests(loss) == []  # the stages monitored accuracy
        val = accuracy.series["val/accuracy"].xs
        assert val[:4] == [5.0, 10.0, 15.0, 20.0] and val[4] == 25.0 and val[-1] == 80.0
        assert accuracy.series["test/accuracy"].xs == [80.0]  # logged at step 0, at the end
        table = screen.query_one("#stages", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[4] for row in rows] == ["1–20", "21–60", "61–80", "at 80", "at 80"]
        assert rows[1][5] == "val/accuracy 0.86 @ 50"

        await pilot.press("t")
        await wait_for(pilot, lambda: accuracy.xlabel == "step in stage warmup")
        assert list(accuracy.series) == ["val/accuracy"]  # only what that stage logged
        assert accuracy.series["val/accuracy"].xs == [5.0, 10.0, 15.0, 20.0]
        assert lines(accuracy) == [] and bests(accuracy) == [(20.0, 0.63)]
        await wait_for(pilot, lambda: titles(screen) == ["accuracy", "loss", "epoch"])

        await pilot.press("t")
        await wait_for(pilot, lambda: accuracy.xlabel == "step in stage full")
        assert accuracy.series["val/accuracy"].xs[-1] == 40.0
        assert bests(accuracy) == [(30.0, 0.86)]

        await pilot.press("t", "t")
        await wait_for(pilot, lambda: accuracy.xlabel == "epoch (whole run)")
        assert [x for x, _, _ in lines(accuracy)] == [0.0, 2.0, 4.0, 6.0, 6.0]
        assert accuracy.series["test/accuracy"].xs == [6.0]
        assert bests(accuracy) == pytest.approx([(2.0, 0.63), (3.5, 0.86), (5.5, 0.88)])
        # the test-only family is back in its place
        await wait_for(pilot, lambda: titles(screen) == ALL_FAMILIES)

        await pilot.press("t")
        await wait_for(pilot, lambda: accuracy.xlabel == "seconds since start")
        # each stage starts where it started, in seconds since the run started
        assert [x for x, _, _ in lines(accuracy)] == [1.0, 22.0, 63.0, 84.0, 86.0]
        assert bests(accuracy) == []

        await pilot.press("t")
        await wait_for(pilot, lambda: accuracy.xlabel == "step (whole run)")
        assert lines(accuracy) == RUN_WIDE
