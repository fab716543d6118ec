"""The SQL editor: a TextArea where ctrl+a selects everything, as in most editors."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from tuneboard.tui.widgets.typing import EditorArea


class SqlEditor(EditorArea):
    """The SQL editor: ctrl+a selects all the text (home still goes to the line's start);
    escape and the typing keys as in every text box (`EditorArea`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+a", "select_all", "Select all", show=False),
    ]
