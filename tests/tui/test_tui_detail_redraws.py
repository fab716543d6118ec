"""Run detail redraws a running run's charts at most once a `CHART_INTERVAL`, and an ended
run's at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import RUNNING_TINY
from tuneboard.store import Series
from tuneboard.tui.screens.detail import DetailScreen, RunDetail


def one_more_point(data: RunDetail, name: str, x: float) -> RunDetail:
    series = dict(data.series)
    old = series[name]
    series[name] = Series([*old.xs, x], [*old.ys, old.ys[-1]])
    return dataclasses.replace(data, series=series)


async def test_a_running_runs_charts_redraw_at_most_once_a_second_and_at_its_end(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DetailScreen(RUNNING_TINY))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: "loss" in screen.charts)
        screen.stop_polling()
        data = screen.load()
        assert data.run is not None and data.run.status == "running"
        name = next(n for n in screen.charts["loss"].series if n.startswith("train/"))
        last = data.series[name].xs[-1]

        # Two reads in a row: the second comes less than a second after the first drawing.
        screen.show(one_more_point(data, name, last + 1))
        screen.show(one_more_point(data, name, last + 2))
        assert screen.charts["loss"].series[name].xs[-1] < last + 2

        ended = dataclasses.replace(data.run, status="completed")
        screen.show(dataclasses.replace(one_more_point(data, name, last + 3), run=ended))
        assert screen.charts["loss"].series[name].xs[-1] == last + 3
