"""`python -m tuneboard.remote --spec SPEC`: execute one run here, its records on stdout.

Remote executors start this on the machine that runs the run (see `tuneboard.sdk.remote`); it
is not meant to be typed by hand. Lifecycle hooks are left to the launching process, which
calls them as it replays the records. A spec with `resume` goes on from the checkpoints in
the run folder, as `tuneboard resume` does. Exit status: 0 when the run completed or was
cancelled, 1 when it failed, 2 when the spec is not valid.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
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
    from tuneboard.remote.records import RecordingObserver, RecordWriter, RemoteRecorder
    from tuneboard.sdk.status import FAILED

    records = RecordWriter(sys.stdout.fileno())
    store, observer = RemoteRecorder(records), RecordingObserver(records)
    cancel = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        job = _job(spec, store, observer)
        device = _device(spec.device)
    except Exception as error:  # bad input on this machine: the run fails with the reason
        from tuneboard.engine.runner import one_line

        reason = one_line(error)
        store.log_event(spec.run_id, traceback.format_exc(), level="error")
        store.set_run_status(spec.run_id, FAILED, error=reason)
        observer.run_status(spec.run_id, FAILED, reason)
        return 1
    job(device, cancel)
    return 1 if store.final_status == FAILED else 0


def _job(spec: RemoteSpec, store: RemoteRecorder, observer: RecordingObserver) -> EngineJob:
    from tuneboard.config import experiment_from_raw, load_project
    from tuneboard.engine.runner import EngineJob, prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.remote.records import LeftToLauncher
    from tuneboard.store.privacy import private_files

    project = load_project(Path(spec.project))
    registry = load_plugins(project.root)
    experiment = experiment_from_raw(project, spec.experiment, spec.config, registry)
    # The launcher resolved the model's lineage and recorded it; this machine has no database.
    prepared = prepare_run(project, experiment, registry, lineage=False)
    run_dir = Path(spec.run_dir)
    with private_files():
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    plan = None
    if spec.resume:  # as `tuneboard resume`, with the database's part left to the launcher
        from tuneboard.engine.resume import check_labels, clear_later_stages, plan_resume

        plan = plan_resume(spec.run_id, run_dir, experiment)
        check_labels(plan, prepared)
        clear_later_stages(run_dir, plan)
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
    from tuneboard.sdk.scheduler import detect_devices

    return detect_devices()[0]


if __name__ == "__main__":
    sys.exit(main())
