"""Saved views on the Runs screen: saved from the filters, sort and columns, switched with `w`,
and a views file with bad SQL reported in one line while the app keeps running."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select, Static

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import (
    CANCELLED_BASE,
    COMPLETED_MULTI,
    COMPLETED_TINY,
    FAILED_TINY,
    RUNNING_TINY,
)
from tests.tui.test_tui_help import palette
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.dialogs import TextPrompt
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.tui.views import ViewPicker
from tuneboard.ui.views import read_views


def runs_screen(app: TuneboardApp) -> RunsScreen:
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    return screen


def shown(app: TuneboardApp) -> list[str]:
    return list(runs_screen(app).shown)


def columns(app: TuneboardApp) -> list[str]:
    table = runs_screen(app).query_one("#runs", DataTable)
    return [str(column.value) for column in table.columns]


def summary(app: TuneboardApp) -> str:
    return str(runs_screen(app).query_one("#summary", Static).render())


async def pick_view(app: TuneboardApp, pilot: Pilot[None], name: str) -> None:
    """`w`, then the view named `name` ("" for every run)."""
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, ViewPicker))
    options = app.screen.query_one(OptionList)
    index = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == name
    )
    options.highlighted = index
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_save_a_view_and_switch_between_views(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 5)
        screen = runs_screen(app)
        screen.query_one("#status", Select).value = "completed"
        while screen.sort_column != "headline":
            await pilot.press("s")
        await wait_for(pilot, lambda: shown(app) == [COMPLETED_TINY, COMPLETED_MULTI])

        await pilot.press("W")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press(*"done", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        views, errors = read_views(seeded_project / "views.toml", ["status", "headline"])
        assert errors == [] and list(views) == ["done"]
        assert "status = 'completed'" in views["done"].where
        assert views["done"].order_by.startswith("headline_value DESC")
        # The view is on: the filters are in it now, the rows are the same, in its order.
        await wait_for(pilot, lambda: "view done" in summary(app))
        assert shown(app) == [COMPLETED_TINY, COMPLETED_MULTI]
        assert screen.query_one("#status", Select).value == "*"
        assert "view done" in summary(app) and "in the view's order" in summary(app)

        await pick_view(app, pilot, "")
        await wait_for(pilot, lambda: len(shown(app)) == 5)
        assert "view" not in summary(app)

        # Another view, written by hand: its own order and columns.
        with (seeded_project / "views.toml").open("a") as file:
            file.write(
                "\n[views.oldest]\n"
                "where = \"status <> 'running'\"\n"
                "order_by = 'created_at'\n"
                "columns = ['status', 'run']\n"
            )
        await pick_view(app, pilot, "oldest")
        expected = [COMPLETED_TINY, COMPLETED_MULTI, FAILED_TINY, CANCELLED_BASE]
        await wait_for(pilot, lambda: shown(app) == expected)
        assert columns(app) == ["sel", "status", "run"]
        # The screen's own sort takes over from the view's order; the view's filter stays.
        await pilot.press("S")
        await wait_for(pilot, lambda: shown(app) == expected[::-1] or "sorted by" in summary(app))
        assert RUNNING_TINY not in shown(app) and "sorted by" in summary(app)

        await pick_view(app, pilot, "done")
        await wait_for(pilot, lambda: shown(app) == [COMPLETED_TINY, COMPLETED_MULTI])
        assert len(columns(app)) == 9

        # From the command palette, on another screen.
        await pick_view(app, pilot, "")
        await pilot.press("2")
        await palette(app, pilot, "view oldest", "Show view oldest")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await wait_for(pilot, lambda: shown(app) == expected)


async def test_a_view_with_bad_sql_is_reported_in_one_line(
    seeded_project: Path, make_app: AppFactory
) -> None:
    (seeded_project / "views.toml").write_text(
        "[views.typo]\n"
        "where = \"status = = 'failed'\"\n"
        "\n[views.unknown]\n"
        "where = 'no_such_column = 1'\n"
        "\n[views.writes]\n"
        "where = '1 = 1); DELETE FROM runs; SELECT (1'\n"
    )
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 5)
        await pick_view(app, pilot, "unknown")  # parses; the database refuses it
        messages = [str(n.message) for n in app._notifications]
        typo = [m for m in messages if "[views.typo]" in m]
        assert len(typo) == 1 and typo[0].startswith("views.toml: [views.typo]: key 'where': ")
        assert "\n" not in typo[0] and "Parser Error" in typo[0]
        writes = [m for m in messages if "[views.writes]" in m]
        assert writes and "only read statements are allowed" in writes[0]

        def unknown() -> list[str]:
            return [
                str(n.message) for n in app._notifications if "[views.unknown]" in str(n.message)
            ]

        await wait_for(pilot, lambda: unknown())
        [message] = unknown()
        assert message.startswith("views.toml: [views.unknown]: ") and "no_such_column" in message
        assert "\n" not in message
        # Back to every run; the app goes on.
        await wait_for(pilot, lambda: len(shown(app)) == 5)
        assert app.is_running and "view" not in summary(app)
        await pilot.press("slash", *"cccc")
        await wait_for(pilot, lambda: shown(app) == [FAILED_TINY])
        assert runs_screen(app).query_one("#filter", Input).value == "cccc"
        assert app.store.get_run(FAILED_TINY).status == "failed"  # nothing was deleted
