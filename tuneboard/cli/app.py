"""`tuneboard` with no command: open the terminal app on the project."""

from __future__ import annotations

from pathlib import Path

from tuneboard.cli.shared import friendly_errors, load_project_from


@friendly_errors
def open_app(project_dir: Path | None) -> None:
    """Open the Textual app on the project (Textual is imported only here)."""
    from tuneboard.tui.app import run_app

    project = load_project_from(project_dir)
    if project.executor.plugin != "local":  # a bad executor is an error before the app opens
        from tuneboard.engine.executors import build_executor
        from tuneboard.plugins import load_plugins

        build_executor(project, load_plugins(project.root))
    run_app(project)
