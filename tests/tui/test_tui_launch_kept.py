"""The launch form: built once, a screenful first and the rest after; shown again with the
experiment's values afresh (on another experiment when asked for one); a theme change still
reaches it; fields are drawn as text until edited, and a launch asked for before every field
is mounted runs at once on the starting values of those not edited."""

from __future__ import annotations

from pathlib import Path

from textual.color import Color
from textual.widgets import Input, Select, Static

from tests.tui.conftest import AppFactory, open_launch, wait_for
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.launch import ROWS_PER_BATCH, LaunchScreen
from tuneboard.tui.widgets.field_preview import FieldList, FieldPreview


async def editor_of(screen: LaunchScreen, key: str) -> Input:
    editor = await screen.editor(key)
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
        fields = sum(len(section.fields) for section in screen.sections)
        assert fields > ROWS_PER_BATCH
        assert 0 < len(screen.query(FieldPreview)) < fields  # the rest come after
        await wait_for(pilot, lambda: screen.form_ready == "iterative")
        assert len(screen.query(FieldPreview)) == fields
        assert not screen.widgets  # nothing edited: no editor built


async def test_a_field_becomes_its_editor_when_it_takes_the_focus(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app, "tiny")
        first, second = screen.sections[0].fields[:2]  # seed, max_length
        await pilot.press("tab")  # from the experiment picker to the first field
        await wait_for(pilot, lambda: isinstance(app.focused, Input))
        await pilot.press("tab")
        await wait_for(pilot, lambda: len(screen.widgets) == 2)
        focused = app.focused
        assert isinstance(focused, Input)
        assert screen.widgets[focused.id or ""][0] is second
        assert focused.value == second.initial_text
        await pilot.press("9")  # Input selects its text as it takes the focus
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: screen.widgets.get(str(app.focused and app.focused.id)))
        assert screen.widgets[str(app.focused and app.focused.id)][0] is first
        assert screen.overrides() == [f"{second.key}=9"]
        assert (
            len(screen.query(FieldPreview))
            == sum(len(section.fields) for section in screen.sections) - 2
        )


async def test_a_launch_asked_for_while_fields_mount_runs_at_once(
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
        screen.action_launch()  # fields not mounted yet hold their starting values
        assert banner.display
        assert "copies must be a whole number" in str(banner.render())


async def test_the_form_is_kept_and_shown_again_afresh_or_switched_when_asked(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app, "tiny")
        (await editor_of(screen, "stages.0.epochs")).value = "3"
        screen.query_one("#copies", Input).value = "x"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))

        again = await open_launch(pilot, app)
        assert again is screen  # kept, not built again
        assert again.experiment == "tiny"
        assert (await editor_of(again, "stages.0.epochs")).value == "8"  # tuneboard.toml's value
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
        fields = screen.query_one(FieldList)
        value = fields.part_style("field-preview--value").background
        assert value is not None and value.brightness > 0.5  # fields not edited follow it


async def test_the_keys_help_shown_over_the_form_keeps_what_was_typed(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_launch(pilot, app, "tiny")
        (await editor_of(screen, "stages.0.epochs")).value = "3"
        app.action_show_keys()
        await wait_for(pilot, lambda: app.screen is not screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.is_current)
        await pilot.pause()
        assert (await editor_of(screen, "stages.0.epochs")).value == "3"


def screen_lines(app: TuneboardApp, top: int, height: int) -> list[str]:
    strips = app.screen._compositor.render_strips()
    return [strip.text.rstrip() for strip in strips[top : top + height]]


async def test_a_field_drawn_as_text_looks_like_the_row_that_replaces_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 40)) as pilot:
        screen = await open_launch(pilot, app, "tiny")
        # An input whose help wraps at 80 columns, a switch and a select.
        for name in ("max_steps", "group_by_length", "scheduler"):
            preview = next(p for p in screen.query(FieldPreview) if p.field_name == name)
            top, height = preview.region.y, preview.region.height
            assert name != "max_steps" or height == 2
            drawn = screen_lines(app, top, height)
            preview.focus()
            await wait_for(pilot, lambda: not preview.is_attached)  # noqa: B023
            await pilot.pause()
            assert screen_lines(app, top, height) == drawn
