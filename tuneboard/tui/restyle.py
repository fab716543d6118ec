"""An App that re-reads its stylesheet only when the theme changed, not at every view switch,
and does not style widgets that are not mounted yet.

Textual calls `App.refresh_css` when the theme changes, and also when it switches to a mode
(a view: Runs, SQL, Plugins, Queue) whose screen it has not yet styled since the last theme
change. A fresh screen counts as not styled until it is current and mounted during such a
refresh, so the first two visits of each view paid for one or two refreshes. Each parses
every stylesheet of the app anew (all widgets' default CSS and ``app.tcss``) and restyles
every widget of every view: 40-100 ms of a switch on a busy machine, while the theme, the
only input of that work, had not changed. The rules for widgets mounted meanwhile are read
when they mount, as always.

Textual also restyles a widget each time a CSS class of it changes, even before it is
mounted, and its Input adds a class as it is built: building a form of 70 inputs took some
0.3 s of restyling widgets that are styled again, whole, as they mount.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.dom import DOMNode


class RestyledOnThemeChange(App[None]):
    """`refresh_css` does its work only when the CSS variables or themes changed since
    Textual last parsed the stylesheet with them (in `App.__init__` or a refresh)."""

    _styled_with: tuple[Any, ...] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Textual builds the stylesheet here, with these variables: the refresh it makes as
        # the first view opens would parse it all again for nothing.
        self._styled_with = self._style_inputs()

    def _style_inputs(self) -> tuple[Any, ...]:
        return (self.theme, self.ansi_theme, self.get_css_variables())

    def style_key(self) -> tuple[Any, ...]:
        """What every widget's styles follow from, besides its own place and state: the
        theme and variables the stylesheet was last parsed with, and its rules (which grow
        as widgets of new kinds mount)."""
        return self._styled_with, tuple(self.stylesheet.rules)

    def update_styles(self, node: DOMNode, animate: bool = True) -> None:
        """Restyle `node` and what it holds, unless it is not mounted yet (it is styled as it
        mounts, with the classes it has then)."""
        if node is self or node.is_attached:
            super().update_styles(node, animate)

    def refresh_css(self, animate: bool = True) -> None:
        """Re-read the stylesheet and restyle everything, unless nothing it depends on has
        changed since the last time."""
        key = self._style_inputs()
        if key == self._styled_with:
            return
        super().refresh_css(animate)
        self._styled_with = key
