"""The loaded plugins, what each provides, and the plugins that failed to load."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Label, Static

from tuneboard.tui.screens.base import BaseScreen
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar


class PluginsScreen(BaseScreen):
    """Every plugin with its version, source, location and what it provides."""

    def compose(self) -> ComposeResult:
        """The plugins table, then the failures."""
        yield Header()
        yield NavBar("plugins")
        table: DataTable[Any] = DataTable(id="plugins", cursor_type="row", zebra_stripes=True)
        for label in ("plugin", "version", "source", "provides", "location"):
            table.add_column(label, key=label)
        yield table
        with VerticalScroll(id="failures-box"):
            yield Label("failed to load", classes="section", id="failures-title")
            yield Static(id="failures")
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Fill the tables from the app's registry."""
        self.sub_title = "plugins"
        registry = self.tb.registry
        table = self.query_one("#plugins", DataTable)
        for info in registry.plugins:
            provides = "; ".join(
                f"{kind}: {', '.join(names)}" for kind, names in info.provides.items() if names
            )
            table.add_row(
                Text(info.name),
                Text(info.version or ""),
                Text(info.source),
                Text(provides or "(nothing)"),
                Text(info.location),
                key=info.name,
            )
        failures = Text()
        for failure in registry.failures:
            failures.append(f"✗ {failure.name}", style="bold")
            failures.append(f" ({failure.source}, {failure.location})\n    {failure.error}\n")
        box = self.query_one("#failures-box")
        box.display = bool(registry.failures)
        self.query_one("#failures", Static).update(failures)
        table.focus()
