"""The app shows names, errors and SQL results holding markup and terminal escapes as text."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable, Static, TextArea

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import HOSTILE, HOSTILE_RUN, seed_hostile_run
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.sql import SqlScreen
from tuneboard.ui.safe import visible


def _cells(table: DataTable[object], row: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(row)]


async def test_hostile_names_and_sql_results_show_as_text(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    toml = sentiment_project / "tuneboard.toml"
    toml.write_text(toml.read_text().replace('name = "sentiment"', 'name = "[/oops]"', 1))
    seed_hostile_run(sentiment_project)
    shown = visible(HOSTILE)
    app = make_app(sentiment_project)
    async with app.run_test(size=(160, 40)) as pilot:
        runs = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1)
        assert HOSTILE_RUN in _cells(runs, 0) and shown in _cells(runs, 0)
        app.notify(f"run {HOSTILE_RUN} failed: {HOSTILE}")  # as a failed run is announced

        await app.push_screen(DetailScreen(HOSTILE_RUN))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: screen.run is not None and screen.charts)
        assert shown in str(screen.query_one("#summary", Static).render())
        assert shown in str(screen.query_one("#error", Static).render())
        assert shown in _cells(screen.query_one("#stages", DataTable), 0)
        assert "second [/line]" in str(screen.query_one("#events", Static).render())
        # the stage's name labels its start on the chart's top edge
        chart = next(iter(screen.charts.values()))
        await wait_for(pilot, lambda: chart.size.width > 0)
        figure = chart.render()
        assert isinstance(figure, Text)
        assert "┌" + shown[:20] in figure.plain and "\x1b" not in figure.plain
        await pilot.press("escape")

        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        sql = app.screen
        sql.query_one("#editor", TextArea).load_text(
            "SELECT '[/x]' AS \"[/c]\", '[blink red]hi' AS b, chr(27) || '[2J' AS c,"
            " 'infinity'::TIMESTAMP AS d, experiment FROM runs"
        )
        await pilot.press("ctrl+r")
        results = sql.query_one("#results", DataTable)
        await wait_for(pilot, lambda: results.row_count == 1)
        assert _cells(results, 0) == ["[/x]", "[blink red]hi", "\\x1b[2J", "infinity", shown]
        assert next(str(column.label) for column in results.columns.values()) == "[/c]"
        screenshot = app.export_screenshot()
        assert "\x1b" not in screenshot and "\u202e" not in screenshot
