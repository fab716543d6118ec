"""The SQL screen's `.attach` command: another project's database beside this one."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static, TextArea, Tree

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.store import Store
from tuneboard.tui.screens.sql import SqlScreen


async def test_attach_query_and_detach_another_database(
    seeded_project: Path, make_app: AppFactory, tmp_path: Path
) -> None:
    other = tmp_path / "laptop.duckdb"
    with Store(other) as store:
        store.create_run("laptop-run", "tiny", {}, status="completed")
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        assert isinstance(screen, SqlScreen)
        editor = screen.query_one("#editor", TextArea)
        status = screen.query_one("#sql-status", Static)

        editor.load_text(f".attach {tmp_path / 'missing.duckdb'}")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "no such file" in str(status.render()))
        assert status.has_class("error-banner") and screen.attachments == {}

        editor.load_text(f".attach {other}")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "attached" in str(status.render()))
        assert screen.attachments == {"laptop": other}
        tree = screen.query_one("#schema", Tree)
        await wait_for(pilot, lambda: "laptop.runs" in [str(n.label) for n in tree.root.children])

        editor.load_text("SELECT r.run_id, (SELECT count(*) FROM runs) AS here FROM laptop.runs r")
        await pilot.press("ctrl+r")
        results = screen.query_one("#results", DataTable)
        await wait_for(pilot, lambda: results.row_count == 1)
        assert [str(results.get_cell_at((0, i))) for i in range(2)] == ["laptop-run", "5"]

        editor.load_text("DELETE FROM laptop.runs")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "only read statements" in str(status.render()))

        editor.load_text(".detach laptop")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "detached laptop" in str(status.render()))
        assert screen.attachments == {}
        editor.load_text("SELECT * FROM laptop.runs")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: status.has_class("error-banner"))
    with Store(other, read_only=True) as store:
        assert [run.run_id for run in store.list_runs()] == ["laptop-run"]
