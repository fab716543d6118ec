"""What every screen shares: access to the app's services, worker failures, live refreshing."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from textual import events, work
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import WorkerState

from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.messages import Loaded, RunsChanged

if TYPE_CHECKING:
    from textual.worker import Worker

    from tuneboard.store import RunRow
    from tuneboard.tui.app import TuneboardApp


class BaseScreen(Screen[None]):
    """A screen of the tuneboard app; a failing worker of it becomes a notification."""

    _styled_with: tuple[Any, ...] | None = None

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        """Skip Textual's restyle of the whole screen when it cannot change anything.

        Textual restyles every widget of a screen each time it shows. The first time, they
        were styled a moment before, as they mounted; later, only a new theme or new rules
        (read while the screen was hidden) can make them look different: changes of their
        own classes and state restyle them as they happen. On a form of 500 widgets that
        pass was a third of the time the screen took to appear. (This runs before Textual's
        own handler, which reads `refresh_styles`.)
        """
        key = self.tb.style_key()
        if self._styled_with is None or key == self._styled_with:
            event.refresh_styles = False
        self._styled_with = key

    @property
    def tb(self) -> TuneboardApp:
        """The app, typed."""
        return cast("TuneboardApp", self.app)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report a failed worker (the one place worker failures are handled)."""
        if event.state == WorkerState.ERROR:
            self.tb.worker_failed(event.worker)
        self.worker_ended(event.worker, event.state)

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """Called on every state change of this screen's workers; override to react."""

    @work(thread=True, exit_on_error=False, name="re-launching a run")
    def relaunch(self, run: RunRow) -> None:
        """Launch `run`'s config again (in a thread: preparing loads the data)."""
        from tuneboard.tui.launching import relaunch

        app = self.tb
        try:
            run_id = relaunch(app.project, app.registry, app.engine, run)
        except TuneboardError as error:
            app.call_from_thread(app.notify, str(error), severity="error", title="re-launch")
            return
        app.call_from_thread(app.notify, f"queued run {run_id} (re-launch of {run.run_id})")
        app.post_message(RunsChanged(run_id))


class LiveScreen(BaseScreen):
    """A screen that reads from the store in a thread worker, a few times a second.

    `load()` runs in a thread and returns data; `show(data)` draws it on the event loop, in
    one batch. Requests while a load runs merge into one more load. Polling pauses while
    the screen is hidden under another and resumes (with a refresh) when it shows again.

    Each read opens the database file (tens of milliseconds of CPU), so while nothing is
    active (`busy()` is false) the timer reads only every `idle_poll_interval` seconds.
    """

    live = True

    def __init__(self) -> None:
        super().__init__()
        self._loading = False
        self._again = False
        self._timer: Timer | None = None
        self._last_request = 0.0
        self._soon = False
        self._covered = False

    def on_mount(self) -> None:
        """Start polling.

        Textual calls the `on_mount` of every class in the MRO (subclass first), so a screen's
        own `on_mount` must not call this one: a second timer, never paused, would keep a
        covered screen reading and redrawing.
        """
        if self.live:
            self._timer = self.set_interval(self.tb.poll_interval, self._tick)
        self.request_refresh()

    def on_screen_suspend(self) -> None:
        """Stop polling (and drawing) while hidden."""
        self._covered = True
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        """Poll again, starting now (one refresh brings what changed meanwhile)."""
        self._covered = False
        if self._timer is not None:
            self._timer.resume()
        if self.is_mounted:
            self.request_refresh()

    def stop_polling(self) -> None:
        """No more timed refreshes (for example once a shown run has ended)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def busy(self) -> bool:
        """Whether what the screen shows may change soon (a run is active)."""
        return True

    def _tick(self) -> None:
        if self._covered:
            return
        idle_for = time.monotonic() - self._last_request
        if self._soon or self.busy() or idle_for >= self.tb.idle_poll_interval:
            self._soon = False
            self.request_refresh()

    def on_runs_changed(self, message: RunsChanged) -> None:
        """A run of this app changed: refresh now, or at the next tick if one just ran.

        Training threads report every step; reading more often than the timer would only
        take CPU time from them. A covered screen ignores it: it refreshes when shown again.
        """
        if self._covered:
            return
        if time.monotonic() - self._last_request >= self.tb.poll_interval:
            self.request_refresh()
        else:
            self._soon = True

    def request_refresh(self) -> None:
        """Load fresh data in a thread worker, unless a load is running (then once more after).

        Before the database is open there is nothing to read: the app asks again once it is.
        """
        if not self.tb.store_ready:
            return
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._last_request = time.monotonic()
        self.run_worker(
            self._load_in_thread,
            thread=True,
            exit_on_error=False,
            group="load",
            name=f"reading the database for {type(self).__name__}",
        )

    def _load_in_thread(self) -> None:
        self.post_message(Loaded(self.load()))

    def on_loaded(self, message: Loaded) -> None:
        """Draw what a worker loaded, then load again if asked meanwhile."""
        message.stop()
        self._loading = False
        if self._covered:
            # Drawn on resume, with fresher data: Textual still lays out a covered screen
            # that changes, and repaints the screen on top of it.
            return
        with self.app.batch_update():
            self.show(message.data)
        # Data is on screen: the plugins and the engine can load now without delaying it.
        self.call_after_refresh(self.tb.start_services)
        if self._again:
            self._again = False
            self.request_refresh()

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """A load that failed or was cancelled must not block the next one."""
        if worker.group == "load" and state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._loading = False

    def load(self) -> Any:
        """Read what the screen shows (runs in a thread: no widgets here)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Draw loaded data (on the event loop)."""
        raise NotImplementedError
