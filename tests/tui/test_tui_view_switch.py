"""Switching views (F1/F2/F3) redoes no work whose result is the same, and misses no change.

A view shown again keeps its stylesheet (read again only when the theme changes), its
footer's keys and its table's drawn cells; a theme change still reaches every view, drawn
cells included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.runs import RunsScreen


async def runs_on_screen(pilot: Pilot[None], app: TuneboardApp) -> DataTable[Any]:
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
    return app.screen.query_one("#runs", DataTable)


async def press(pilot: Pilot[None], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


def backgrounds(table: DataTable[Any], y: int) -> set[str]:
    """The background colours of line `y` of the table as it draws it."""
    return {
        str(segment.style.bgcolor.name)
        for segment in table.render_line(y)
        if segment.style is not None and segment.style.bgcolor is not None
    }


async def test_switching_views_keeps_the_stylesheet_and_a_theme_change_reaches_every_view(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await runs_on_screen(pilot, app)
        await press(pilot, "f2", "f3", "f1")  # each view built once
        reparsed: list[bool] = []
        stylesheet = app.stylesheet
        reparse = stylesheet.reparse

        def counted() -> None:
            reparsed.append(True)
            reparse()

        stylesheet.reparse = counted  # type: ignore[method-assign]
        await press(pilot, "f2", "f1", "f3", "f1", "f2", "f1")
        assert reparsed == []

        dark = table.styles.background
        drawn_dark = backgrounds(table, 2)
        await press(pilot, "f2")
        sql_dark = app.screen.styles.background
        app.theme = "textual-light"
        await wait_for(pilot, lambda: app.screen.styles.background != sql_dark)
        assert reparsed
        await press(pilot, "f1")
        assert table.styles.background != dark
        assert isinstance(table.styles.background, Color)
        assert table.styles.background.brightness > 0.5
        assert backgrounds(table, 2).isdisjoint(drawn_dark)


async def test_a_view_shown_again_keeps_its_footer_and_its_cursor(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await runs_on_screen(pilot, app)
        await press(pilot, "f2", "f1")
        keys = list(app.screen.query("FooterKey"))
        cursor_line = table.render_line(1 + table.cursor_row)
        await press(pilot, "f2", "f1")
        assert keys and list(app.screen.query("FooterKey")) == keys
        assert all(a is b for a, b in zip(app.screen.query("FooterKey"), keys, strict=True))
        assert table.render_line(1 + table.cursor_row) == cursor_line
        # Leaving the table (focus on the filter) draws the cursor row unfocused.
        await press(pilot, "slash")
        assert table.render_line(1 + table.cursor_row) != cursor_line
