"""A footer that wraps its keys onto more lines instead of hiding them on narrow terminals."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer


class WrappingFooter(Footer):
    """Textual's footer laid out as a grid whose column count fits the terminal's width."""

    DEFAULT_CSS = """
    WrappingFooter {
        layout: grid;
        grid-columns: 1fr;
        grid-rows: 1;
        height: auto;
        max-height: 4;
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
        columns = max(1, min(actions, width // max(widest, 1)))
        # Setting a style re-lays out the footer (and resizes it): only change what changed.
        if self.styles.grid_size_columns != columns:
            self.styles.grid_size_columns = columns
