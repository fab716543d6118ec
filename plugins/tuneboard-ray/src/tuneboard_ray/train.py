"""``python -m tuneboard_ray.train --spec SPEC --workers JSON``: one run as N Ray Train ranks.

The Ray job of a run with ``gpus = N > 1`` runs this driver (see `tuneboard_ray.command`). It
starts a `TorchTrainer` with N workers (`ScalingConfig(num_workers=N, use_gpu=...)`, each
asking what `WorkerResources.per_worker` says, so the ranks may span nodes). Ray Train
initializes torch.distributed in every worker (NCCL on GPUs, gloo on CPUs) and sets
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; each worker then runs its rank of the run in
process with ``tuneboard.remote.run_spec`` (the rank protocol: rank 0 alone writes records).

Rank 0's records come back through a small actor, the `_Link`: rank 0's records go to a pipe,
a thread of that worker hands what it reads to the link, and this driver takes it from there
and writes it, byte for byte, to its own stdout, the job's log that the launcher follows, as
for a one-process run. Ray's own worker logs are not forwarded here (``log_to_driver=False``),
so nothing is mixed into the records. SIGTERM or SIGINT (`ray job stop`, tuneboard's cancel)
set the link's cancel flag. Rank 0 alone looks at it (every `CANCEL_POLL_SECONDS`): the ranks
agree on stopping at each step, so the others stop there with it, while a rank told on its
own could stop outside a step and leave the others waiting in a collective. Once rank 0 has
ended (its records all relayed), the others have `RANKS_GRACE_SECONDS` to end too; a rank
still waiting then ends with this driver. Exit status: rank 0's (0 when the run completed or
was cancelled, 1 when it failed), 1 when Ray Train failed, 2 for bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from tuneboard import RemoteSpec, TuneboardError
from tuneboard.sdk.remote import decode_spec
from tuneboard_ray.command import WorkerResources

# How often rank 0 looks at the link's cancel flag, and the driver for rank 0's records.
CANCEL_POLL_SECONDS = 0.5
FORWARD_POLL_SECONDS = 0.2
# Once rank 0 has ended, how long the driver waits for the other ranks.
RANKS_GRACE_SECONDS = 15.0
READ_BYTES = 1 << 16


class _Link:
    """The actor between the driver and rank 0: its records, its end, and the cancel flag."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._cancelled = False
        self._status: int | None = None

    def put(self, chunk: bytes) -> None:
        """Rank 0: the next bytes of its records."""
        self._chunks.append(chunk)

    def take(self) -> bytes:
        """The driver: every byte put since it last took."""
        taken, self._chunks = b"".join(self._chunks), []
        return taken

    def end(self, status: int) -> None:
        """Rank 0: it ended with `status`, every record put."""
        self._status = status

    def status(self) -> int | None:
        """The driver: rank 0's exit status once it ended, else None."""
        return self._status

    def cancel(self) -> None:
        """The driver: the run is cancelled."""
        self._cancelled = True

    def cancelled(self) -> bool:
        """Rank 0: whether the run is cancelled."""
        return self._cancelled


