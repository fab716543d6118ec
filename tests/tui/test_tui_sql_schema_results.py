"""The SQL screen: opening a table in the schema types nothing, choosing a column types its
name; a result drawn before its columns are measured is drawn again, whole."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, TextArea, Tree

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_TINY, FAILED_TINY
from tuneboard.store import QueryJob, QueryResult
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.sql import SqlScreen


async def sql_screen(app: TuneboardApp, pilot: object) -> SqlScreen:
    await pilot.press("2")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))  # type: ignore[arg-type]
    screen = app.screen
    assert isinstance(screen, SqlScreen)
    return screen


async def test_opening_a_table_types_nothing_and_choosing_a_column_types_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await sql_screen(app, pilot)
        editor = screen.query_one("#editor", TextArea)
        tree: Tree[str] = screen.query_one("#schema", Tree)
        await wait_for(pilot, lambda: any(n.data == "runs" for n in tree.root.children))
        runs = next(node for node in tree.root.children if node.data == "runs")
        editor.load_text("SELECT  FROM runs")
        editor.move_cursor((0, 7))
        tree.focus()
        tree.move_cursor(runs)
        await pilot.press("enter")
        await wait_for(pilot, lambda: runs.is_expanded)
        assert editor.text == "SELECT  FROM runs"
        await pilot.press("enter")  # and closed again
        await wait_for(pilot, lambda: not runs.is_expanded)
        assert editor.text == "SELECT  FROM runs"

        await pilot.press("enter", "down", "enter")  # open it, then choose its first column
        await wait_for(pilot, lambda: editor.text != "SELECT  FROM runs")
        assert editor.text == "SELECT run_id FROM runs"
        assert tree.has_focus  # choose another column next


async def test_a_second_quick_query_draws_its_columns_whole(
    seeded_project: Path, make_app: AppFactory
) -> None:
    """Two queries back to back, the second's result drawn before the table measures it.

    A DataTable sizes new rows' columns when it is next idle; on a busy machine a frame is
    drawn before that, at the header widths, and it used to stay: the drawn lines are cached
    by an update count that measuring did not change. Here that frame is drawn on purpose,
    right as each result arrives, as the compositor does on a loaded machine.
    """
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await sql_screen(app, pilot)
        editor = screen.query_one("#editor", TextArea)
        table = screen.query_one("#results", DataTable)
        frames: list[str] = []
        finished = screen._finished

        def drawn() -> str:
            return "\n".join(table.render_line(y).text for y in range(table.size.height))

        def finished_then_drawn(
            job: QueryJob, result: QueryResult | None, error: str | None
        ) -> None:
            finished(job, result, error)
            frames.append(drawn())

        screen._finished = finished_then_drawn  # type: ignore[method-assign]
        editor.load_text("SELECT 1 AS a, 2 AS b, 3 AS c")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(frames) == 1)
        editor.load_text("SELECT run_id AS a, experiment AS b, status AS c FROM runs ORDER BY 1")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(frames) == 2)
        assert COMPLETED_TINY not in frames[1]  # drawn at the header widths: a, b, c
        await wait_for(pilot, lambda: COMPLETED_TINY in drawn() and FAILED_TINY in drawn())
        assert "completed" in drawn()
