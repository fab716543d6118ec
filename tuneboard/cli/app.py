"""`tuneboard` with no command: open the terminal app on the project."""

from __future__ import annotations

from pathlib import Path

from tuneboard.cli.shared import friendly_errors, load_project_from


@friendly_errors
def open_app(project_dir: Path | None) -> None:
    """Open the Textual app on the project (Textual is imported only here).

    The database starts opening, in a thread, before Textual is imported: duckdb's import
    and the file's opening then overlap Textual's, and the runs reach the screen sooner.
    """
    from tuneboard.tui import collector
    from tuneboard.tui.store_opening import StoreOpening

    collector.pause_for_startup()
    project = load_project_from(project_dir)
    if project.executor.plugin != "local":  # a bad executor is an error before the app opens
        from tuneboard.engine.executors import build_executor
        from tuneboard.plugins import load_plugins

        build_executor(project, load_plugins(project.root))
    opening = StoreOpening(project.database)
    from tuneboard.tui.app import run_app

    run_app(project, store_opening=opening)
