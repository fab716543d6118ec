"""Fixtures for the app's tests: a seeded sample project, the app on it, and waiting helpers."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from tests.tui.seed import NOW, seed_database
from tuneboard.config import load_project
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.launch import LaunchScreen


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Show times in UTC, so screens look the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def seeded_project(sentiment_project: Path) -> Path:
    """The sentiment sample project with a database of made-up runs (fixed ids and times)."""
    seed_database(sentiment_project)
    return sentiment_project


AppFactory = Callable[..., TuneboardApp]


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    """Build the app on a project folder; stops its runs and closes its store afterwards."""
    apps: list[TuneboardApp] = []

    def make(project_dir: Path, *, fixed_clock: bool = True, **kwargs: object) -> TuneboardApp:
        if fixed_clock:
            kwargs.setdefault("clock", lambda: NOW)
        app = TuneboardApp(load_project(project_dir), **kwargs)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close_services()


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 10.0
) -> None:
    """Let the app run until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        await pilot.pause(0.05)


async def open_launch(
    pilot: Pilot[None], app: TuneboardApp, experiment: str | None = None
) -> LaunchScreen:
    """Open the launch form (`n`), on `experiment` if given, once every field is mounted."""
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
    screen = app.screen
    assert isinstance(screen, LaunchScreen)
    if experiment is not None:
        screen.query_one("#experiment", Select).value = experiment
    await wait_for(pilot, lambda: screen.form_ready == (experiment or screen.experiment))
    return screen


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """Train on one thread: tiny models gain nothing from more on a shared 2-core machine."""
    from tests.helpers import one_torch_thread

    with one_torch_thread():
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in a fresh event loop (no async plugin needed)."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(function(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