def main(argv: Sequence[str] | None = None) -> int:
    """Run the spec's run as Ray Train ranks; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tuneboard_ray.train",
        description="Execute one tuneboard run as Ray Train ranks, its records on stdout.",
    )
    parser.add_argument("--spec", required=True, help="the run, as made by encode_spec")
    parser.add_argument("--workers", required=True, help="the ranks, as WorkerResources JSON")
    args = parser.parse_args(argv)
    try:
        spec = decode_spec(args.spec)
        workers = WorkerResources.decode(args.workers)
    except TuneboardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ray.init(log_to_driver=False, configure_logging=False)
    link = ray.remote(num_cpus=0)(_Link).remote()
    cancel = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Ray Train's own folder (a marker file: the ranks report no checkpoints to Ray).
    storage = os.path.join(tempfile.gettempdir(), "tuneboard-ray-train")
    trainer = TorchTrainer(
        _rank,
        train_loop_config={"spec": args.spec, "link": link},
        scaling_config=ScalingConfig(
            num_workers=workers.workers,
            use_gpu=workers.gpus > 0,
            resources_per_worker=workers.per_worker(),
        ),
        run_config=RunConfig(name=f"tuneboard-{spec.run_id}", storage_path=storage),
    )
    outcome: dict[str, BaseException | None] = {}

    def fit() -> None:
        try:
            trainer.fit()
            outcome["error"] = None
        except BaseException as error:  # reported by the main thread
            outcome["error"] = error

    fitting = threading.Thread(target=fit, name="tuneboard-ray-train", daemon=True)
    fitting.start()
    cancel_sent = False
    status: int | None = None
    deadline: float | None = None
    while fitting.is_alive():
        if cancel.is_set() and not cancel_sent:
            ray.get(link.cancel.remote())
            cancel_sent = True
        if status is None and (status := ray.get(link.status.remote())) is not None:
            deadline = time.monotonic() + RANKS_GRACE_SECONDS
        _write(ray.get(link.take.remote()))
        if deadline is not None and time.monotonic() > deadline:
            print(
                f"the other ranks did not end {RANKS_GRACE_SECONDS:.0f} s after rank 0",
                file=sys.stderr,
            )
            break
        fitting.join(FORWARD_POLL_SECONDS)
    _write(ray.get(link.take.remote()))
    shutil.rmtree(os.path.join(storage, f"tuneboard-{spec.run_id}"), ignore_errors=True)
    error = outcome.get("error")
    if error is not None:  # the launcher keeps the last lines of the log
        print(f"error: {str(error).strip() or type(error).__name__}", file=sys.stderr)
        return 1
    return status or 0


def _rank(config: dict[str, Any]) -> None:
    """One Ray Train worker: this rank of the run (rank 0 with its records to the link)."""
    import ray
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    link = config["link"]
    spec = decode_spec(config["spec"])
    cancel = threading.Event()  # never set on the other ranks: they stop when rank 0 does
    if rank == 0:
        done = threading.Event()
        watcher = threading.Thread(
            target=_watch_cancel, args=(link, cancel, done), name="tuneboard-cancel", daemon=True
        )
        watcher.start()
        read_end, write_end = os.pipe()
        forwarder = threading.Thread(
            target=_forward, args=(read_end, link), name="tuneboard-records", daemon=True
        )
        forwarder.start()
        status = 1
        try:
            status = _run_spec(spec, write_end, cancel)
        finally:
            done.set()
            os.close(write_end)  # the forwarder reads to the end, then stops
            forwarder.join()
            os.close(read_end)
            ray.get(link.end.remote(status))
    else:
        with open(os.devnull, "wb") as sink:  # the other ranks write no records
            status = _run_spec(spec, sink.fileno(), cancel)
    if status != 0:
        raise RuntimeError(f"rank {rank} of run {spec.run_id} ended with exit status {status}")


def _run_spec(spec: RemoteSpec, out_fd: int, cancel: threading.Event) -> int:
    """``tuneboard.remote.run_spec``: the process group is up already, so it skips that."""
    from tuneboard.remote import run_spec

    status: int = run_spec(spec, out_fd, cancel)
    return status


def _forward(read_end: int, link: Any) -> None:
    """Hand what rank 0 writes to the link, in order, until the write end is closed."""
    import ray

    while chunk := os.read(read_end, READ_BYTES):
        ray.get(link.put.remote(chunk))


def _watch_cancel(link: Any, cancel: threading.Event, done: threading.Event) -> None:
    import ray

    while not done.wait(CANCEL_POLL_SECONDS):
        with contextlib.suppress(Exception):  # the driver is gone: the job is ending anyway
            if ray.get(link.cancelled.remote()):
                cancel.set()
                return


def _write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(sys.stdout.fileno(), view)
        view = view[written:]


if __name__ == "__main__":
    sys.exit(main())
