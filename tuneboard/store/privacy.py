"""Files only their owner can read: the database, its write-ahead log and the run folders."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_users = 0
_saved = 0


@contextmanager
def private_files() -> Iterator[None]:
    """Create files and folders for the owner only (umask 077) while the block runs.

    Some files are created by code tuneboard does not control: DuckDB makes the `.wal` file
    on the first write after opening, `mkdir(parents=True)` ignores `mode` for parents. The
    umask is process-wide, so overlapping uses (from any thread) share one change and the
    original comes back when the last one leaves; meanwhile other threads' new files are
    private too, which errs on the safe side.
    """
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = os.umask(0o077)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                os.umask(_saved)
