"""The app on a seeded database: runs list, filters, detail, compare, SQL, plugins, delete."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from textual.widgets import DataTable, Input, Select, Static, TextArea

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import (
    COMPLETED_MULTI,
    COMPLETED_TINY,
    FAILED_TINY,
    FAILURE,
    RUNNING_TINY,
)
from tuneboard.tui.screens.compare import CompareScreen
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.tui.screens.sql import SqlScreen
from tuneboard.tui.widgets.chart import MetricChart


def runs_table(app: object) -> DataTable[object]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, RunsScreen)
    return screen.query_one("#runs", DataTable)


def cell_texts(table: DataTable[object], column: str) -> list[str]:
    return [str(table.get_cell(row, column)) for row in table.rows]


async def test_runs_table_shows_every_run_with_status_words(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        table = runs_table(app)
        assert cell_texts(table, "run")[0] == RUNNING_TINY  # newest first
        statuses = cell_texts(table, "status")
        assert statuses == [
            "▶ running",
            "■ cancelled",
            "✗ failed",
            "✓ completed",
            "✓ completed",
        ]
        stage = str(table.get_cell(RUNNING_TINY, "stage"))
        assert stage.startswith("finetune") and "45%" in stage
        assert str(table.get_cell(COMPLETED_TINY, "headline")) == "0.8125"  # at 120: the value


async def test_filters_and_sorting(seeded_project: Path, make_app: AppFactory) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        await pilot.press("slash", *"cccc")
        assert cell_texts(runs_table(app), "run") == [FAILED_TINY]
        await pilot.press("ctrl+u", "escape")
        assert runs_table(app).row_count == 5
        app.screen.query_one("#status", Select).value = "completed"
        await pilot.pause()
        assert set(cell_texts(runs_table(app), "run")) == {COMPLETED_TINY, COMPLETED_MULTI}
        app.screen.query_one("#status", Select).value = "*"
        app.screen.query_one("#experiment", Select).value = "baseline"
        await pilot.pause()
        assert runs_table(app).row_count == 1
        app.screen.query_one("#experiment", Select).value = "*"
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        while screen.sort_column != "headline":
            await pilot.press("s")
        await pilot.press("S")  # ascending: runs without a value first, then 0.75, 0.8125
        assert cell_texts(runs_table(app), "run")[-2:] == [COMPLETED_MULTI, COMPLETED_TINY]


async def test_a_run_written_by_another_process_shows_up(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project, poll_interval=0.2)
    script = (
        "import sys; from tuneboard.store import Store\n"
        "with Store(sys.argv[1]) as s:\n"
        "    s.create_run('29990101-000000-ffff', 'tiny', {}, headline='test/accuracy')\n"
    )
    database = seeded_project / ".tuneboard" / "tuneboard.duckdb"
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        done = subprocess.run(
            [sys.executable, "-c", script, str(database)], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        await wait_for(pilot, lambda: runs_table(app).row_count == 6, timeout=15)
        assert cell_texts(runs_table(app), "run")[0] == "29990101-000000-ffff"


async def test_detail_shows_stages_charts_events_and_config(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        table = runs_table(app)
        table.move_cursor(row=table.get_row_index(COMPLETED_TINY))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: len(screen.charts) >= 4)
        assert list(screen.charts)[:2] == ["accuracy", "loss"]  # the headline's family first
        loss = screen.charts["loss"]
        assert set(loss.series) == {"train/loss", "val/loss", "test/loss"}
        assert loss.points > 20
        assert screen.query_one("#stages", DataTable).row_count == 3
        events = str(screen.query_one("#events", Static).render())
        assert "run completed" in events
        config = str(screen.query_one("#config", Static).render())
        assert "stages.0.epochs = 8" in config
        assert not screen.query_one("#error").display


async def test_a_failed_run_shows_its_error(seeded_project: Path, make_app: AppFactory) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(DetailScreen(FAILED_TINY))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: screen.run is not None)
        banner = screen.query_one("#error", Static)
        assert banner.display
        assert FAILURE in str(banner.render())
        assert "✗ failed" in str(banner.render())


async def test_compare_marks_the_best_run_and_config_differences(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        table = runs_table(app)
        await pilot.press("c")  # nothing selected: a warning, no screen
        assert isinstance(app.screen, RunsScreen)
        for run_id in (COMPLETED_TINY, COMPLETED_MULTI):
            table.move_cursor(row=table.get_row_index(run_id))
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        metrics = screen.query_one("#metrics", DataTable)
        await wait_for(pilot, lambda: metrics.row_count > 0)
        assert screen.metric == "val/accuracy"
        accuracy = [str(c) for c in metrics.get_row("evaluate · test/accuracy")]
        best = accuracy[3:]
        assert "★" in best[[COMPLETED_MULTI, COMPLETED_TINY].index(COMPLETED_TINY)]
        assert sum("★" in cell for cell in best) == 1
        loss = [str(c) for c in metrics.get_row("finetune · train/loss")]
        assert loss[2] == "↓"
        chart = screen.query_one("#compare-chart", MetricChart)
        assert set(chart.series) == {COMPLETED_TINY, COMPLETED_MULTI}
        diff = screen.query_one("#config-diff", DataTable)
        keys = [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]
        assert keys == ["stages.0.epochs", "stages.0.lr"]
        await pilot.press("t")
        await wait_for(pilot, lambda: chart.xlabel == "epoch (whole run)")
        await pilot.press("t")
        await wait_for(pilot, lambda: chart.xlabel == "seconds since start")


async def test_sql_runs_a_query_and_remembers_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        editor = screen.query_one("#editor", TextArea)
        editor.load_text("SELECT run_id, headline_value FROM runs ORDER BY run_id")
        await pilot.press("ctrl+r")
        results = screen.query_one("#results", DataTable)
        await wait_for(pilot, lambda: results.row_count == 5)
        assert str(results.get_cell_at((0, 0))) == COMPLETED_TINY
        status = str(screen.query_one("#sql-status", Static).render())
        assert status.startswith("5 rows in") and "ctrl+g" in status
        history = seeded_project / ".tuneboard" / "sql_history.json"
        await wait_for(pilot, history.exists)
        assert stat.S_IMODE(history.stat().st_mode) == 0o600
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.screen.query("#result-chart"))
        chart = app.screen.query_one("#result-chart", MetricChart)
        assert chart.points == 2  # the runs that have a headline value
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_sql_refuses_writes_shows_errors_and_cancels(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        screen.query_one("#editor", TextArea).load_text("DELETE FROM runs")
        await pilot.press("ctrl+r")
        status = screen.query_one("#sql-status", Static)
        assert "only read statements are allowed" in str(status.render())
        assert status.has_class("error-banner")
        screen.query_one("#editor", TextArea).load_text("SELECT * FROM nosuchtable")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "nosuchtable" in str(status.render()))
        assert len(app.store.list_runs()) == 5

        # A long query is cancelled with escape, and the screen stays usable.
        long_query = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"
        screen.query_one("#editor", TextArea).load_text(long_query)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "running" in str(status.render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: "cancelled" in str(status.render()), timeout=20)


async def test_delete_asks_then_removes_the_run_and_its_folder(
    seeded_project: Path, make_app: AppFactory
) -> None:
    folder = seeded_project / ".tuneboard" / "runs" / COMPLETED_MULTI
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"0")
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)
        table = runs_table(app)
        table.move_cursor(row=table.get_row_index(RUNNING_TINY))
        await pilot.press("d")  # an active run is refused
        assert isinstance(app.screen, RunsScreen)
        table.move_cursor(row=table.get_row_index(COMPLETED_MULTI))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        assert runs_table(app).row_count == 5
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: runs_table(app).row_count == 4)
        assert not folder.exists()
        assert COMPLETED_MULTI not in cell_texts(runs_table(app), "run")


async def test_plugins_lists_built_ins_and_failures(
    seeded_project: Path, make_app: AppFactory
) -> None:
    plugins = seeded_project / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("raise RuntimeError('no good')\n")
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        table = app.screen.query_one("#plugins", DataTable)
        assert "builtin_stages" in [str(table.get_cell_at((i, 0))) for i in range(table.row_count)]
        failures = str(app.screen.query_one("#failures", Static).render())
        assert "broken" in failures and "RuntimeError: no good" in failures


async def test_launch_form_shows_errors_inline_and_refuses_to_launch(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        from tuneboard.tui.screens.launch import LaunchScreen

        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        screen.query_one("#experiment", Select).value = "tiny"
        await wait_for(pilot, lambda: screen.form_ready == "tiny")
        editor = await screen.editor("stages.0.epochs")
        assert isinstance(editor, Input) and editor.value == "8"
        editor.value = "many"
        await pilot.pause()
        assert "stages.0.epochs" in screen.errors
        assert "must be an integer" in screen.errors["stages.0.epochs"]
        await pilot.press("ctrl+l")
        banner = str(screen.query_one("#form-error", Static).render())
        assert "stages.0.epochs" in banner
        editor.value = "2"
        await pilot.pause()
        assert not screen.errors
        screen.query_one("#grid-key", Select).value = "stages.0.lr"
        screen.query_one("#grid-values", Input).value = "0.01, lots"
        await pilot.press("ctrl+l")
        banner = str(screen.query_one("#form-error", Static).render())
        assert "lots" in banner and not app.engine.active()


async def test_a_failing_worker_becomes_a_notification(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count == 5)

        def broken() -> None:
            raise RuntimeError("the disk is on fire")

        app.store.list_runs = broken  # type: ignore[method-assign, assignment]
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        screen.request_refresh()
        await wait_for(pilot, lambda: any("on fire" in str(n.message) for n in app._notifications))
        assert app.is_running and runs_table(app).row_count == 5
