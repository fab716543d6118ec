"""The app's one table widget: k9s/htop movement keys, and cells never drawn at stale widths."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

# The movement keys every table adds to DataTable's arrows and page keys: (key, action, help).
MOVE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("j", "move_down", "down a row"),
    ("k", "move_up", "up a row"),
    ("g", "move_top", "to the first row"),
    ("G", "move_bottom", "to the last row"),
    ("home", "move_top", "to the first row"),
    ("end", "move_bottom", "to the last row"),
)
# Keys a screen may bind for itself: there the screen's binding wins (see `Table.check_action`).
_LETTERS = {"move_down": "j", "move_up": "k", "move_top": "g", "move_bottom": "G"}


class Table(DataTable[Any]):
    """Textual's DataTable with `j`/`k`/`g`/`G`/Home/End, repainted after it measures rows.

    Movement: `j`/`k` move down/up a row, `g`/Home to the first row, `G`/End to the last
    (as in k9s and htop). A screen that binds one of these letters for itself keeps it (the
    Review screen's `g` keeps a label): the table then leaves that key to the screen, and
    Home/End still move.

    Restyling: DataTable drops every rendered cell whenever Textual restyles it, and Textual
    restyles every widget of a view each time the view shows again (F1/F2/F3), which made
    drawing the runs table again most of a switch back to Runs. The cells are kept when what
    decides the table's styles (the stylesheet's rules, and the classes and pseudo-classes
    of the table and its ancestors, focus included) is the same as at the last restyle.

    Repainting: DataTable sizes its columns when it is next idle and keys its rendered cells
    by an update count, not by column width. A frame drawn before that idle moment (a busy
    machine) caches cells cut to the header widths, and they stay on screen until some
    other change, which on a quiet table never comes. Counting the measuring as an update
    voids those cells.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"{action}('{key}')", help, show=False) for key, action, help in MOVE_KEYS),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._styled_by: tuple[object, ...] | None = None

    def notify_style_update(self) -> None:
        """Drop the rendered cells only when the table may look different (see the class)."""
        styled_by, self._styled_by = self._styled_by, self._style_inputs()
        if styled_by is not None and styled_by == self._styled_by:
            # Skips DataTable's own method (which empties its caches), not the widget's.
            super(DataTable, self).notify_style_update()
            self.refresh()
        else:
            super().notify_style_update()

    def _style_inputs(self) -> tuple[object, ...] | None:
        """What the table's styles follow from: the rules, and the CSS path from the app
        to the table (only the pseudo-classes some rule mentions: a view's place among the
        app's views changes its `:first-child` and `:odd` at each switch)."""
        if not self.is_attached:
            return None
        rules = tuple(self.app.stylesheet.rules)
        used: set[str] = set().union(*(rule.pseudo_classes for rule in rules))
        path = tuple(
            (type(node), node.id, node.classes, node.pseudo_classes & used)
            for node in self.css_path_nodes
        )
        return rules, path

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Leave a letter key to the screen when the screen binds it."""
        letter = _LETTERS.get(action)
        if letter is None or not parameters or parameters[0] != letter:
            return True  # Home/End, or a key other than the letter
        return not self.screen._bindings.key_to_bindings.get(letter)

    def action_move_down(self, key: str = "") -> None:
        """Down a row (or scroll down a line in a table without a cursor)."""
        self.action_cursor_down()

    def action_move_up(self, key: str = "") -> None:
        """Up a row (or scroll up a line)."""
        self.action_cursor_up()

    def action_move_top(self, key: str = "") -> None:
        """To the first row (or the top)."""
        self.action_scroll_top()

    def action_move_bottom(self, key: str = "") -> None:
        """To the last row (or the bottom)."""
        self.action_scroll_bottom()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1
        self.refresh()
