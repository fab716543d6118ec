"""The Queue screen (4): every device slot with its figures and runs, and the queue in order.

The keys steer the queue as `tuneboard queue` does: the order, holds, pins and the pause live
in the database, so a headless `tuneboard run` obeys them too (see docs/running.md). Reads
and changes run in thread workers; the screen polls like the other live screens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Header, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.safe import safe_text

if TYPE_CHECKING:
    from tuneboard.engine.steering import Slots
    from tuneboard.store import Store
    from tuneboard.store.queue import QueueEntry, QueueState

ANY_DEVICE = "-"  # the picker's option that unpins


@dataclass(frozen=True)
class QueueData:
    """What one read brings: the queue, and the devices with their runs."""

    state: QueueState
    slots: list[Slots]


class QueueScreen(LiveScreen):
    """Devices and the queue, live; keys move, hold, pin, pause and cancel queued runs."""

    DEFAULT_CSS = """
    QueueScreen #devices { height: auto; max-height: 10; }
    QueueScreen #queue { height: 1fr; }
    QueueScreen #queue-summary { height: auto; padding: 0 1; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("K", "move('up')", "Up"),
        Binding("J", "move('down')", "Down"),
        Binding("t", "move('top')", "To front"),
        Binding("h", "hold", "Hold/release"),
        Binding("p", "pin", "Pin"),
        Binding("P", "pause", "Pause queue"),
        Binding("x", "cancel_run", "Cancel run"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: QueueData | None = None
        self._follow: str | None = None  # keep the cursor on this run after it moves

    def compose(self) -> ComposeResult:
        """Header, navigation, the devices, the queue, a summary line and the footer."""
        yield Header()
        yield NavBar("queue")
        yield Label("devices", classes="section")
        devices: DataTable[Any] = Table(id="devices", cursor_type="none", zebra_stripes=True)
        for label in ("device", "name", "use", "memory", "slots", "running"):
            devices.add_column(label, key=label)
        yield devices
        yield Label("queue", classes="section", id="queue-title")
        table: DataTable[Any] = Table(id="queue", cursor_type="row", zebra_stripes=True)
        for label in ("#", "run", "experiment", "state", "waiting"):
            table.add_column(label, key=label)
        yield table
        yield Static(id="queue-summary")
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Focus the queue (`LiveScreen.on_mount` then starts polling)."""
        self.query_one("#queue", DataTable).focus()

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast while runs are queued or running."""
        data = self.data
        return data is not None and (
            bool(data.state.entries) or any(slot.runs for slot in data.slots)
        )

    def load(self) -> QueueData:
        """The queue and the running runs (one open of the file), and the devices' figures."""
        from tuneboard.engine.steering import device_slots

        store = self.tb.store
        with store.hold():
            state = store.queue()
            running = [(r.run_id, r.device) for r in store.list_runs(status="running")]
        return QueueData(state, device_slots(self.tb.project, running))

    def show(self, data: QueueData) -> None:
        """Draw the devices and the queue, the cursor staying on its run."""
        from tuneboard.engine.steering import entry_state, memory_text, use_text, waiting_reason

        follow = self._follow or self.current_run_id()  # of the rows shown until now
        self._follow = None
        self.data = data
        devices = self.query_one("#devices", DataTable)
        devices.clear()
        for slot in data.slots:
            figures = slot.figures
            devices.add_row(
                safe_text(figures.device),
                safe_text(figures.name),
                Text(use_text(figures)),
                Text(memory_text(figures)),
                Text(str(slot.slots)),
                safe_text(" ".join(slot.runs) or "idle"),
            )
        table = self.query_one("#queue", DataTable)
        table.clear()
        for n, entry in enumerate(data.state.entries, 1):
            table.add_row(
                Text(str(n)),
                safe_text(entry.run_id),
                safe_text(entry.experiment),
                safe_text(entry_state(entry)),
                safe_text(waiting_reason(data.state, entry)),
                key=entry.run_id,
            )
        ids = data.state.order
        if follow in ids:
            table.move_cursor(row=ids.index(follow), animate=False)
        queued = len(ids)
        held = sum(1 for e in data.state.entries if e.held)
        parts = ["queue PAUSED (P resumes)" if data.state.paused else "queue running"]
        parts.append(f"{queued} queued")
        if held:
            parts.append(f"{held} held")
        self.query_one("#queue-summary", Static).update(" · ".join(parts))

    def current_entry(self) -> QueueEntry | None:
        """The queued run under the cursor."""
        if self.data is None:
            return None
        table = self.query_one("#queue", DataTable)
        entries = self.data.state.entries
        if 0 <= table.cursor_row < len(entries):
            return entries[table.cursor_row]
        return None

    def current_run_id(self) -> str | None:
        """The id of the queued run under the cursor."""
        entry = self.current_entry()
        return entry.run_id if entry else None

    # --- actions ------------------------------------------------------------------------

    def _selected(self) -> QueueEntry | None:
        entry = self.current_entry()
        if entry is None:
            self.notify("no queued run under the cursor", severity="warning")
        return entry

    def action_move(self, move: str) -> None:
        """Move the queued run under the cursor up, down or to the front."""
        from tuneboard.engine.steering import move_run

        entry = self._selected()
        if entry is not None:
            self._follow = entry.run_id
            self._steer(lambda store: move_run(store, entry.run_id, move), None)  # type: ignore[arg-type]

    def action_hold(self) -> None:
        """Hold the queued run under the cursor back, or release it."""
        from tuneboard.engine.steering import hold_run

        entry = self._selected()
        if entry is not None:
            held = not entry.held
            self._steer(
                lambda store: hold_run(store, entry.run_id, held),
                f"run {entry.run_id} {'held' if held else 'released'}",
            )

    def action_pause(self) -> None:
        """Pause the whole queue, or resume it."""
        from tuneboard.engine.steering import pause_queue

        paused = not (self.data is not None and self.data.state.paused)
        self._steer(
            lambda store: pause_queue(store, paused), "queue paused" if paused else "queue resumed"
        )

    def action_pin(self) -> None:
        """Pick a device for the queued run under the cursor (or any device)."""
        from tuneboard.engine.steering import pin_run

        entry = self._selected()
        if entry is None or self.data is None:
            return
        devices = [slot.figures.device for slot in self.data.slots if slot.slots]

        def picked(device: str | None) -> None:
            if device is None:
                return
            pin = None if device == ANY_DEVICE else device
            self._steer(
                lambda store: pin_run(store, self.tb.project, entry.run_id, pin),
                f"run {entry.run_id} " + (f"pinned to {pin}" if pin else "unpinned"),
            )

        self.app.push_screen(DevicePicker(entry.run_id, devices, entry.pinned), picked)

    def action_cancel_run(self) -> None:
        """Cancel the queued run under the cursor (it ends without starting)."""
        entry = self._selected()
        if entry is not None:
            self._cancel(entry.run_id)

    @work(thread=True, exit_on_error=False, name="cancelling a queued run")
    def _cancel(self, run_id: str) -> None:
        app = self.tb
        if app.engine.cancel(run_id):
            app.call_from_thread(app.notify, f"cancelling run {run_id}…")
        self.post_message_refresh()

    @work(thread=True, exit_on_error=False, name="changing the queue")
    def _steer(self, change: Callable[[Store], Any], done: str | None) -> None:
        """Make a change to the queue in the database, then show it (and let this app's own
        runs obey it at once)."""
        app = self.tb
        try:
            change(app.store)
        except TuneboardError as error:
            app.call_from_thread(app.notify, str(error), severity="error")
            return
        if done:
            app.call_from_thread(app.notify, done)
        if app.services_ready:
            app.engine.read_queue()
        self.post_message_refresh()

    def post_message_refresh(self) -> None:
        """Ask for a refresh from any thread."""
        from tuneboard.tui.messages import RunsChanged

        self.post_message(RunsChanged())


class DevicePicker(ModalScreen[str | None]):
    """Picks the device a queued run may start on; dismisses with it, `ANY_DEVICE`, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, devices: list[str], pinned: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.devices = devices
        self.pinned = pinned

    def compose(self) -> ComposeResult:
        """A title and one option per device, then "any device"."""
        options = [
            Option(
                safe_text(device + ("  (pinned now)" if device == self.pinned else "")), id=device
            )
            for device in self.devices
        ]
        options.append(Option("any device (unpin)", id=ANY_DEVICE))
        with Vertical(classes="dialog picker-dialog"):
            yield Label(safe_text(f"start run {self.run_id} only on"), classes="question")
            yield OptionList(*options, id="devices")
            yield Label("enter to pick, escape to cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Pin to the chosen device."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
