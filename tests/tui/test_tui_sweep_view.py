"""A sweep in the app: one row of the runs list that expands in place and opens the sweep view,
whose table marks the best trial and opens a trial's run."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import SWEEP_BEST, SWEEP_ID, SWEEP_PRUNED, seed_sweep, sweep_run_id
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.launch import LaunchScreen
from tuneboard.tui.screens.runs import SWEEP_KEY, RunsScreen
from tuneboard.tui.screens.sweep import SweepScreen, whole_ticks
from tuneboard.tui.widgets.scatter import ScatterChart

ROW = SWEEP_KEY + SWEEP_ID


@pytest.fixture
def sweep_project(seeded_project: Path) -> Path:
    seed_sweep(seeded_project)
    return seeded_project


def runs_screen(app: TuneboardApp) -> RunsScreen:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def table_of(app: TuneboardApp) -> DataTable[object]:
    return runs_screen(app).query_one("#runs", DataTable)


def shows(app: TuneboardApp, rows: int) -> bool:
    return isinstance(app.screen, RunsScreen) and table_of(app).row_count == rows


async def test_a_sweep_is_one_row_that_expands_and_opens(
    sweep_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sweep_project)
    async with app.run_test(size=(120, 30)) as pilot:
        # 5 runs and the 12 trials of the sweep as one row.
        await wait_for(pilot, lambda: shows(app, 6))
        table, screen = table_of(app), runs_screen(app)
        assert str(table.get_cell(ROW, "run")) == "▸ sweep 160000-5eed"
        assert str(table.get_cell(ROW, "experiment")) == "tiny_sweep"
        assert str(table.get_cell(ROW, "stage")) == "12 trials (2 pruned)"
        assert str(table.get_cell(ROW, "headline")) == "0.8991"  # the value alone below 140
        assert str(table.get_cell(ROW, "status")) == "✓ completed"
        assert str(screen.query_one("#summary", Static).render()).startswith(
            "17 of 17 runs · 1 sweep · "
        )

        table.move_cursor(row=screen.shown.index(ROW))
        await pilot.press("right")
        await wait_for(pilot, lambda: table.row_count == 18)
        first = screen.shown.index(ROW) + 1
        trials = [sweep_run_id(n) for n in range(12, 0, -1)]  # newest first, like the list
        assert screen.shown[first : first + 12] == trials
        assert str(table.get_cell(trials[-1], "run")) == f"└ {trials[-1]}"
        # Right again steps into the sweep; left on one of its runs folds it back.
        await pilot.press("right")
        assert screen.current_run_id() == trials[0]
        await pilot.press("left")
        await wait_for(pilot, lambda: table.row_count == 6)
        assert screen.current_key() == ROW

        # Space on the sweep selects all its runs (for compare), again unselects them.
        await pilot.press("space")
        assert screen.selected == set(trials)
        assert str(table.get_cell(ROW, "sel")) == "●"
        table.move_cursor(row=screen.shown.index(ROW))
        await pilot.press("space")
        assert screen.selected == set()

        # The filter keeps the sweep's runs that match, under its row.
        screen.query_one("#filter", Input).value = "5e07"
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("escape", "right")
        await wait_for(pilot, lambda: table.row_count == 2)
        assert screen.shown == [ROW, sweep_run_id(7)]
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        sweep_screen = app.screen
        assert isinstance(sweep_screen, SweepScreen) and sweep_screen.sweep_id == SWEEP_ID


async def test_without_sweeps_the_arrows_are_the_tables(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: shows(app, 5))
        screen = runs_screen(app)
        assert screen.check_action("expand", ()) is False
        await pilot.press("right", "left")  # no sweep to open: nothing happens
        assert table_of(app).row_count == 5 and isinstance(app.screen, RunsScreen)


async def test_the_sweep_view_marks_the_best_trial_and_opens_runs(
    sweep_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sweep_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: shows(app, 6))
        await app.push_screen(SweepScreen(SWEEP_ID))
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        trials = screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: trials.row_count == 12)
        summary = str(screen.query_one("#sweep-summary", Static).render())
        assert "12 trials (2 pruned)" in summary and "optuna" in summary
        assert "best trial 7: 0.8991 (lr=0.003, schedule=cosine)" in summary
        rows = [[str(cell) for cell in trials.get_row_at(i)] for i in range(12)]
        assert rows[SWEEP_BEST - 1][:3] == ["◆ 7", sweep_run_id(7), "✓ completed"]
        assert rows[SWEEP_BEST - 1][3:] == ["0.003", "cosine", "0.8991"]
        assert [i + 1 for i, row in enumerate(rows) if row[2] == "× pruned"] == list(SWEEP_PRUNED)
        assert sum(1 for row in rows if row[0].startswith("◆")) == 1
        # The objective per trial, and lr and schedule against it.
        charts = list(screen.query(ScatterChart))
        assert [c.title for c in charts] == [
            "val/accuracy per trial",
            "val/accuracy by lr",
            "val/accuracy by schedule",
        ]
        assert charts[1].log_x and charts[2].ticks is not None
        assert charts[2].ticks.labels == ("linear", "constant", "cosine")

        await pilot.press("b")
        assert screen.current_run_id() == sweep_run_id(SWEEP_BEST)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.run_id == sweep_run_id(SWEEP_BEST)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_a_running_trial_counts_once_it_completes(
    sweep_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sweep_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: shows(app, 6))
        # A 13th trial starts (written through the app's own store, as a run of it would be).
        store, run_id = app.store, "20260101-164000-5e13"
        values = {"stages.0.lr": 0.004, "stages.0.schedule": "cosine", "optuna_trial": 12}
        record = {"id": SWEEP_ID, "values": values, "metric": "val/accuracy"}
        store.create_run(run_id, "tiny_sweep", {}, sweep_id=SWEEP_ID, provenance={"sweep": record})
        store.set_run_status(run_id, "running", device="cpu")
        store.log_metrics(run_id, 0, 5, {"val/accuracy": 0.95})
        store.flush()
        table = table_of(app)
        await wait_for(pilot, lambda: str(table.get_cell(ROW, "stage")).startswith("13 trials"))
        assert str(table.get_cell(ROW, "stage")) == "13 trials (1 running, 2 pruned)"
        assert str(table.get_cell(ROW, "status")) == "▶ running"
        assert str(table.get_cell(ROW, "headline")) == "0.8991"  # the value alone below 140

        await app.push_screen(SweepScreen(SWEEP_ID))
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        trials = screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: trials.row_count == 13)
        assert [str(c) for c in trials.get_row_at(12)][2:] == [
            "▶ running", "0.004", "cosine", "0.95",
        ]  # fmt: skip
        assert screen.sweep is not None and screen.sweep.best is not None
        assert screen.sweep.best.number == SWEEP_BEST
        store.set_run_status(run_id, "completed")
        store.flush()
        await wait_for(pilot, lambda: str(trials.get_row_at(12)[0]) == "◆ 13")
        assert str(trials.get_row_at(SWEEP_BEST - 1)[0]) == f"  {SWEEP_BEST}"
        summary = str(screen.query_one("#sweep-summary", Static).render())
        assert "best trial 13: 0.95 (lr=0.004, schedule=cosine)" in summary


def test_a_parameter_of_whole_numbers_ticks_whole_numbers() -> None:
    epochs = whole_ticks((1.0, 2.0, 4.0, 6.0, 6.0))
    assert epochs is not None and epochs.labels == ("1", "2", "3", "4", "5", "6")
    assert epochs.positions == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    layers = whole_ticks((1.0, 4.0, 8.0))
    assert layers is not None and layers.labels == ("2", "4", "6", "8")
    assert whole_ticks((0.1, 0.3)) is None  # not whole: plotext's own ticks
    assert whole_ticks((8.0, 16.0, 48.0)) is None  # plotext's own (8 18 28 38 48) are whole


async def test_n_on_a_sweep_row_launches_its_experiment(
    sweep_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sweep_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: shows(app, 6))
        table, screen = table_of(app), runs_screen(app)
        table.move_cursor(row=screen.shown.index(ROW))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        launch = app.screen
        assert isinstance(launch, LaunchScreen)
        assert launch.experiment == "tiny_sweep"
