"""A footer that wraps its keys onto a second line instead of hiding them on narrow terminals."""

from __future__ import annotations

import math

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

MAX_ROWS = 2


def footer_columns(keys: int, widest: int, width: int, max_rows: int = MAX_ROWS) -> int:
    """How many columns `keys` keys take in a footer `width` cells wide: as many of the
    `widest` key's width as fit, but enough for at most `max_rows` rows (the longest
    descriptions are then cut) so the footer never takes the screen's rows."""
    if keys <= 0:
        return 1
    fitting = max(1, min(keys, width // max(widest, 1)))
    return max(fitting, math.ceil(keys / max_rows))


class WrappingFooter(Footer):
    """Textual's footer laid out as a grid whose column count fits the terminal's width, on
    at most two rows."""

    DEFAULT_CSS = """
    WrappingFooter {
        layout: grid;
        grid-columns: 1fr;
        grid-rows: 1;
        height: auto;
        max-height: 2;
    }
    WrappingFooter > * {
        width: 1fr;
    }
    """

    def __init__(self) -> None:
        super().__init__(show_command_palette=False, compact=True)

    def compose(self) -> ComposeResult:
        """Compose the keys as the footer does, then fit the grid to the width."""
        yield from super().compose()
        self._fit()

    def on_resize(self, event: events.Resize) -> None:
        """Fit the grid to the new width."""
        self._fit()

    def _fit(self) -> None:
        bindings = (
            [binding for (_, binding, _, _) in self.screen.active_bindings.values() if binding.show]
            if self._bindings_ready
            else []
        )
        if not bindings:
            return
        widest = max(len(self.app.get_key_display(b)) + len(b.description) + 2 for b in bindings)
        actions = len({b.action for b in bindings})
        width = self.size.width or self.app.size.width
        columns = footer_columns(actions, widest, width)
        # Setting a style re-lays out the footer (and resizes it): only change what changed.
        if self.styles.grid_size_columns != columns:
            self.styles.grid_size_columns = columns
