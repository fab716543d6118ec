"""The tuneboard app: runs the project's runs in this process and shows them live.

One `Engine` runs the runs in background threads; its observer posts messages to the app,
and the screens read from the store in thread workers, so the app never freezes while
models train. Runs launched by other processes appear because the screens poll the store.

Start-up order: the store opens in a background thread as soon as the app loads (while
Textual reads its CSS and builds the first frame), and the runs show as soon as it is open;
the plugins and the engine load only after that, once the runs are on screen (or on first
use), so they do not delay them; then the modules of the other screens are imported in that
background thread (see `warmup`), so the first key that opens one does not wait for them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tuneboard.config import Project
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui import collector
from tuneboard.tui.messages import AppObserver, RunsChanged, RunStatusChanged
from tuneboard.tui.restyle import RestyledOnThemeChange
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.ui.safe import visible

if TYPE_CHECKING:
    from tuneboard.engine.engine import Engine
    from tuneboard.plugins import PluginRegistry
    from tuneboard.store import Store
    from tuneboard.tui.store_opening import StoreOpening


# How often the app looks for runs of other processes that died without saying so.
DEAD_OWNER_CHECK_SECONDS = 10.0

# Seconds after the first paint by which the plugins and the engine load even if no screen
# has shown data yet (they load earlier on first use).
ENGINE_START_SECONDS = 3.0


def _sql_screen() -> Screen[Any]:
    from tuneboard.tui.screens.sql import SqlScreen

    return SqlScreen()


def _plugins_screen() -> Screen[Any]:
    from tuneboard.tui.screens.plugins import PluginsScreen

    return PluginsScreen()


def _commands() -> Any:
    from tuneboard.tui.commands import TuneboardCommands

    return TuneboardCommands


def _queue_screen() -> Screen[Any]:
    from tuneboard.tui.screens.queue import QueueScreen

    return QueueScreen()


_NAV = Binding.Group("screens")

# The name the launch form is installed under (see `TuneboardApp.open_launch`).
LAUNCH_SCREEN = "launch"


class TuneboardApp(RestyledOnThemeChange):
    """The terminal app of one project: Runs, SQL, Plugins and Queue views, and the run
    screens."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tuneboard"
    MODES: ClassVar[dict[str, Any]] = {
        "runs": RunsScreen,
        "sql": _sql_screen,
        "plugins": _plugins_screen,
        "queue": _queue_screen,
    }
    DEFAULT_MODE = "runs"
    COMMANDS: ClassVar[set[Any]] = {*App.COMMANDS, _commands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('runs')", "Runs", group=_NAV),
        Binding("2", "switch_mode('sql')", "SQL", group=_NAV),
        Binding("3", "switch_mode('plugins')", "Plugins", group=_NAV),
        Binding("4", "switch_mode('queue')", "Queue", group=_NAV),
        Binding("f1", "switch_mode('runs')", "Runs", show=False),
        Binding("f2", "switch_mode('sql')", "SQL", show=False),
        Binding("f3", "switch_mode('plugins')", "Plugins", show=False),
        Binding("f4", "switch_mode('queue')", "Queue", show=False),
        Binding("question_mark", "show_keys", "Keys", key_display="?"),
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+q", "request_quit", "Quit", show=False),
    ]

    def __init__(
        self,
        project: Project,
        *,
        registry: PluginRegistry | None = None,
        store: Store | None = None,
        # Below 0.5 s: a live screen draws once per read, and must draw twice a second.
        poll_interval: float = 0.4,
        idle_poll_interval: float = 2.0,
        clock: Callable[[], float] = time.time,
        plugin_python: str | None = None,
        store_opening: StoreOpening | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        # The interpreter pip installs plugins for (None: this one, where they load from).
        self.plugin_python = plugin_python
        self._plugins = registry
        self._store = store
        # The store being opened since before Textual was imported (see tuneboard.cli.app).
        self._store_opening = store_opening
        self._engine: Engine | None = None
        self._services_lock = threading.Lock()  # plugins and engine
        self._store_lock = threading.Lock()
        self._engine_loading = False
        self._store_thread_started = False
        self._closed = False  # close_services ran: background threads open nothing more
        self.poll_interval = poll_interval
        self.idle_poll_interval = idle_poll_interval
        self.clock = clock
        self.stopping = False
        self._last_failure: tuple[str, float] | None = None

    def on_load(self) -> None:
        """Start opening the database in the background, as the app starts running.

        Opened from here (before Textual reads the CSS and builds the first screen) rather
        than after the first frame: importing duckdb and opening the file then overlap
        Textual's own start, and the runs reach the screen sooner.
        """
        if not self._store_thread_started:
            self._store_thread_started = True
            threading.Thread(target=self._open_store, name="tuneboard-store", daemon=True).start()

    def on_mount(self) -> None:
        """Name the project in the header."""
        self.sub_title = self.project.name

    # --- user text ------------------------------------------------------------------------
    # Run ids, names and errors reach notifications and titles: never as markup, and with
    # control characters escaped (see tuneboard.ui.safe).

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A notification whose text is shown as it is (user data: never read as markup)."""
        if not markup:
            message = visible(str(message), multiline=True)
        super().notify(
            message, title=visible(title), severity=severity, timeout=timeout, markup=markup
        )

    def format_title(self, title: str, sub_title: str) -> Content:
        """The header's title and sub-title (the project's name) with control codes escaped."""
        return super().format_title(visible(title), visible(sub_title))

    def on_ready(self) -> None:
        """After the first paint: the plugins and the engine load once the runs are on screen
        (see `start_services`), or after a few seconds at the latest."""
        self.set_timer(ENGINE_START_SECONDS, self.start_services)
        self.set_interval(DEAD_OWNER_CHECK_SECONDS, self._check_dead_owners)

    def _open_store(self) -> None:
        """The store thread: open the database, then have the screen on show read it."""
        try:
            self._open_store_now(background=True)
        except TuneboardError as error:
            if not self._closed:
                with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
                    self.call_from_thread(self.notify, str(error), severity="error", timeout=30)
            return
        self.post_message(RunsChanged())

    def start_services(self) -> None:
        """Load the plugins and the engine in a background thread, unless done or under way.

        Screens call it once their first data is on screen: loading them meanwhile would
        take the CPU from drawing it.
        """
        if self._engine_loading or self._engine is not None:
            return
        self._engine_loading = True
        threading.Thread(target=self._load_services, name="tuneboard-services", daemon=True).start()

    def _load_services(self) -> None:
        try:
            # A failure shows when something uses the engine (in a worker that reports it).
            with contextlib.suppress(TuneboardError):
                self.services(background=True)
            from tuneboard.tui.warmup import import_screens

            import_screens()
        finally:
            collector.end_startup()

    def _check_dead_owners(self) -> None:
        if self.store_ready:
            self._mark_interrupted()

    @work(thread=True, exit_on_error=False, name="looking for runs whose process died")
    def _mark_interrupted(self) -> None:
        # A headless `tuneboard run` killed while the app is open would otherwise stay
        # `running` in the table forever.
        if self.store.mark_interrupted_if_any():
            self.post_message(RunsChanged())

    # --- services: plugins, database and engine, loaded after the first paint ----------------

    def services(self, *, background: bool = False) -> tuple[PluginRegistry, Store, Engine]:
        """The plugin registry, store and engine, created on first use (from any thread).

        Importing them (duckdb, pyarrow, numpy) and opening the database takes a noticeable
        part of a second, so the app paints first, then opens the store, and creates the
        plugins and the engine once the runs are on screen. `background`: called by the
        app's own loading thread, which must not create anything once the app has closed.
        """
        store = self._open_store_now(background=background)
        with self._services_lock:
            if self._engine is None:
                if background and self._closed:
                    raise TuneboardError("the app has closed")
                from tuneboard.engine.engine import Engine
                from tuneboard.plugins import load_plugins

                if self._plugins is None:
                    self._plugins = load_plugins(self.project.root)
                observer = AppObserver(self)
                self._engine = Engine(self.project, store, self._plugins, observer=observer)
            assert self._plugins is not None
            return self._plugins, store, self._engine

    def _open_store_now(self, *, background: bool = False) -> Store:
        """The store, opened first if needed (without the plugins and the engine)."""
        with self._store_lock:
            if self._store is None:
                if background and self._closed:
                    raise TuneboardError("the app has closed")
                if self._store_opening is not None:
                    # Used once: should it fail, a later call tries again from scratch.
                    opening, self._store_opening = self._store_opening, None
                    self._store = opening.wait()
                else:
                    from tuneboard.store import Store

                    self._store = Store(self.project.database)
            return self._store

    @property
    def services_ready(self) -> bool:
        """True once the plugins, store and engine exist."""
        return self._engine is not None

    @property
    def store_ready(self) -> bool:
        """True once the database is open (screens can read; the engine may still load)."""
        return self._store is not None

    @property
    def registry(self) -> PluginRegistry:
        """The loaded plugins."""
        return self.services()[0]

    @property
    def store(self) -> Store:
        """The project's database (opened on first use, without waiting for the engine)."""
        return self._open_store_now()

    @property
    def engine(self) -> Engine:
        """The engine running this app's runs."""
        return self.services()[2]

    def reload_plugins(self) -> PluginRegistry:
        """Load the plugins afresh (after pip changed them), for launches from now on.

        Runs already going keep the plugins they started with. Call it from a thread worker.
        """
        from tuneboard.plugins import load_plugins

        registry = load_plugins(self.project.root, reload=True)
        with self._services_lock:
            self._plugins = registry
            if self._engine is not None:
                self._engine.registry = registry
        return registry

    def close_services(self) -> None:
        """Cancel this app's runs (they end as cancelled) and close the database."""
        with self._services_lock, self._store_lock:
            self._closed = True
            engine, store = self._engine, self._store
        if engine is not None:
            engine.shutdown(cancel=True, timeout=60)
        if store is not None:
            store.close()
        elif self._store_opening is not None:
            self._store_opening.discard()

    def open_launch(self, experiment: str | None = None) -> None:
        """Show the launch form, on `experiment` if given (else on the one it last showed),
        with the experiment's values from tuneboard.toml.

        The app keeps one form: a pipeline's form of a hundred fields takes a good part of a
        second to build, and showing it again a few tens of milliseconds.
        """
        from tuneboard.tui.screens.launch import LaunchScreen

        if self.is_screen_installed(LAUNCH_SCREEN):
            screen = self.get_screen(LAUNCH_SCREEN)
            assert isinstance(screen, LaunchScreen)
            screen.reopen(experiment)
        else:
            self.install_screen(LaunchScreen(experiment), LAUNCH_SCREEN)
        self.push_screen(LAUNCH_SCREEN)

    # --- runs of this app -------------------------------------------------------------------

    def on_run_status_changed(self, message: RunStatusChanged) -> None:
        """Tell the user when a run ends, and redraw."""
        if message.status == "failed":
            self.notify(
                f"run {message.run_id} failed: {message.error}",
                severity="error",
                timeout=12,
            )
        elif message.status == "completed":
            self.notify(f"run {message.run_id} completed")
        elif message.status == "cancelled":
            self.notify(f"run {message.run_id} cancelled", severity="warning")
        self._tell_screen(message.run_id)

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Pass the news to the screen on show (it redraws in a worker)."""
        self._tell_screen(message.run_id)

    def _tell_screen(self, run_id: str | None) -> None:
        try:
            screen = self.screen
        except ScreenStackError:  # the app is closing
            return
        screen.post_message(RunsChanged(run_id))

    # --- failures -----------------------------------------------------------------------------

    def worker_failed(self, worker: Worker[Any]) -> None:
        """Show a failed background task as a notification (never crash, never repeat)."""
        text = f"{worker.name or 'a background task'} failed: {worker.error}"
        now = time.monotonic()
        if (
            self._last_failure
            and self._last_failure[0] == text
            and now - self._last_failure[1] < 10
        ):
            return
        self._last_failure = (text, now)
        self.notify(text, severity="error", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers report failures the same way."""
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)

    # --- help and the command palette ---------------------------------------------------------

    def action_show_keys(self) -> None:
        """Show the keys of the screen on show (and the app's)."""
        from tuneboard.tui.screens.keys import KeysScreen

        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's palette commands, with its "Keys" panel replaced by the `?` screen."""
        for command in super().get_system_commands(screen):
            if command.title == "Keys":
                yield SystemCommand("Keys", "The keys of this screen (?)", self.action_show_keys)
            else:
                yield command

    # --- quitting ----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit as `q` does (the palette's Quit calls this): ask first when runs are active."""
        self.action_request_quit()

    def action_request_quit(self) -> None:
        """Quit; if runs of this app are active, ask whether to cancel them first."""
        if self.stopping or isinstance(self.screen, ConfirmDialog):
            return
        active = self.engine.active() if self._engine is not None else []
        if not active:
            self.exit()
            return
        several = len(active) > 1

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_runs_and_exit()

        self.push_screen(
            ConfirmDialog(
                f"{len(active)} run{'s are' if several else ' is'} still active in this app.\n"
                f"Cancel {'them' if several else 'it'} and quit? "
                f"({'They are' if several else 'It is'} marked cancelled.)",
                yes="Cancel runs and quit",
                no="Stay",
            ),
            answered,
        )

    def stop_runs_and_exit(self) -> None:
        """Cancel this app's runs, wait for them to stop, then exit."""
        self.stopping = True
        self.notify("cancelling runs…", timeout=30)
        self._stop_runs()

    @work(thread=True, exit_on_error=False, name="stopping runs")
    def _stop_runs(self) -> None:
        try:
            self.engine.shutdown(cancel=True, timeout=60)
        finally:
            self.call_from_thread(self.exit)


def run_app(project: Project, store_opening: StoreOpening | None = None) -> None:
    """Open the app on `project` and, when it ends, stop its runs and close the store.

    `store_opening`: the project's store, already being opened (see `StoreOpening`).
    """
    app = TuneboardApp(project, store_opening=store_opening)
    try:
        app.run()
    finally:
        app.close_services()
