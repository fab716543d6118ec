"""Open the project's store in a background thread, starting now.

Importing duckdb and opening the file take a good part of the app's start-up. The app's
command starts this before it imports Textual, so that work overlaps Textual's import and
start instead of following them (see `tuneboard.cli.app`). This module imports nothing heavy
itself: duckdb is imported in the thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneboard.store.store import Store


class StoreOpening:
    """A `Store` being opened in a daemon thread; `wait()` gives it (or raises its error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store: Store | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._open, name="tuneboard-store-open", daemon=True).start()

    def _open(self) -> None:
        try:
            from tuneboard.store.store import Store

            self._store = Store(self.path)
        except BaseException as error:  # handed to whoever waits, as it is
            self._error = error
        finally:
            self._done.set()

    def wait(self) -> Store:
        """The open store, once it is; the opening's error if it failed.

        Only one caller gets the store (it owns it and closes it); a second call is a bug.
        """
        self._done.wait()
        with self._lock:
            if self._taken:
                raise RuntimeError("the store of this opening was already taken")
            self._taken = True
        if self._error is not None:
            raise self._error
        assert self._store is not None
        return self._store

    def discard(self) -> None:
        """Close the store unless somebody took it (waits for the opening to end)."""
        self._done.wait()
        with self._lock:
            if self._taken:
                return
            self._taken = True
        if self._store is not None:
            self._store.close()
