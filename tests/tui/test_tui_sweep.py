"""Launching an experiment that has a sweep from the app's form runs its sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Static

from tests.tui.conftest import AppFactory, open_launch, wait_for
from tuneboard.tui.screens.launch import LaunchScreen
from tuneboard.tui.screens.runs import RunsScreen

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


async def set_field(screen: LaunchScreen, key: str, value: str) -> None:
    editor = await screen.editor(key)
    assert isinstance(editor, Input)
    editor.value = value


async def test_the_form_launches_the_sweep(sentiment_project: Path, make_app: AppFactory) -> None:
    app = make_app(sentiment_project, fixed_clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app, "tiny")
        assert not screen.query_one("#sweep-row").display  # no sweep: no sweep row
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))

        screen = await open_launch(pilot, app, "tiny_sweep")
        assert screen.query_one("#sweep-row").display
        note = str(screen.query_one("#sweep-note", Static).render())
        assert "grid over stages.0.lr (2 values) x 2 seeds: 4 runs" in note
        # Copies and a sweep don't mix: the form says so and launches nothing.
        screen.query_one("#copies", Input).value = "2"
        await pilot.press("ctrl+l")
        banner = screen.query_one("#form-error", Static)
        await wait_for(pilot, lambda: "runs its sweep" in str(banner.render()))
        assert app.store.list_runs() == []
        screen.query_one("#copies", Input).value = "1"
        await set_field(screen, "stages.0.max_steps", "2")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), timeout=60)
        # The runs are queued with their sweep id at once (they train in the background).
        await wait_for(pilot, lambda: len(app.store.list_runs()) == 4, timeout=60)
        runs = app.store.list_runs()
        assert len({run.sweep_id for run in runs}) == 1 and runs[0].sweep_id
        combos = {(r.config["stages"][0]["lr"], r.config["seed"]) for r in runs}
        assert combos == {(0.01, 1), (0.01, 2), (0.003, 1), (0.003, 2)}
        assert {r.config["stages"][0]["max_steps"] for r in runs} == {2}

        # Unticking the sweep launches the experiment once, like --no-sweep.
        screen = await open_launch(pilot, app, "tiny_sweep")
        screen.query_one("#use-sweep", Checkbox).value = False
        await set_field(screen, "stages.0.max_steps", "1")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: len(app.store.list_runs()) == 5, timeout=60)
        newest = app.store.list_runs()[0]
        assert newest.sweep_id is None and newest.config["stages"][0]["max_steps"] == 1
