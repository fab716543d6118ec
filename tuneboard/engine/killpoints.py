"""Named moments in a run's life where the fault-injection tests kill the process.

With ``TUNEBOARD_KILL_AT=<point>`` in its environment (a point name, with ``:<key>`` where the
point has one: ``handoff.written:1``, ``train.step:2/5``), a process kills itself with SIGKILL
when it reaches that point, exactly as ``kill -9`` from outside would, at a moment a test can
name instead of race. Unset (always, outside the tests), `reached` costs one dictionary
lookup. In-process tests set `on_kill` to simulate the crash without losing the test process.

The points, in the order a run meets them (``<row>`` is the stage row, ``<step>`` the
optimizer step):

- ``run.created``: the run's row is committed; its id is about to be shown;
- ``resume.claimed``: `tuneboard resume` took the run over, before it cleaned the database;
- ``run.started``: the run is running, its model not loaded yet;
- ``run.loaded``: the model is loaded (or restored from a handoff);
- ``stage.started:<row>``: the stage's row is recorded, the stage not run yet;
- ``train.step:<row>/<step>``: a training step was taken and logged (mid-epoch);
- ``checkpoint.writing:<row>/<step>``: a resume checkpoint's files are written, not renamed;
- ``checkpoint.written:<row>/<step>``: the checkpoint is in place, the older one not removed;
- ``stage.returned:<row>``: the stage returned, its handoff not written yet;
- ``handoff.written:<row>``: the handoff is on disk, the stage's completion not recorded;
- ``stage.finished:<row>``: the stage's completion is recorded (maybe not committed);
- ``run.completing``: every stage is done, the run's status not set yet;
- ``run.completed``: the run's completion is recorded (maybe not committed).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

ENV = "TUNEBOARD_KILL_AT"


def _sigkill(point: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


on_kill: Callable[[str], None] = _sigkill
"""What happens at the named point: SIGKILL to this process (tests may simulate it)."""


def reached(point: str, key: object = None) -> None:
    """Kill the process here when ``TUNEBOARD_KILL_AT`` names this point (and key)."""
    wanted = os.environ.get(ENV)
    if wanted and wanted == (point if key is None else f"{point}:{key}"):
        on_kill(wanted)
