"""Help (`?`), the command palette's own commands, and the movement keys of every table."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_MULTI, COMPLETED_TINY, FAILED_TINY, RUNNING_TINY
from tests.tui.test_tui_review import add_predictions
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.history import SavedQueries
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.keys import KeysScreen
from tuneboard.tui.screens.launch import LaunchScreen
from tuneboard.tui.screens.review import ReviewScreen
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.tui.screens.sql import SqlScreen
from tuneboard.tui.widgets.table import Table


def help_text(app: TuneboardApp) -> str:
    screen = app.screen
    assert isinstance(screen, KeysScreen)
    return "\n".join(
        f"{g.title}: " + "; ".join(f"{k} {w}" for k, w in g.rows) for g in screen.groups
    )


async def open_help(app: TuneboardApp, pilot: Pilot[None]) -> str:
    under = app.screen
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen))
    text = help_text(app)
    await pilot.press("escape")
    await wait_for(pilot, lambda: app.screen is under)
    return text


async def test_question_mark_shows_the_keys_of_runs_detail_and_sql(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        runs = await open_help(app, pilot)
        assert runs.startswith("Runs: ")
        for line in ("n Launch", "space Select", "c Compare", "S Reverse", "w Views"):
            assert line in runs
        assert "Tables: j down a row; k up a row; g / home to the first row" in runs
        assert "Everywhere: 1 / f1 Runs" in runs and "ctrl+p command palette" in runs
        assert "q / ^q Quit" in runs

        # `?` closes it too.
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = await open_help(app, pilot)
        assert detail.startswith("Run detail: ")
        assert "t X axis" in detail and "esc Back" in detail and "x Cancel run" in detail
        # This run has no parent, children or generations: their keys are left out.
        assert "Parent run" not in detail and "Prev prompt" not in detail
        assert "Launch" not in detail  # not the Runs screen's keys

        await pilot.press("escape", "2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        await pilot.press("escape")  # out of the editor: there `?` is text
        sql = await open_help(app, pilot)
        assert sql.startswith("SQL: ") and "^r Run" in sql and "^s Save" in sql
        # A key and its F-key or ctrl twin are listed once, side by side.
        everywhere = sql.split("Everywhere: ")[1]
        assert everywhere.startswith("1 / f1 Runs") and "q / ^q Quit" in everywhere
        assert sql.count("^q") == 1


async def palette(app: TuneboardApp, pilot: Pilot[None], text: str, title: str) -> None:
    """Open the palette, type `text`, and run the command titled `title`."""
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    palette.query_one(Input).value = text

    def found() -> int | None:
        options = palette.query_one("CommandList").options  # type: ignore[attr-defined]
        for index, option in enumerate(options):
            if option.hit.text == title:
                return index
        return None

    await wait_for(pilot, lambda: found() is not None)
    command_list: object = palette.query_one("CommandList")
    command_list.highlighted = found()  # type: ignore[attr-defined]
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def test_palette_opens_a_run_by_id_goes_to_screens_launches_and_reruns_a_query(
    seeded_project: Path, make_app: AppFactory
) -> None:
    SavedQueries(seeded_project / ".tuneboard").save("count", "SELECT count(*) AS n FROM runs")
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)

        prefix = COMPLETED_MULTI[:-2]
        await palette(app, pilot, prefix, f"Open run {COMPLETED_MULTI}")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.run_id == COMPLETED_MULTI  # type: ignore[attr-defined]
        await pilot.press("escape")

        await palette(app, pilot, "go sql", "Go to SQL")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        await palette(app, pilot, "go plug", "Go to Plugins")
        await wait_for(pilot, lambda: app.current_mode == "plugins")

        await palette(app, pilot, "saved count", "Run saved query count")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        sql = app.screen
        assert isinstance(sql, SqlScreen)
        assert sql.query_one("#editor", TextArea).text == "SELECT count(*) AS n FROM runs"
        await wait_for(pilot, lambda: sql.result is not None)
        assert sql.result is not None and sql.result.rows == [(5,)]

        await palette(app, pilot, "launch base", "Launch baseline")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        launch = app.screen
        assert isinstance(launch, LaunchScreen)
        assert app.current_mode == "runs" and launch.experiment == "baseline"


async def test_palette_compares_the_selected_runs(
    seeded_project: Path, make_app: AppFactory
) -> None:
    from tuneboard.tui.screens.compare import CompareScreen

    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        # The last run, then two up (space moves down after selecting, but not past the end).
        await pilot.press("G", "space", "k", "k", "space", "2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        await palette(app, pilot, "compare sel", "Compare selected runs")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert set(compare.run_ids) == {COMPLETED_TINY, FAILED_TINY}


async def test_table_keys_j_k_g_G_home_end(seeded_project: Path, make_app: AppFactory) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#runs", Table)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert table.cursor_row == 0
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 4
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == 4
        await pilot.press("home")
        assert table.cursor_row == 0
        assert table.get_row_at(0)[2].plain == RUNNING_TINY


async def test_a_screen_that_binds_g_keeps_it(seeded_project: Path, make_app: AppFactory) -> None:
    # The Review screen's `g` keeps the example's label: its table leaves `g` to it, while
    # `G`, `j` and End still move.
    add_predictions(seeded_project, COMPLETED_TINY)
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        screen = app.screen
        table = screen.query_one(Table)
        await wait_for(pilot, lambda: table.row_count == 4)
        await pilot.press("G")
        assert table.cursor_row == 3
        await pilot.press("g")  # sure and right: keep its label (positive); no jump to the top
        assert str(table.get_cell_at((3, 5))) == "positive"
        await pilot.press("home", "j")
        assert table.cursor_row == 1


async def test_help_says_how_to_close_it_on_a_small_terminal(
    seeded_project: Path, make_app: AppFactory
) -> None:
    # At 80x24 the keys of Runs are longer than the box: they scroll, and the line that says
    # how to close the box stays on screen below them.
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysScreen))
        await pilot.pause()
        box = app.screen.query_one("KeysScreen > Vertical")
        keys = app.screen.query_one("KeysScreen VerticalScroll")
        assert box.content_region.contains_region(keys.region), (keys.region, box.content_region)
        assert (box.border_title, box.border_subtitle) == ("Keys: Runs", "escape or ? closes")


async def test_help_says_how_to_switch_tabs_where_a_screen_has_them(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert "Tabs:" not in await open_help(app, pilot)
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert "Tabs: ← / → the previous / next tab" in await open_help(app, pilot)
