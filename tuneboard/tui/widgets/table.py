"""A DataTable that never shows cells drawn at the column widths it had before measuring."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class Table(DataTable[Any]):
    """Textual's DataTable, repainted after it measures new rows and cells.

    DataTable sizes its columns when it is next idle and keys its rendered cells by an
    update count, not by column width. A frame drawn before that idle moment (a busy
    machine) caches cells cut to the header widths, and they stay on screen until some
    other change, which on a quiet table never comes. Counting the measuring as an update
    voids those cells.
    """

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1
        self.refresh()
