"""Time to first paint of the app on a database of 1,000 runs.

Run it with `python -m tests.tui.first_paint [RUNS]`. It seeds a copy of the sentiment sample
project, then starts a fresh Python process that opens the app (headless, 160x48) and reports,
counted from just before that process is started: when the first frame was drawn (Textual's Ready event),
and when the runs table held every run. It also says whether torch or transformers got
imported (they must not be).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.tui.seed import seed_many

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, json, sys, time
started = float(sys.argv[3])
from tuneboard.config import load_project
from tuneboard.tui.app import TuneboardApp
from textual.widgets import DataTable

marks = {}

class Timed(TuneboardApp):
    def on_ready(self) -> None:
        marks["first_paint"] = time.time() - started

async def main() -> None:
    app = Timed(load_project(sys.argv[1]))
    expected = int(sys.argv[2])
    async with app.run_test(size=(160, 48)) as pilot:
        while True:
            table = app.screen.query("#runs")
            if table and table.first(DataTable).row_count == expected:
                break
            await pilot.pause(0.01)
        marks["runs_shown"] = time.time() - started
    app.store.close()
    marks["heavy_imports"] = [m for m in ("torch", "transformers") if m in sys.modules]

asyncio.run(main())
print(json.dumps(marks))
"""


def measure(runs: int = 1000) -> dict[str, object]:
    """Seed a project with `runs` runs and time the app's start in a new process."""
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "sentiment"
        shutil.copytree(
            REPO / "sample_projects" / "sentiment",
            project,
            ignore=shutil.ignore_patterns(".tuneboard"),
        )
        seed_many(project, runs)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(project), str(runs), repr(time.time())],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    marks = measure(count)
    print(f"runs in the database:        {count}")
    print(
        f"first paint:                 {marks['first_paint']:.2f} s after the process was started"
    )
    print(f"every run in the table:      {marks['runs_shown']:.2f} s after the process was started")
    print(f"torch/transformers imported: {marks['heavy_imports'] or 'no'}")
