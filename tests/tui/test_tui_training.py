"""The app driving real (tiny) training runs: launch from the form, watch, re-launch, quit."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.store import Store
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.launch import LaunchScreen
from tuneboard.tui.screens.runs import RunsScreen

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]

EXPLODE = """\
from tuneboard import Stage, hookimpl

class Explode(Stage):
    name = 'explode'

    def run(self, ctx, state):
        raise ValueError('the stage blew up on purpose')

@hookimpl
def register_stages(register):
    register(Explode)
"""


def statuses(app: TuneboardApp) -> list[str]:
    return [run.status for run in app.store.list_runs()]


async def launch_tiny(app: TuneboardApp, pilot: Pilot[None], **fields: str) -> None:
    """Open the launch form (n), pick `tiny`, set fields by key, and launch with ctrl+l."""
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
    screen = app.screen
    assert isinstance(screen, LaunchScreen)
    screen.query_one("#experiment", Select).value = "tiny"
    await wait_for(pilot, lambda: screen.form_ready == "tiny")
    for key, value in fields.items():
        editor = await screen.editor(key)
        assert isinstance(editor, Input)
        editor.value = value
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), timeout=60)


async def test_launch_watch_relaunch_and_quit(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sentiment_project, fixed_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await launch_tiny(app, pilot, **{"stages.0.epochs": "1", "stages.0.max_steps": "8"})
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await wait_for(pilot, lambda: statuses(app) == ["completed"], timeout=180)
        await wait_for(pilot, lambda: "completed" in str(table.get_cell_at((0, 1))))
        [run] = app.store.list_runs()
        assert run.config["stages"][0]["epochs"] == 1
        assert run.config["stages"][0]["max_steps"] == 8
        assert run.headline == "test/accuracy" and run.headline_value is not None

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await wait_for(pilot, lambda: {"loss", "accuracy", "lr"} <= set(detail.charts))
        await wait_for(pilot, lambda: detail.charts["loss"].points >= 8)
        assert "val/accuracy" in detail.charts["accuracy"].series

        await pilot.press("r")  # re-launch with the same config (8 steps: done in a moment)
        await wait_for(pilot, lambda: statuses(app) == ["completed", "completed"], timeout=180)
        again, first = app.store.list_runs()
        assert again.run_id != first.run_id and again.config == first.config

        await pilot.press("escape")
        # Long enough to be still running when the app quits.
        await launch_tiny(app, pilot, **{"stages.0.epochs": "500", "stages.0.patience": "500"})
        await wait_for(pilot, lambda: statuses(app)[0] == "running", timeout=120)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, timeout=120)
    app.store.close()
    with Store(sentiment_project / ".tuneboard" / "tuneboard.duckdb", read_only=True) as store:
        assert [run.status for run in store.list_runs()] == ["cancelled", "completed", "completed"]


async def test_a_failing_stage_shows_its_error(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "explode.py").write_text(EXPLODE)
    with (sentiment_project / "tuneboard.toml").open("a") as toml:
        toml.write('\n[[experiments.tiny.stages]]\nplugin = "explode"\n')
    app = make_app(sentiment_project, fixed_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await launch_tiny(app, pilot, **{"stages.0.epochs": "1", "stages.0.max_steps": "2"})
        await wait_for(pilot, lambda: statuses(app) == ["failed"], timeout=180)
        # The table polls on its own clock: open the run once the table shows it failed.
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await wait_for(pilot, lambda: "failed" in str(table.get_cell_at((0, 1))))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
        banner = app.screen.query_one("#error", Static)
        await wait_for(pilot, lambda: banner.display)
        text = str(banner.render())
        assert "✗ failed" in text and "ValueError: the stage blew up on purpose" in text
        assert any("blew up" in str(n.message) for n in app._notifications)
