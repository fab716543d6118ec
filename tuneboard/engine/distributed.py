"""The launcher of a data-parallel run on this machine: one rank process per device.

A run with ``gpus = N`` gets N device slots together, and its job is called with them
joined by commas (``cuda:0,cuda:1``, or ``cpu,cpu`` on a machine without GPUs). Like
`torchrun`, `launch` then starts N processes of ``python -m tuneboard.remote --spec SPEC``
with `WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `MASTER_ADDR` and a free `MASTER_PORT` (the rank
side is `tuneboard.engine.ranks`). Rank 0's records are replayed into this process's store
as a remote run's are (`RecordReplayer`); the other ranks' stderr is kept for the error.

- Each rank's stdin is a pipe from here: its flush records are answered there once stored
  (so a checkpoint never runs ahead of the database), and a rank whose launcher died ends.
- Cancel sends SIGTERM to every rank; the ranks agree to stop at the next optimizer step.
- A rank that exits with an error kills the others, and the run fails in one line naming
  the rank, its exit code and its last error line. The job returns once every rank ended,
  which frees the run's slots.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from typing import IO, TYPE_CHECKING

from tuneboard.sdk.remote import RemoteSpec, encode_spec
from tuneboard.sdk.status import CANCELLED, COMPLETED, FAILED

if TYPE_CHECKING:
    from tuneboard.engine.runner import EngineJob
    from tuneboard.remote.records import RecordReplayer

GRACE_SECONDS = 60.0
"""How long the other ranks may take to end once one ended on its own or the run was
cancelled, before they are killed."""

POLL_SECONDS = 0.2


def is_multi(device: str) -> bool:
    """True for a device list of several ranks (``cpu,cpu``), as multi-slot runs get."""
    return "," in device


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the ranks' rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rank_environments(devices: list[str], port: int) -> list[dict[str, str]]:
    """Each rank's environment: torchrun's variables; the GPUs of the run made visible
    (rank r uses ``cuda:r`` among them) or, on the CPU, the cores shared between the ranks."""
    world = len(devices)
    base = {
        **os.environ,
        "WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    if all(device.startswith("cuda") for device in devices):
        base["CUDA_VISIBLE_DEVICES"] = ",".join(d.partition(":")[2] or "0" for d in devices)
    else:
        base["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // world))
    return [
        {**base, "RANK": str(rank), "LOCAL_RANK": str(rank), "TUNEBOARD_LAUNCHER_PIPE": "1"}
        for rank in range(world)
    ]


class _Rank:
    """One rank process and the last lines of its stderr."""

    def __init__(self, rank: int, command: list[str], env: dict[str, str]) -> None:
        self.rank = rank
        self.tail: deque[str] = deque(maxlen=20)
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if rank == 0 else subprocess.PIPE,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches the ranks through cancel
        )
        self._stdin_lock = threading.Lock()
        if rank > 0:
            assert self.process.stderr is not None
            threading.Thread(target=self._keep, args=(self.process.stderr,), daemon=True).start()

    def _keep(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self.tail.append(line.strip())

    def ack(self, number: int) -> None:
        """Tell the rank that its flush record `number` is stored."""
        with self._stdin_lock, contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write(f"ack {number}\n")
            self.process.stdin.flush()

    def signal(self, signum: int) -> None:
        """Send `signum` to the rank's process group, if it still runs."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def last_error(self) -> str:
        """The rank's last line of stderr that looks like an error (else its last line)."""
        lines = list(self.tail)
        for line in reversed(lines):
            if line.startswith("error:") or "Error" in line or "error" in line:
                return line
        return lines[-1] if lines else ""


def launch(job: EngineJob, device: str, cancel: threading.Event) -> None:
    """Run `job` as one rank process per device of `device` (comma-separated); return when
    every rank has ended, with the run's end recorded. Never raises."""
    from tuneboard.remote.records import RecordReplayer

    devices = device.split(",")
    spec = RemoteSpec(
        project=str(job.project_dir),
        experiment=job.experiment,
        config=dict(job.config),
        run_id=job.run_id,
        run_dir=str(job.run_dir),
        device="cpu" if devices[0] == "cpu" else "auto",
        resume=job.resumed,
    )
    command = [sys.executable, "-m", "tuneboard.remote", "--spec", encode_spec(spec)]
    started: list[_Rank] = []
    replayer = RecordReplayer(
        job, device_prefix="", device=device, on_flush=lambda n: started[0].ack(n)
    )
    try:
        for number, env in enumerate(rank_environments(devices, free_port())):
            started.append(_Rank(number, command, env))
    except OSError as error:
        for rank in started:
            rank.signal(signal.SIGKILL)
        replayer.finish(FAILED, f"could not start the rank processes: {error}")
        return
    first = started[0]
    assert first.process.stdout is not None
    reader = threading.Thread(
        target=_replay, args=(first.process.stdout, replayer), name="tuneboard-rank0", daemon=True
    )
    reader.start()
    failure = _supervise(started, cancel)
    reader.join()
    replayer.end()
    for rank in started:
        with contextlib.suppress(OSError, ValueError):
            assert rank.process.stdin is not None
            rank.process.stdin.close()
    if cancel.is_set() and replayer.final_status != COMPLETED:
        replayer.finish(CANCELLED, "cancelled by the user")
    elif failure is not None and failure[0] > 0:
        # Another rank died first: that is the run's error, whatever rank 0 saw after it.
        replayer.finish(FAILED, failure[1])
        if replayer.final_status == FAILED:
            job.store.set_run_status(job.run_id, FAILED, error=failure[1])
    elif failure is not None:  # rank 0 died: its last lines came through the replayer
        last = replayer.error_tail(1)
        replayer.finish(FAILED, f"{failure[1]}: {last}" if last else failure[1])
    elif replayer.final_status is None:
        replayer.finish(FAILED, "rank 0 ended without recording the run's end")


def _replay(stream: IO[str], replayer: RecordReplayer) -> None:
    for line in stream:
        replayer.feed(line)


def _wait(rank: _Rank, exits: queue.Queue[_Rank]) -> None:
    rank.process.wait()
    exits.put(rank)


def _supervise(ranks: list[_Rank], cancel: threading.Event) -> tuple[int, str] | None:
    """Follow the ranks until all ended: SIGTERM to all on cancel; the others killed when one
    fails (or lingers past the grace time after one ended). Returns the first rank that
    failed and the run's error in one line (None when none failed)."""
    exits: queue.Queue[_Rank] = queue.Queue()
    for rank in ranks:
        threading.Thread(target=_wait, args=(rank, exits), daemon=True).start()
    failure: tuple[int, str] | None = None
    deadline: float | None = None
    cancelled = False
    ended = 0
    while ended < len(ranks):
        if cancel.is_set() and not cancelled:
            cancelled = True
            for rank in ranks:
                rank.signal(signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS
        if deadline is not None and time.monotonic() > deadline:
            for rank in ranks:
                rank.signal(signal.SIGKILL)
        try:
            done = exits.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        ended += 1
        code = done.process.returncode
        if code != 0 and failure is None and not cancelled:
            message = f"rank {done.rank} exited with code {code}"
            last = done.last_error()
            failure = (done.rank, f"{message}: {last}" if last else message)
            for other in ranks:
                other.signal(signal.SIGKILL)
        elif deadline is None:
            deadline = time.monotonic() + GRACE_SECONDS
    return failure
