"""tuneboard-example: a plugin package to copy when writing your own.

It provides a `calibrate` stage (temperature scaling, see `tuneboard_example.calibrate`) and
implements the `run_finished` lifecycle hook to write a ``summary.json`` into each run's folder.
The package's ``pyproject.toml`` points the ``tuneboard`` entry point at this module; tuneboard
calls the functions below that are marked with `hookimpl` (see docs/REFERENCE.md for all hooks).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneboard import hookimpl
from tuneboard_example.calibrate import Calibrate
from tuneboard_example.summary import write_summary

__version__ = "0.1.0"


@hookimpl
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Provide the `calibrate` stage."""
    register(Calibrate)


@hookimpl
def run_finished(
    run_id: str,
    experiment: str,
    status: str,
    error: str | None,
    metrics: dict[str, float],
    run_dir: Path,
) -> None:
    """Write ``summary.json`` into the run's folder (a hook may take a subset of arguments)."""
    write_summary(run_id, experiment, status, error, metrics, run_dir)
