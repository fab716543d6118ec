"""The app answers at once: no empty "0 of 0 runs" table before the first read, and a cancel
or a delete changes the row on screen before any later read of the store could."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from textual.widgets import DataTable, Static

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_MULTI, RUNNING_TINY
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.runs import RunsScreen

# Polls far apart: what a test sees right after a key press cannot come from a poll.
SLOW_POLLS = {"poll_interval": 600.0, "idle_poll_interval": 600.0}


def runs_screen(app: TuneboardApp) -> RunsScreen:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def summary(app: TuneboardApp) -> str:
    return str(runs_screen(app).query_one("#summary", Static).render())


def statuses(app: TuneboardApp) -> dict[str, str]:
    table = runs_screen(app).query_one("#runs", DataTable)
    return {str(key.value): str(table.get_cell(key, "status")) for key in table.rows}


async def test_the_table_says_loading_until_the_first_read_never_0_of_0(
    seeded_project: Path, make_app: AppFactory
) -> None:
    gate = threading.Event()
    app = make_app(seeded_project)
    opened = app._open_store

    def open_when_let(self: TuneboardApp = app) -> None:
        gate.wait(30)
        opened()

    app._open_store = open_when_let  # type: ignore[method-assign]
    seen: list[str] = []
    async with app.run_test(size=(120, 30)) as pilot:
        try:
            for _ in range(5):
                await pilot.pause()
                seen.append(summary(app))
            assert runs_screen(app).query_one("#runs", DataTable).row_count == 0
            assert set(seen) == {"loading runs…"}
        finally:
            gate.set()
        await wait_for(pilot, lambda: summary(app).startswith("5 of 5 runs"))


async def test_a_cancelled_run_shows_cancelling_at_once(
    seeded_project: Path, make_app: AppFactory
) -> None:
    # The seeded running run belongs to a process elsewhere: the store keeps it `running`
    # until that process stops it, so only the app's own bookkeeping can show the cancel.
    app = make_app(seeded_project, **SLOW_POLLS)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(statuses(app)) == 5)
        table = runs_screen(app).query_one("#runs", DataTable)
        table.move_cursor(row=table.get_row_index(RUNNING_TINY))
        await pilot.press("x")
        await pilot.pause()
        assert statuses(app)[RUNNING_TINY] == "□ cancelling"
        # The store still says running: the next reads keep showing the cancel asked for.
        runs_screen(app).request_refresh()
        await wait_for(pilot, lambda: app.store.cancel_requests([RUNNING_TINY]) == [RUNNING_TINY])
        await wait_for(pilot, lambda: not runs_screen(app)._loading)
        assert statuses(app)[RUNNING_TINY] == "□ cancelling"


async def test_a_deleted_run_leaves_the_table_at_once(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project, **SLOW_POLLS)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(statuses(app)) == 5)
        table = runs_screen(app).query_one("#runs", DataTable)
        table.move_cursor(row=table.get_row_index(COMPLETED_MULTI))
        await pilot.press("d", "y")
        await pilot.pause()
        assert COMPLETED_MULTI not in statuses(app)
        assert summary(app).startswith("4 of 4 runs")
        await wait_for(pilot, lambda: not app.store.runs_by_id([COMPLETED_MULTI]))
        runs_screen(app).request_refresh()
        await wait_for(pilot, lambda: not runs_screen(app)._loading)
        assert COMPLETED_MULTI not in statuses(app) and not runs_screen(app).pending.deleted


def test_the_runs_table_reads_the_store_without_pyarrow_or_numpy(seeded_project: Path) -> None:
    # They take ~0.2 s to import, which the first paint of the runs would wait for.
    code = (
        "import sys\n"
        "from tuneboard.config import load_project\n"
        "from tuneboard.store import Store\n"
        f"store = Store(load_project({str(seeded_project)!r}).database)\n"
        "assert len(store.list_runs()) == 5\n"
        "store.close()\n"
        "print(sorted(m for m in ('pyarrow', 'numpy', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
