"""A lifecycle hook at work: write ``summary.json`` into every run's folder when it ends.

The same hook is where a desktop notification, a chat message or a webhook would go (start a
thread for anything slow: the hook runs on the run's own thread).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

SUMMARY_FILE = "summary.json"


def write_summary(
    run_id: str,
    experiment: str,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    run_dir: Path,
) -> Path:
    """Write the run's final status and metrics to ``<run_dir>/summary.json``; return its path."""
    summary = {
        "run_id": run_id,
        "experiment": experiment,
        "status": status,
        "error": error,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": dict(sorted(metrics.items())),
    }
    path = run_dir / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path
