"""The Logs tab of Run detail: a run's lines followed live, searched with `/`, escapes shown
as text. Seeded rows, no training."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import RichLog, TabbedContent

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import HOSTILE, T0
from tuneboard.config import load_project
from tuneboard.store import Store
from tuneboard.testing import ThrowawayProject
from tuneboard.tui.logs import LogSearch, LogView
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.ui.safe import visible

RUN = "20260101-120000-logs"


def _screen_lines(view: LogView) -> list[str]:
    return [strip.text for strip in view.query_one(RichLog).lines]


async def test_logs_follow_new_lines_and_search_filters_them(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    database = load_project(sentiment_project).database
    with Store(database) as store:
        store.create_run(RUN, "exp", {"stages": []}, at=T0)
        store.set_run_status(RUN, "running", device="cpu", at=T0 + 1)
        store.log_output(RUN, 0, 0, "stdout", "info", "", "epoch 1 done", at=T0 + 2)
        store.log_output(
            RUN, 0, 1, "logging", "warning", "transformers", "slow tokenizer", at=T0 + 3
        )
        store.log_output(RUN, 0, 2, "stdout", "info", "", HOSTILE, at=T0 + 4)
    app = make_app(sentiment_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DetailScreen(RUN))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        view = screen.query_one(LogView)
        await wait_for(pilot, lambda: len(view.rows) == 3)
        screen.query_one("#tabs", TabbedContent).active = "logs-tab"
        await wait_for(pilot, lambda: len(_screen_lines(view)) == 3)
        lines = _screen_lines(view)
        assert lines[0].endswith("stdout  epoch 1 done")
        assert "warning transformers  slow tokenizer" in lines[1]
        assert lines[2].endswith(visible(HOSTILE)) and "\x1b" not in "".join(lines)

        # a line written while the screen is open shows up
        with Store(database) as store:
            store.log_output(RUN, 1, 3, "stdout", "info", "", "epoch 2 done")
        await wait_for(pilot, lambda: len(_screen_lines(view)) == 4)
        assert _screen_lines(view)[3].endswith("epoch 2 done")

        await pilot.press("slash")
        search = view.query_one(LogSearch)
        assert search.has_focus
        await pilot.press(*"EPOCH")
        await wait_for(pilot, lambda: len(_screen_lines(view)) == 2)
        assert [row.message for row in view.shown_rows] == ["epoch 1 done", "epoch 2 done"]
        await pilot.press("enter")  # keeps the search, back to the lines
        assert not search.has_focus and len(_screen_lines(view)) == 2
        await pilot.press("slash", "escape")  # clears it; the screen stays
        await wait_for(pilot, lambda: len(_screen_lines(view)) == 4)
        assert app.screen is screen and view.needle == ""


async def test_a_run_launched_in_the_app_shows_its_prints_in_the_logs_tab(
    tuneboard_project: ThrowawayProject, make_app: AppFactory
) -> None:
    # Textual replaces sys.stdout while the app runs: the run's prints must still be kept.
    plugin = Path(__file__).resolve().parent.parent / "integration" / "log_plugins.py"
    tuneboard_project.add_plugin_file(plugin, name="chatty")
    toml = '[project]\nname = "throwaway"\ndevices = ["cpu"]\n\n'
    toml += tuneboard_project.experiment_toml("talk", [{"plugin": "chatty", "tag": "APP"}])
    (tuneboard_project.root / "tuneboard.toml").write_text(toml, encoding="utf-8")
    app = make_app(tuneboard_project.root, fixed_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:

        def launch() -> str:
            engine = app.engine
            return engine.launch(engine.prepare(app.project.experiment("talk", app.registry)))

        run_id = await asyncio.to_thread(launch)
        await app.push_screen(DetailScreen(run_id))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        view = screen.query_one(LogView)
        await wait_for(pilot, lambda: any(r.message == "APP done" for r in view.rows), 120)
        messages = [row.message for row in view.rows]
        assert messages[:3] == ["APP line 0", "APP line 1", "APP line 2"]
        assert "APP logged" in messages
