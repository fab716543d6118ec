"""The SQL editor: a TextArea where ctrl+a selects everything, as in most editors."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import TextArea


class SqlEditor(TextArea):
    """A TextArea whose ctrl+a selects all the text (home still goes to the line's start)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+a", "select_all", "Select all", show=False),
    ]
