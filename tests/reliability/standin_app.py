"""Stands in for the Textual app in the several-processes test: it opens the project's store
write-capable (as the app does), launches one run of its own, and reads every run in a loop
the way the app's screens refresh, until a stop file appears.

Usage: python standin_app.py PROJECT EXPERIMENT STOP_FILE OUT_JSON

OUT_JSON gets the run ids it saw, its own run's id, how many reads it made and the errors
it met (any error makes the exit status 1).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store


def main(project_dir: str, experiment: str, stop_file: str, out: str) -> int:
    """Launch a run, read everything in a loop until `stop_file` exists, report to `out`."""
    project = load_project(Path(project_dir))
    registry = load_plugins(project.root)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    own = engine.launch(engine.prepare(project.experiment(experiment, registry)))
    seen: set[str] = set()
    reads = 0
    errors: list[str] = []
    stop = Path(stop_file)
    while not stop.exists():
        try:
            with store.hold():  # one open for a screen's worth of reads, as the app does
                for run in store.list_runs(limit=50):
                    seen.add(run.run_id)
                    store.stages(run.run_id)
                    for name in store.metric_names(run.run_id)[:2]:
                        store.series(run.run_id, name, max_points=100)
                    store.last_metrics(run.run_id)
            reads += 1
        except Exception:
            errors.append(traceback.format_exc())
        time.sleep(0.1)
    engine.wait([own], timeout=120)
    engine.shutdown(cancel=True)
    status = store.get_run(own).status
    store.close()
    report = {"own": own, "status": status, "seen": sorted(seen), "reads": reads}
    Path(out).write_text(json.dumps({**report, "errors": errors}), encoding="utf-8")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
