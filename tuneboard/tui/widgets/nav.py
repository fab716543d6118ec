"""The line under the header that names the views and switches between them."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

VIEWS: tuple[tuple[str, str, str], ...] = (
    ("runs", "1/F1", "Runs"),
    ("sql", "2/F2", "SQL"),
    ("plugins", "3/F3", "Plugins"),
    ("queue", "4/F4", "Queue"),
)


class NavBar(Static):
    """Tab-like links to the views; the current one is marked with `▸` and bold, not colour only."""

    DEFAULT_CSS = """
    NavBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self, active: str) -> None:
        super().__init__(self._content(active))

    @staticmethod
    def _content(active: str) -> Content:
        parts: list[Content] = []
        for mode, key, label in VIEWS:
            if mode == active:
                parts.append(Content.from_markup(f"[bold $text]▸ {key} {label}[/]"))
            else:
                parts.append(
                    Content.from_markup(f"[@click=app.switch_mode('{mode}')]  {key} {label}[/]")
                )
        return Content("   ").join(parts)
