"""Import the modules of the screens that keys open ahead of time, in a background thread.

Importing one (its widgets, its CSS) took 0.05-0.15 s, which the first key that opened it
waited for on the UI thread.
"""

from __future__ import annotations

import importlib

SCREEN_MODULES = (
    "tuneboard.tui.screens.launch",
    "tuneboard.tui.screens.detail",
    "tuneboard.tui.screens.compare",
    "tuneboard.tui.screens.sql",
    "tuneboard.tui.screens.plugins",
    "tuneboard.tui.screens.queue",
    "tuneboard.tui.screens.sweep",
)
"""The screens that keys open: imported ahead, in a background thread (each took 0.05-0.15 s,
which the first key that opened one waited for on the UI thread)."""


def import_screens() -> None:
    """Import `SCREEN_MODULES` now (call from a background thread; imports are thread-safe)."""
    for name in SCREEN_MODULES:
        importlib.import_module(name)
