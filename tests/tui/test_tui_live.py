"""Live screens while runs go: a covered screen stays idle, the detail screen follows a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, TabbedContent
from textual_plotext.plot import Plot

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_TINY, NOW, RUNNING_TINY
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.detail import STAGE_COLUMNS, DetailScreen
from tuneboard.tui.screens.runs import RunsScreen


def count_loads(screen: LiveScreen) -> list[None]:
    """A list that grows by one each time `screen` starts reading the store."""
    loads: list[None] = []
    load: Callable[[], Any] = screen.load

    def counting() -> Any:
        loads.append(None)
        return load()

    screen.load = counting  # type: ignore[method-assign]
    return loads


def runs_rows(app: TuneboardApp) -> Callable[[], int]:
    def rows() -> int:
        screens = [s for s in app.screen_stack if isinstance(s, RunsScreen)]
        return screens[0].query_one("#runs", DataTable).row_count if screens else -1

    return rows


async def test_a_covered_screen_stays_idle_and_catches_up_when_shown(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project, poll_interval=0.05, idle_poll_interval=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_rows(app)() == 5)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        loads = count_loads(runs)
        await wait_for(pilot, lambda: len(loads) >= 2)  # polling while shown
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await wait_for(pilot, lambda: detail.run is not None)
        await pilot.pause(0.1)
        before = len(loads)
        app.store.create_run("29990101-000000-ffff", "tiny", {}, headline="test/accuracy")
        app.store.flush()
        runs.post_message(RunsChanged())
        await pilot.pause(0.5)  # ten poll intervals
        assert len(loads) == before
        assert runs_rows(app)() == 5
        app.pop_screen()
        await wait_for(pilot, lambda: runs_rows(app)() == 6)


def last_steps(stages: DataTable[Any]) -> str:
    """The steps cell of the last stage."""
    return str(stages.get_row_at(stages.row_count - 1)[STAGE_COLUMNS.index("steps")])


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """A list that grows by one each time a plotext figure is built."""
    built: list[None] = []
    build = Plot.build

    def counting(plot: Plot) -> str:
        built.append(None)
        return build(plot)

    monkeypatch.setattr(Plot, "build", counting)
    return built


async def test_the_detail_screen_follows_a_run_and_draws_charts_only_on_screen(
    seeded_project: Path, make_app: AppFactory, builds: list[None]
) -> None:
    app = make_app(seeded_project, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: runs_rows(app)() == 5)
        await app.push_screen(DetailScreen(RUNNING_TINY))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: "loss" in screen.charts and builds)
        loss = screen.charts["loss"]
        stages = screen.query_one("#stages", DataTable)
        summary = screen.query_one("#summary")
        assert loss.series["train/loss"].xs[-1] == 10
        assert last_steps(stages) == "1–10 9/20"  # run-wide steps, progress
        assert summary.size.height == 3  # the run, its details, its stage's progress

        tabs = screen.query_one(TabbedContent)
        tabs.active = "events-tab"
        await pilot.pause()
        built = len(builds)
        index = app.store.stages(RUNNING_TINY)[-1].stage_index
        app.store.log_metrics(RUNNING_TINY, index, 11, {"train/loss": 0.3}, wall_time=NOW)
        app.store.set_progress(RUNNING_TINY, index, 11, 20)
        app.store.flush()
        await wait_for(pilot, lambda: loss.series["train/loss"].xs[-1] == 11)
        await wait_for(pilot, lambda: last_steps(stages) == "1–11 11/20")
        await pilot.pause()
        assert len(builds) == built  # new data, but the chart is on a hidden tab

        tabs.active = "charts-tab"
        await wait_for(pilot, lambda: len(builds) > built)
        await pilot.pause(0.2)
        built = len(builds)
        tabs.active = "events-tab"
        await pilot.pause()
        tabs.active = "charts-tab"
        await pilot.pause(0.2)
        assert len(builds) == built  # shown again, same data and size: nothing to build

        app.store.set_run_status(RUNNING_TINY, "completed", at=NOW)
        app.store.flush()
        await wait_for(pilot, lambda: summary.size.height == 2)  # no progress line
