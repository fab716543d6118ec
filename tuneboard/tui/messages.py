"""Messages between the engine's threads, thread workers and the app's event loop.

Worker threads never touch widgets: they post one of these messages, and a handler on the
event loop draws. Bursts merge: a pending `RunsChanged` is replaced by the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

from tuneboard.engine.observer import RunObserver, StageSummary

if TYPE_CHECKING:
    from textual.app import App


class RunsChanged(Message, bubble=False):
    """Something about runs changed (a status, progress or new metric points)."""

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id

    def can_replace(self, message: Message) -> bool:
        """Merge bursts: only the latest pending change is worth drawing."""
        return isinstance(message, RunsChanged)


class RunStatusChanged(Message, bubble=False):
    """A run of this app changed status (the app tells the user when one ends)."""

    def __init__(self, run_id: str, status: str, error: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.status = status
        self.error = error


class Loaded(Message, bubble=False):
    """A thread worker of a live screen has read fresh data from the store."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data


class AppObserver(RunObserver):
    """Turns the engine's notifications (from run threads) into messages for the app."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app

    def run_status(self, run_id: str, status: str, error: str | None) -> None:
        """Tell the app; it notifies when a run ends and redraws."""
        self._app.post_message(RunStatusChanged(run_id, status, error))

    def stage_started(self, run_id: str, stage_index: int, name: str, plugin: str) -> None:
        """Ask for a redraw."""
        self._app.post_message(RunsChanged(run_id))

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Ask for a redraw (merged with other pending ones)."""
        self._app.post_message(RunsChanged(run_id))

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """Ask for a redraw."""
        self._app.post_message(RunsChanged(run_id))
