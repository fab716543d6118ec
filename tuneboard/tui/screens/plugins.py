"""The loaded plugins, what each provides, the plugins that failed to load; install and uninstall.

Installing and uninstalling run pip (`tuneboard.plugins.install`) in a thread worker whose
output streams into a log under the table; the plugins are then loaded afresh for launches.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Input, Label, Log, Static

from tuneboard.plugins import PluginInfo, PluginRegistry
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.screens.base import BaseScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar
from tuneboard.tui.widgets.table import Table
from tuneboard.tui.widgets.typing import TypingInput
from tuneboard.ui.safe import safe_text, visible


class InstallLine(TypingInput):
    """The install line: `enter` installs, `escape` goes back to the plugins table.

    While it has the focus its keys (and F1-F3, ctrl+q) are the footer: the screen's own
    letters are text here.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "Install")]


class PluginsScreen(BaseScreen):
    """Every plugin with its version, source, location and what it provides."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "install", "Install"),
        Binding("u", "uninstall", "Uninstall"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pip_running = False

    def compose(self) -> ComposeResult:
        """The install line, the plugins table, the failures, then pip's output."""
        yield Header()
        yield NavBar("plugins")
        yield InstallLine(
            placeholder="install: package name, wheel or folder (options: -U -e --no-deps …)",
            id="plugin-target",
            compact=True,
        )
        table: DataTable[Any] = Table(id="plugins", cursor_type="row", zebra_stripes=True)
        for label in ("plugin", "version", "source", "provides", "location"):
            table.add_column(label, key=label)
        yield table
        with VerticalScroll(id="failures-box"):
            yield Label("failed to load", classes="section", id="failures-title")
            yield Static(id="failures")
        yield Log(id="pip-log", max_lines=2000)
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Fill the tables from the app's registry."""
        self.sub_title = "plugins"
        self._log = self.query_one("#pip-log", Log)
        self._log.display = False
        self.show_registry(self.tb.registry)
        self.query_one("#plugins", DataTable).focus()

    def show_registry(self, registry: PluginRegistry) -> None:
        """Draw the plugins and the failures of `registry`."""
        table = self.query_one("#plugins", DataTable)
        table.clear()
        for info in registry.plugins:
            table.add_row(
                safe_text(info.name),
                safe_text(info.version or ""),
                safe_text(info.source),
                safe_text(info.describe() or "(nothing)"),
                safe_text(info.location),
                key=info.name,
            )
        failures = Text()
        for failure in registry.failures:
            failures.append(visible(f"✗ {failure.name}"), style="bold")
            failures.append(visible(f" ({failure.source}, {failure.location})") + "\n    ")
            failures.append(visible(f"{failure.error}", multiline=True) + "\n")
        box = self.query_one("#failures-box")
        box.display = bool(registry.failures)
        self.query_one("#failures", Static).update(failures)

    # --- install and uninstall ------------------------------------------------------------

    def action_install(self) -> None:
        """Install what the install line names, or move there to type it."""
        line = self.query_one("#plugin-target", Input)
        if line.value.strip():
            self._install(line.value)
        else:
            line.focus()

    def action_leave_input(self) -> None:
        """Leave the install line for the plugins table (what it holds stays)."""
        self.query_one("#plugins", DataTable).focus()

    @on(Input.Submitted, "#plugin-target")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._install(event.value)

    def _install(self, line: str) -> None:
        from tuneboard.plugins.install import parse_install_line

        try:
            targets, options = parse_install_line(line)
        except TuneboardError as error:
            self.notify(str(error), severity="error", title="install")
            return
        if self._start_pip():
            self._run_pip("install", targets, options)

    def action_uninstall(self) -> None:
        """Uninstall the package of the plugin under the cursor, after asking."""
        info = self._current()
        if info is None:
            return
        if info.source == "built-in":
            self.notify(f"{info.name} is part of tuneboard", severity="warning")
            return
        if info.distribution is None:
            self.notify(
                f"{info.name} is a file of this project: delete {info.location}",
                severity="warning",
            )
            return
        package = info.distribution

        def answered(yes: bool | None) -> None:
            if yes and self._start_pip():
                self._run_pip("uninstall", [info.name], None)

        self.app.push_screen(
            ConfirmDialog(
                f"Uninstall the package {package} (plugin {info.name}) with pip?",
                yes="Uninstall",
                no="Keep",
            ),
            answered,
        )

    def _current(self) -> PluginInfo | None:
        table = self.query_one("#plugins", DataTable)
        if table.row_count == 0:
            return None
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((p for p in self.tb.registry.plugins if p.name == name), None)

    def _start_pip(self) -> bool:
        if self.pip_running:
            self.notify("pip is still running", severity="warning")
            return False
        self.pip_running = True
        self._log.clear()
        self._log.display = True
        return True

    @work(thread=True, exit_on_error=False, name="pip")
    def _run_pip(self, action: str, targets: list[str], options: Any) -> None:
        """Run pip (streaming its output into the log), then load the plugins afresh."""
        from tuneboard.plugins.install import (
            Listing,
            install_plugins,
            pth_files,
            refresh_import_system,
            uninstall_plugins,
        )

        app = self.tb
        log = self._log

        def echo(line: str) -> None:
            app.call_from_thread(log.write_line, visible(line))

        known_pth = pth_files()
        error: str | None = "pip stopped unexpectedly"  # unless it ends one of the ways below
        summary = ""
        try:
            if action == "install":
                change = install_plugins(
                    targets,
                    options,
                    before=Listing.of(app.registry),
                    project_dir=app.project.root,
                    echo=echo,
                    python=app.plugin_python,
                )
            else:
                change = uninstall_plugins(
                    targets,
                    app.registry,
                    project_dir=app.project.root,
                    echo=echo,
                    python=app.plugin_python,
                )
            summary = "; ".join(change.lines()) or "no plugin changed"
            error = None
        except TuneboardError as exc:
            error = str(exc)
        finally:
            refresh_import_system(known_pth)
            registry = app.reload_plugins()
            app.call_from_thread(self._pip_done, registry, action, summary, error)

    def _pip_done(
        self, registry: PluginRegistry, action: str, summary: str, error: str | None
    ) -> None:
        self.pip_running = False
        self.show_registry(registry)
        if error is not None:
            self._log.write_line(visible(f"error: {error}"))
            self.notify(error, severity="error", title=action, timeout=15)
            return
        self.query_one("#plugin-target", Input).value = ""
        self.notify(summary, title=f"{action} done", timeout=10)
