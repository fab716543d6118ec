"""Keys while typing: in a text box letters and digits are text, F1-F3 and ctrl+q always work,
escape leaves the box, and the footer shows those keys while the box has the focus."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, TextArea
from textual.widgets._footer import FooterKey

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.plugins import PluginsScreen
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.tui.screens.sql import SqlScreen


def footer(app: TuneboardApp) -> dict[str, str]:
    """The keys the footer shows, with their labels (a grouped key's label is the group's)."""
    return {key.key: key.description for key in app.screen.query(FooterKey)}


async def test_the_sql_editor_types_digits_and_its_footer_says_which_keys_work(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        editor = screen.query_one("#editor", TextArea)
        await wait_for(pilot, lambda: editor.has_focus and "f1" in footer(app))
        editor.load_text("")
        await pilot.press("1", "2", "3", "q")
        assert editor.text == "123q" and isinstance(app.screen, SqlScreen)
        keys = footer(app)
        assert keys["escape"] == "Leave editor" and keys["ctrl+q"] == "Quit"
        assert {"f1", "f2", "f3", "ctrl+r"} <= set(keys)
        assert not {"1", "2", "3", "q"} & set(keys)

        # Out of the editor the screen keys are back, in the footer too, and F-keys hide.
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.query_one("#results", DataTable).has_focus)
        await wait_for(pilot, lambda: "1" in footer(app))
        keys = footer(app)
        assert {"1", "2", "3", "q", "ctrl+r"} <= set(keys) and keys["escape"] == "Editor"
        assert not {"f1", "f2", "f3", "ctrl+q"} & set(keys)
        await pilot.press("escape")
        await wait_for(pilot, lambda: editor.has_focus)

        # F-keys work from inside the editor; 1 works from the results.
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, PluginsScreen))
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen) and editor.has_focus)
        await pilot.press("escape", "1")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_the_plugins_install_line_keeps_a_footer_and_escape_leaves_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, PluginsScreen))
        screen = app.screen
        table = screen.query_one("#plugins", DataTable)
        line = screen.query_one("#plugin-target", Input)
        await pilot.press("i")
        await wait_for(pilot, lambda: line.has_focus and "escape" in footer(app))
        keys = footer(app)
        assert keys["enter"] == "Install" and keys["escape"] == "Back"
        assert {"f1", "f2", "f3", "ctrl+q"} <= set(keys)
        await pilot.press("u", "3")  # text here, not Uninstall nor a view
        assert line.value == "u3" and isinstance(app.screen, PluginsScreen)

        await pilot.press("escape")
        await wait_for(pilot, lambda: table.has_focus)
        assert line.value == "u3"  # kept for when you come back
        await wait_for(pilot, lambda: {"i", "u", "1", "q"} <= set(footer(app)))
        line.value = ""  # `i` installs what the line holds, else moves there
        await pilot.press("i")
        await wait_for(pilot, lambda: line.has_focus)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
