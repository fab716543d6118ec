"""Build the app's other views once, while it is idle, so switching to them only shows them.

Textual builds a mode's screen the first time the app switches to it, and then re-reads the
whole stylesheet (the new screen and its widgets bring their CSS) and restyles every widget:
on a loaded machine a first switch took up to 2 s, and every later switch to a screen whose
styles were not brought up to date paid the re-read again. `install_modes` builds the screens
hidden, brings their styles up to date once, and leaves them suspended, as a switch away would.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterable
from typing import Any

from textual import events
from textual.app import App
from textual.screen import Screen

SCREEN_MODULES = (
    "tuneboard.tui.screens.launch",
    "tuneboard.tui.screens.detail",
    "tuneboard.tui.screens.compare",
    "tuneboard.tui.screens.sql",
    "tuneboard.tui.screens.plugins",
)
"""The screens that keys open: imported ahead, in a background thread (each took 0.05-0.15 s,
which the first key that opened one waited for on the UI thread)."""


def import_screens() -> None:
    """Import `SCREEN_MODULES` now (call from a background thread; imports are thread-safe)."""
    for name in SCREEN_MODULES:
        importlib.import_module(name)


async def install_modes(app: App[Any], modes: Iterable[str]) -> list[str]:
    """Build the screens of `modes` not built yet, hidden; return the modes built.

    Uses Textual's own mode set-up (`_init_mode`): the screen is composed and mounted, its
    CSS loaded, then it is suspended (it polls nothing while hidden) and its styles marked
    current, so the switch to it neither re-reads the stylesheet nor restyles the app.
    """
    built = []
    for mode in modes:
        if not app.is_running:
            break  # shutting down: a screen added now would change what Textual is closing
        if mode == app.current_mode or app._screen_stacks.get(mode):
            continue
        await app._init_mode(mode)
        screen = app._screen_stacks[mode][0]
        screen.post_message(events.ScreenSuspend())
        app.stylesheet.update(screen, animate=False)
        screen._css_update_count = app._css_update_count
        await settled(screen)
        built.append(mode)
    return built


async def settled(screen: Screen[Any], timeout: float = 2.0) -> None:
    """Wait until the widgets of a new screen have handled their pending messages (its first
    layout sends them events; closing the app before they are handled breaks some widgets)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = [screen, *screen.walk_children()]
        if all(node._message_queue.empty() for node in nodes):
            return
        await asyncio.sleep(0.01)
