"""A footer that wraps its keys onto a second line instead of hiding them on narrow terminals."""

from __future__ import annotations

import math

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
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
    at most two rows.

    Textual's footer builds its keys anew whenever the screen's bindings may have changed,
    which includes every time its view shows again (F1/F2/F3): a good part of a switch. This
    one keeps its keys when the keys to show are the same as those it shows.
    """

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
        self._shown: list[tuple[object, ...]] | None = None

    def compose(self) -> ComposeResult:
        """Compose the keys as the footer does, then fit the grid to the width."""
        self._shown = self._keys_to_show() if self._bindings_ready else None
        yield from super().compose()
        self._fit()

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Build the keys anew, unless they would be the ones shown."""
        if (
            self._shown is not None
            and screen is self.screen
            and self._keys_to_show() == self._shown
        ):
            return
        super().bindings_changed(screen)

    def _keys_to_show(self) -> list[tuple[object, ...]]:
        """What `compose` shows: each shown binding, whether it is enabled, its tooltip and
        how its key displays."""
        return [
            (binding, enabled, tooltip, self.app.get_key_display(binding))
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        ]

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
