"""A project plugin for the log tests: a stage that prints, warns and logs while its run runs.

`chatty` waits (up to a minute) until `together` runs have reached it, so concurrent runs
write at the same time; then prints `lines` lines tagged with its `tag` (one of them from a
thread it starts), a warning and a logging record; then waits for `stop_file` to exist, if
given, and prints a last line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tuneboard import PipelineState, Stage, StageContext, hookimpl, param

_arrived = threading.Condition()
_count = 0


@dataclass
class ChattyParams:
    """Parameters of `chatty`."""

    tag: str = param("x", "Text in every line")
    lines: int = param(3, "Lines to print", min=0)
    together: int = param(1, "Runs to wait for before printing", min=1)
    stop_file: str = param("", "Wait for this file before the last line (empty: do not wait)")


class Chatty(Stage[ChattyParams]):
    """Prints, warns and logs."""

    name = "chatty"
    Params = ChattyParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Write the lines, then hand the state on unchanged."""
        global _count
        p = self.params
        with _arrived:
            _count += 1
            _arrived.notify_all()
            _arrived.wait_for(lambda: _count >= p.together, timeout=60)
        for i in range(p.lines):
            print(f"{p.tag} line {i}")
        helper = threading.Thread(target=lambda: print(f"{p.tag} from a helper thread"))
        helper.start()
        helper.join()
        sys.stderr.write(f"{p.tag} on stderr\n")
        warnings.warn(f"{p.tag} is deprecated", UserWarning, stacklevel=1)
        logging.getLogger("chatty.plugin").warning("%s logged", p.tag)
        while p.stop_file and not Path(p.stop_file).exists():
            ctx.check_stop()
            time.sleep(0.05)
        print(f"{p.tag} done")
        return state


@hookimpl
def register_stages(register):  # type: ignore[no-untyped-def]
    """Register `chatty`."""
    register(Chatty)
