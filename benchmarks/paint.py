"""First paint seen from outside, as a user sees it: start a command in a pseudo-terminal
and time until the screen it writes shows a given text.

`tuneboard_paint` starts ``python -m tuneboard --project DIR`` (the app, through the same
command line code as the `tuneboard` script) and waits for the runs line ("1000 of 1000
runs"), which the app draws in the same frame as the table's rows. `floor_paint` does the
same for `floor_app`, the bare Textual + DuckDB app, so the two can be put side by side.

Python caches compiled modules as a user's Python does (``PYTHONDONTWRITEBYTECODE`` is
dropped), and each command runs once unmeasured first, to write that cache and warm the
file cache: the figures are those of a second start, not of the first after installing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import REPO

QUIT = b"\x11"  # ctrl+q


def time_to_text(
    command: Sequence[str],
    text: str,
    *,
    cwd: Path,
    python_path: Path,
    columns: int = 160,
    rows: int = 48,
    timeout: float = 30.0,
) -> float | None:
    """Seconds from starting `command` in a pty until its output holds `text`; None if it
    never does within `timeout`. The command is then asked to quit (ctrl+q), else killed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows), PYTHONPATH=str(python_path)
    )
    wanted = text.encode()
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command
        os.chdir(cwd)
        os.execvpe(command[0], list(command), env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    seen = b""
    found: float | None = None
    with contextlib.suppress(OSError):
        while found is None and time.perf_counter() - started < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            seen = seen[-len(wanted) :] + chunk
            if wanted in seen:
                found = time.perf_counter() - started
    _end(pid, fd)
    return found


def _end(pid: int, fd: int) -> None:
    """Ask the app to quit, drain its output until it does, kill it after 10 s."""
    with contextlib.suppress(OSError):
        os.write(fd, QUIT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        with contextlib.suppress(OSError):
            if select.select([fd], [], [], 0.05)[0]:
                os.read(fd, 1 << 16)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)


def runs_line(runs: int) -> str:
    """The text both apps show once the runs are on screen."""
    return f"{runs} of {runs} runs"


def tuneboard_paint(project: Path, runs: int, tree: Path | None = None) -> float | None:
    """First paint of the tuneboard app on `project` (of the checkout at `tree`, else this
    one), from starting the process to the runs on screen."""
    command = [sys.executable, "-m", "tuneboard", "--project", str(project)]
    return time_to_text(command, runs_line(runs), cwd=project, python_path=tree or REPO)


def floor_paint(project: Path, runs: int) -> float | None:
    """First paint of the bare Textual + DuckDB app (`floor_app`) on the same database."""
    command = [sys.executable, "-m", "benchmarks.floor_app", str(project)]
    return time_to_text(command, runs_line(runs), cwd=project, python_path=REPO)
