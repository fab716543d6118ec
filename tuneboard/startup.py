"""Ctrl-C while the `tuneboard` program starts: one line, exit 130, no traceback.

Imported first by the `tuneboard` package, so the handler is in place before anything slow
loads. It does nothing when another program (a test runner, a plugin's tests) imports the
package. The CLI's `main` hands Ctrl-C back to Python's default once a command starts.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType


def cancel_start_up(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler while the program starts: say so and exit 130."""
    sys.stderr.write("\ncancelled\n")
    sys.stderr.flush()
    raise SystemExit(130)


def started_as_command() -> bool:
    """True in the `tuneboard` program (the script, `python -m tuneboard` or
    `python -m tuneboard.cli`), not when another program imports this package."""
    argv = getattr(sys, "orig_argv", sys.argv)
    return Path(sys.argv[0]).name == "tuneboard" or argv[1:3] in (
        ["-m", "tuneboard"],
        ["-m", "tuneboard.cli"],
    )


if started_as_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, cancel_start_up)
