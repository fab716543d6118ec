"""The floor of the app's first paint: the least an app on the same stack can do.

A bare Textual app that, like tuneboard's, opens the project's DuckDB file in a thread as it
starts, reads the runs, and shows them in a DataTable with a "N of N runs" line. Nothing
else: no plugins, no styles of its own, no columns computed. `paint.floor_paint` times it
beside the real app, so the figure says how far the app is from what Python, Textual and
DuckDB cost on the machine.

    python -m benchmarks.floor_app PROJECT_DIR
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

QUERY = (
    "SELECT run_id, experiment, status, CAST(created_at AS VARCHAR) FROM runs "
    "ORDER BY created_at DESC"
)


class FloorApp(App[None]):
    """The runs of one DuckDB file in a DataTable, read in a thread started on load."""

    def __init__(self, database: Path) -> None:
        super().__init__()
        self.database = database

    def compose(self) -> ComposeResult:
        """A summary line over the table."""
        yield Static("loading runs…", id="summary")
        yield DataTable(id="runs")

    def on_load(self) -> None:
        """Start reading as the app starts, as tuneboard's app does."""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        import duckdb

        with duckdb.connect(str(self.database), read_only=True) as connection:
            rows = connection.execute(QUERY).fetchall()
        self.call_from_thread(self._show, rows)

    def _show(self, rows: list[tuple[Any, ...]]) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "experiment", "status", "created")
        table.add_rows([tuple(str(cell) for cell in row) for row in rows])
        self.query_one("#summary", Static).update(f"{len(rows)} of {len(rows)} runs")


if __name__ == "__main__":
    FloorApp(Path(sys.argv[1]) / ".tuneboard" / "tuneboard.duckdb").run()
