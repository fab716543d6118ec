"""When Python's cyclic garbage collector may run in the app.

A full collection walks every object the process holds: with Textual, DuckDB, the plugins
and a thousand runs loaded, 0.1-0.15 s on the UI thread each time. Starting the app set off
several, and so did building a big screen (a pipeline's launch form: three, 0.35 s of its
0.43 s). So the collector pauses while the app starts and while such a screen builds its
first frame, and runs again after.

When start-up ends, what it created is frozen (`gc.freeze`): the modules, the app and its
screens live as long as the process, and later collections no longer walk them. Objects are
still freed as usual when nothing refers to them; only reference cycles among those frozen
would stay, and start-up makes few.

Pauses nest (start-up may still be under way when a screen builds), and the collector runs
again once the last one ends, unless it was off before the first began.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_pauses = 0
_was_enabled = False
_startup_paused = False


def pause() -> None:
    """Hold the collector off until a matching `resume`."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1


def resume() -> None:
    """End one `pause`; the collector runs again when none is left (if it ran before)."""
    global _pauses
    with _lock:
        if _pauses == 0:
            return
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


def pause_for_startup() -> None:
    """Hold the collector off while the app starts (call before importing it)."""
    global _startup_paused
    with _lock:
        if _startup_paused:
            return
        _startup_paused = True
    pause()


def end_startup() -> None:
    """Start-up is over: freeze what it created and end its pause (if it paused)."""
    global _startup_paused
    with _lock:
        if not _startup_paused:
            return
        _startup_paused = False
        gc.freeze()
    resume()
