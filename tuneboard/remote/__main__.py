"""`python -m tuneboard.remote --spec SPEC`: execute one run here, its records on stdout.

Remote executors start this on the machine that runs the run (see `tuneboard.sdk.remote`); it
is not meant to be typed by hand. Lifecycle hooks are left to the launching process, which
calls them as it replays the records. A spec with `resume` goes on from the checkpoints in
the run folder, as `tuneboard resume` does. Exit status: 0 when the run completed or was
cancelled, 1 when it failed, 2 when the spec is not valid.

With the torchrun environment (`WORLD_SIZE` above 1, `RANK`, ...) the process is one rank of
a data-parallel run (`tuneboard.engine.ranks`): rank 0 writes the records; the others record
nothing and run in a scratch folder of their own. `run_spec` does the same in a process that
is already running (a Ray Train worker).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.remote import RemoteSpec, decode_spec

if TYPE_CHECKING:  # the rest is imported once OMP_NUM_THREADS is set (numpy and torch read it)
    from tuneboard.engine.runner import EngineJob
    from tuneboard.remote.records import RecordingObserver, RemoteRecorder


def main(argv: Sequence[str] | None = None) -> int:
    """Run the spec's run on this machine; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tuneboard.remote",
        description="Execute one tuneboard run here, writing its records to stdout.",
    )
    parser.add_argument("--spec", required=True, help="the run, as made by encode_spec")
    args = parser.parse_args(argv)
    try:
        spec = decode_spec(args.spec)
    except TuneboardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if spec.threads:  # before numpy and torch are imported, which read it once
        os.environ["OMP_NUM_THREADS"] = str(spec.threads)
    cancel = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return run_spec(spec, sys.stdout.fileno(), cancel)


def run_spec(spec: RemoteSpec, out_fd: int, cancel: threading.Event | None = None) -> int:
    """Run the spec's run in this process, its records written to `out_fd` (by rank 0 only,
    in a data-parallel run); return the exit status. Setting `cancel` stops it between
    steps."""
    from tuneboard.engine import ranks
    from tuneboard.remote.records import (
        FlushAcks,
        RecordingObserver,
        RecordWriter,
        RemoteRecorder,
        SilentRecorder,
    )
    from tuneboard.sdk.status import FAILED

    cancel = cancel or threading.Event()
    place = ranks.from_env()
    rank = place[0] if place is not None and place[1] > 1 else None
    acks = None
    if os.environ.get(LAUNCHER_PIPE) == "1":  # a local rank: its launcher answers on stdin
        acks = FlushAcks()
        acks.watch(sys.stdin)
    records = RecordWriter(out_fd)
    store = RemoteRecorder(records, acks) if not rank else SilentRecorder()
    observer = RecordingObserver(records if not rank else RecordWriter(_devnull()))
    scratch: Path | None = None
    try:
        try:
            device = _device(spec.device)
            if rank is not None:
                if rank > 0:
                    scratch = Path(tempfile.mkdtemp(prefix="tuneboard-rank-"))
                parallel = str(spec.config.get("parallel", "ddp"))
                own = scratch / spec.run_id if scratch is not None else None
                ranks.join(device, parallel, Path(spec.run_dir), own)
            job = _job(spec, store, observer, scratch)
        except Exception as error:  # bad input on this machine: the run fails with the reason
            from tuneboard.engine.runner import one_line

            reason = one_line(error)
            store.log_event(spec.run_id, traceback.format_exc(), level="error")
            store.set_run_status(spec.run_id, FAILED, error=reason)
            observer.run_status(spec.run_id, FAILED, reason)
            return 1
        job(device, cancel)
        return 1 if store.final_status == FAILED else 0
    finally:
        if rank is not None:
            ranks.leave()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


LAUNCHER_PIPE = "TUNEBOARD_LAUNCHER_PIPE"
"""Set to 1 by the local launcher: stdin is its pipe (flush acks; closed when it dies)."""


def _devnull() -> int:
    return os.open(os.devnull, os.O_WRONLY)


def _job(
    spec: RemoteSpec,
    store: RemoteRecorder,
    observer: RecordingObserver,
    scratch: Path | None = None,
) -> EngineJob:
    from tuneboard.config import experiment_from_raw, load_project
    from tuneboard.engine.runner import EngineJob, prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.remote.ranked import ReadingRecovery
    from tuneboard.remote.records import LeftToLauncher
    from tuneboard.store.privacy import private_files

    project = load_project(Path(spec.project))
    registry = load_plugins(project.root)
    experiment = experiment_from_raw(project, spec.experiment, spec.config, registry)
    # The launcher resolved the model's lineage and recorded it; this machine has no database.
    prepared = prepare_run(project, experiment, registry, lineage=False)
    shared = Path(spec.run_dir)  # the run's folder; a rank other than 0 only reads it
    run_dir = shared if scratch is None else scratch / spec.run_id
    with private_files():
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    plan = None
    if spec.resume:  # as `tuneboard resume`, with the database's part left to the launcher
        from tuneboard.engine.resume import check_labels, clear_later_stages, plan_resume

        plan = plan_resume(spec.run_id, shared, experiment)
        check_labels(plan, prepared)
        if scratch is None:  # rank 0 (or a run of one process)
            clear_later_stages(shared, plan)
            store.resumed(plan)
    job = EngineJob(
        spec.run_id,
        prepared,
        store=store,
        registry=registry,
        observer=observer,
        run_dir=run_dir,
        resume=plan,
    )
    if scratch is not None:  # restores from the run's folder; writes no handoffs there
        job.recovery = ReadingRecovery(shared, prepared, plan)
    job.lifecycle = LeftToLauncher(
        registry,
        store,
        run_id=spec.run_id,
        experiment=spec.experiment,
        run_dir=run_dir,
        project_dir=project.root,
    )
    return job


def _device(setting: str) -> str:
    if setting == "cpu":
        return "cpu"
    from tuneboard.engine import ranks
    from tuneboard.sdk.scheduler import detect_devices

    found = detect_devices()
    place = ranks.from_env()
    if place is not None and found[0] != "cpu":  # a rank uses the GPU of its local rank
        return f"cuda:{place[2]}"
    return found[0]


if __name__ == "__main__":
    sys.exit(main())
