"""The launch form: built once, a screenful first and the rest after; shown again with the
experiment's values afresh (on another experiment when asked for one); a theme change still
reaches it; a launch asked for before every field is mounted waits for them."""

from __future__ import annotations

from pathlib import Path

from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.launch import ROWS_PER_BATCH, LaunchScreen


async def open_launch(pilot: Pilot[None], app: TuneboardApp) -> LaunchScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
    screen = app.screen
    assert isinstance(screen, LaunchScreen)
    await wait_for(pilot, lambda: screen.form_ready == screen.experiment)
    return screen


def editor_of(screen: LaunchScreen, key: str) -> Input:
    editor = next(w for f, w, _ in screen.widgets.values() if f.key == key)
    assert isinstance(editor, Input)
    return editor


async def test_a_big_form_shows_a_screenful_first_then_mounts_every_field(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await open_launch(pilot, app)
        screen.query_one("#experiment", Select).value = "iterative"  # ~100 fields
        await wait_for(pilot, lambda: screen.form_shown == "iterative")
        mounted = [w for _, w, _ in screen.widgets.values() if w.is_mounted]
        assert len(mounted) < len(screen.widgets)  # the rest come after the first frame
        assert len(screen.widgets) > ROWS_PER_BATCH
        await wait_for(pilot, lambda: screen.form_ready == "iterative")
        assert all(w.is_mounted for _, w, _ in screen.widgets.values())


async def test_a_launch_asked_for_while_fields_mount_waits_for_them(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await open_launch(pilot, app)
        screen.query_one("#copies", Input).value = "two"  # refused when the launch runs
        banner = screen.query_one("#form-error", Static)
        screen.query_one("#experiment", Select).value = "iterative"
        await wait_for(pilot, lambda: screen.form_shown == "iterative")
        assert screen.form_ready is None
        screen.action_launch()
        assert not banner.display  # nothing read from fields not mounted yet
        await wait_for(pilot, lambda: screen.form_ready == "iterative")
        await wait_for(pilot, lambda: banner.display)  # then the launch ran
        assert "copies must be a whole number" in str(banner.render())


async def test_the_form_is_kept_and_shown_again_afresh_or_switched_when_asked(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app)
        screen.query_one("#experiment", Select).value = "tiny"
        await wait_for(pilot, lambda: screen.form_ready == "tiny")
        editor_of(screen, "stages.0.epochs").value = "3"
        screen.query_one("#copies", Input).value = "x"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))

        again = await open_launch(pilot, app)
        assert again is screen  # kept, not built again
        assert again.experiment == "tiny"
        assert editor_of(again, "stages.0.epochs").value == "8"  # tuneboard.toml's value
        assert not again.errors
        assert again.query_one("#copies", Input).value == "1"

        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
        other = next(name for name in app.project.experiment_names if name != "tiny")
        app.open_launch(other)  # as from a run of `other` under the cursor
        await wait_for(pilot, lambda: screen.is_current and screen.form_ready == other)
        assert screen.query_one("#experiment", Select).value == other


async def test_a_theme_changed_while_the_form_is_hidden_reaches_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app)
        copies = screen.query_one("#copies", Input)
        dark = copies.styles.background
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
        app.theme = "textual-light"
        await pilot.pause()
        await open_launch(pilot, app)
        await wait_for(pilot, lambda: copies.styles.background != dark)
        assert isinstance(copies.styles.background, Color)
        assert copies.styles.background.brightness > 0.5


async def test_the_keys_help_shown_over_the_form_keeps_what_was_typed(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app)
        screen.query_one("#experiment", Select).value = "tiny"
        await wait_for(pilot, lambda: screen.form_ready == "tiny")
        editor_of(screen, "stages.0.epochs").value = "3"
        app.action_show_keys()
        await wait_for(pilot, lambda: app.screen is not screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.is_current)
        await pilot.pause()
        assert editor_of(screen, "stages.0.epochs").value == "3"
