"""The runs table on a database of many runs: a screenful first, then every run, in order.

The app fills the table with the rows a terminal can show, paints, then adds the rest; the
plugins and the engine load only once the runs are on screen. These tests check that the
table still ends up complete and correct however it is re-sorted or filtered meanwhile.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from tests.conftest import SAMPLES
from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import seed_many
from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import Store
from tuneboard.tui import app as app_module
from tuneboard.tui.screens.runs import FIRST_ROWS, RunsScreen
from tuneboard.tui.store_opening import StoreOpening

RUNS = 300


@pytest.fixture(scope="module")
def many_runs_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of `RUNS` runs, written once for the module (copied into each test)."""
    project = tmp_path_factory.mktemp("many") / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", project, ignore=shutil.ignore_patterns(".tuneboard"))
    seed_many(project, RUNS)
    return project


@pytest.fixture
def many_runs_project(many_runs_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the project with `RUNS` runs."""
    target = tmp_path / "sentiment"
    shutil.copytree(many_runs_db, target)
    return target


def table_of(screen: Any) -> DataTable[Any]:
    assert isinstance(screen, RunsScreen)
    return screen.query_one("#runs", DataTable)


def row_keys(table: DataTable[Any]) -> list[str]:
    return [
        str(table.coordinate_to_cell_key((row, 0)).row_key.value) for row in range(table.row_count)
    ]


def newest_first(project: Path) -> list[str]:
    with Store(project / ".tuneboard" / "tuneboard.duckdb", read_only=True) as store:
        runs = store.list_runs()
    runs.sort(key=lambda run: run.run_id, reverse=True)
    runs.sort(key=lambda run: run.started_at or run.created_at or 0.0, reverse=True)
    return [run.run_id for run in runs]


async def test_first_fill_is_a_screenful_then_every_run_in_order(
    many_runs_project: Path, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the runs screen may start the engine here: the fallback timer is pushed away.
    monkeypatch.setattr(app_module, "ENGINE_START_SECONDS", 600.0)
    seen: dict[str, Any] = {}
    original = RunsScreen.show

    def show(self: RunsScreen, data: Any) -> None:
        original(self, data)
        seen.setdefault("first_rows", table_of(self).row_count)
        seen.setdefault("engine_loading_at_first_show", self.tb._engine_loading)

    monkeypatch.setattr(RunsScreen, "show", show)
    app = make_app(many_runs_project)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: table_of(app.screen).row_count == RUNS)
        table = table_of(app.screen)
        assert FIRST_ROWS <= seen["first_rows"] < RUNS
        assert seen["engine_loading_at_first_show"] is False
        assert row_keys(table) == newest_first(many_runs_project)
        assert len(set(row_keys(table))) == RUNS
        # The last row has the cells of its run, like the first.
        last = row_keys(table)[-1]
        assert str(table.get_cell(last, "run")) == last
        assert str(table.get_cell(last, "status")) == "✓ completed"
        # Once the runs are on screen the engine loads, without anyone asking for it.
        await wait_for(pilot, lambda: app.services_ready, timeout=30)


async def cursor_on_row(app: Any, pilot: Any, row: int) -> tuple[RunsScreen, str]:
    """Wait for every run in the runs table, put the cursor on `row`; the screen and its run."""
    await wait_for(pilot, lambda: table_of(app.screen).row_count == RUNS)
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    table_of(screen).move_cursor(row=row, animate=False)
    await pilot.pause()
    chosen = screen.current_run_id()
    assert chosen is not None
    return screen, chosen


async def test_resorting_and_filtering_while_rows_are_pending(
    many_runs_project: Path, make_app: AppFactory
) -> None:
    app = make_app(many_runs_project)
    async with app.run_test(size=(160, 40)) as pilot:
        screen, chosen = await cursor_on_row(app, pilot, RUNS // 2)
        expected = newest_first(many_runs_project)
        table = table_of(screen)
        # Refills in a row: the rest left by one must not be added to the next.
        screen.action_reverse()
        screen.action_reverse()
        screen.action_reverse()
        assert table.row_count < RUNS
        await wait_for(pilot, lambda: table.row_count == RUNS)
        await pilot.pause()
        assert row_keys(table) == expected[::-1]
        assert screen.current_run_id() == chosen
        # Filtering: every match, wherever it was in the table.
        await pilot.press("slash", "9")
        matches = [run_id for run_id in expected[::-1] if "9" in run_id]
        assert FIRST_ROWS < len(matches) < RUNS
        await wait_for(pilot, lambda: row_keys(table) == matches)
        await pilot.press("ctrl+u", "escape")
        await wait_for(pilot, lambda: table.row_count == RUNS)
        assert row_keys(table) == expected[::-1]


async def test_the_cursor_stays_on_its_run_deep_in_the_table_when_resorted(
    many_runs_project: Path, make_app: AppFactory
) -> None:
    app = make_app(many_runs_project)
    async with app.run_test(size=(160, 40)) as pilot:
        screen, chosen = await cursor_on_row(app, pilot, 250)
        table = table_of(screen)
        screen.action_reverse()
        assert screen.current_run_id() == chosen  # already there before the rest is added
        await wait_for(pilot, lambda: table.row_count == RUNS)
        assert screen.current_run_id() == chosen
        assert row_keys(table)[table.cursor_row] == chosen


@pytest.mark.parametrize("opened_before_the_app", [False, True])
async def test_a_database_that_cannot_be_opened_is_reported_not_raised(
    sentiment_project: Path, make_app: AppFactory, opened_before_the_app: bool
) -> None:
    database = sentiment_project / ".tuneboard" / "tuneboard.duckdb"
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_text("not a database")
    opening = StoreOpening(database) if opened_before_the_app else None
    app = make_app(sentiment_project, store_opening=opening)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: any(
                "not a valid DuckDB database" in str(n.message) for n in app._notifications
            ),
        )
        assert app.is_running and not app.store_ready
        assert table_of(app.screen).row_count == 0


async def test_a_store_opened_before_the_app_shows_every_run(
    many_runs_project: Path, make_app: AppFactory
) -> None:
    # As `tuneboard` does: the database starts opening before Textual is even imported.
    opening = StoreOpening(many_runs_project / ".tuneboard" / "tuneboard.duckdb")
    app = make_app(many_runs_project, store_opening=opening)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: table_of(app.screen).row_count == RUNS)
        assert row_keys(table_of(app.screen)) == newest_first(many_runs_project)
        store = app.store
    with pytest.raises(RuntimeError, match="already taken"):
        opening.wait()  # the app took the store from the opening
    app.close_services()
    with pytest.raises(TuneboardError, match="closed"):
        store.set_queue_paused(True)


def test_a_store_opening_nobody_takes_is_closed_when_discarded(
    many_runs_project: Path,
) -> None:
    path = many_runs_project / ".tuneboard" / "tuneboard.duckdb"
    opening = StoreOpening(path)
    opening.discard()
    with pytest.raises(RuntimeError, match="already taken"):
        opening.wait()
    # The writer was let go: another store of this process can write at once.
    with Store(path, lock_timeout=5) as store:
        assert len(store.list_runs()) == RUNS
