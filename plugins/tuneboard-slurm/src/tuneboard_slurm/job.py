"""What a Slurm job runs: one tuneboard run, requeued and resumed when the job is preempted.

submitit pickles a `RemoteRun` and the run's `RemoteSpec` into the job's folder; on the node,
calling it starts ``python -m tuneboard.remote --spec SPEC`` with the job's stdout as its own,
so the run's records land in the job's output file, which the launching process follows.

Signals, as Slurm (and submitit's local cluster) send them:

- the preemption / time-limit signal (``USR2``, `--signal` of submitit's sbatch file) reaches
  submitit's handler, which calls `RemoteRun.checkpoint`: the run's process is killed (its last
  resume checkpoint is on disk) and the job is requeued with the spec's `resume` set, so the
  requeued job goes on from that checkpoint, under the same run id;
- ``SIGTERM`` comes before a preemption as well as with a plain ``scancel``: the run's process
  does not see it (blocked in the process), so a preempted run is not recorded as cancelled;
- ``SIGINT`` cancels: the executor sends it (``scancel --signal=INT``, or submitit's local
  cancel), the run stops cleanly between steps and records ``cancelled``.

A job that Slurm requeued by itself (``SLURM_RESTART_COUNT`` > 0: a node failure, or a
preemption in ``REQUEUE`` mode) resumes too. This module is pickled by value, so the nodes need
tuneboard and submitit, not this plugin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from tuneboard import RemoteSpec, remote_command

# Signals the run's process must not act on: the preemption signal is submitit's business, and
# SIGTERM does not tell a cancel from a preemption.
_SHIELDED = {signal.SIGTERM, signal.SIGUSR2}


class RemoteRun(Checkpointable):
    """The callable submitted for a run: runs it in a child process, requeued on preemption."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # the child process stays here; a requeued job starts its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._child = None

    def __call__(self, spec: RemoteSpec) -> int:
        """Run the spec's run to its end; return its process's exit status."""
        if not spec.resume and int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
            spec = dataclasses.replace(spec, resume=True)
        command = shlex.split(remote_command(sys.executable, spec))
        sys.stdout.flush()
        self._child = subprocess.Popen(command, stderr=subprocess.STDOUT, preexec_fn=_shield_child)
        previous = signal.signal(signal.SIGINT, self._cancel)
        try:
            return self._child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)

    def checkpoint(self, spec: RemoteSpec) -> DelayedSubmission:
        """Called by submitit on preemption or timeout: stop the run where its last checkpoint
        left it and requeue the job to go on from there."""
        child = self._child
        if child is not None:
            # Not child.wait(): this runs in a signal handler that interrupted that very call,
            # which holds the lock a second one would wait for.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        print(f"tuneboard-slurm: run {spec.run_id} requeued to resume", flush=True)
        return DelayedSubmission(RemoteRun(), dataclasses.replace(spec, resume=True))

    def _cancel(self, signum: int, frame: FrameType | None) -> None:
        if self._child is not None:  # not poll(): the same lock as wait()'s
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child.pid, signal.SIGINT)


def _shield_child() -> None:
    """In the child, before it starts Python: signals in `_SHIELDED` stay pending, unseen
    (a blocked signal stays blocked across exec; tuneboard.remote's handlers never run)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _SHIELDED)
