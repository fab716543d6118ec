"""The garbage collector's pauses: nested pauses, start-up's end (a freeze), and the launch
form, which pauses it while it builds and never leaves it paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Select

from tests.tui.conftest import AppFactory, open_launch, wait_for
from tuneboard.tui import collector
from tuneboard.tui.screens.launch import LaunchScreen


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """Leave the process's collector as it was: on, nothing frozen."""
    yield
    gc.unfreeze()
    gc.enable()


def test_pauses_nest_and_the_collector_runs_again_after_the_last() -> None:
    collector.pause()
    collector.pause()
    assert not gc.isenabled()
    collector.resume()
    assert not gc.isenabled()  # one pause is still on
    collector.resume()
    assert gc.isenabled()
    collector.resume()  # one too many: ignored
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()


async def test_startup_ends_frozen_and_collecting_once_the_app_has_loaded(
    seeded_project: Path, make_app: AppFactory
) -> None:
    collector.pause_for_startup()
    collector.pause_for_startup()  # once only
    assert not gc.isenabled()
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.services_ready and gc.isenabled(), timeout=30)
        assert gc.get_freeze_count() > 0
    collector.end_startup()  # a second end changes nothing
    assert gc.isenabled()


async def test_the_launch_form_leaves_the_collector_running(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_launch(pilot, app)
        assert gc.isenabled()
        screen.query_one("#experiment", Select).value = "iterative"  # another build
        await wait_for(pilot, lambda: screen.form_ready == "iterative")
        assert gc.isenabled()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
        assert gc.isenabled()
