"""What the review screens share: a table of a run's items to review from one of its files,
decisions made from the keyboard (undo, skip), saving them in a thread, the next file, and
asking before leaving with decisions unsaved. `ReviewScreen` (predictions) and
`GenerationReviewScreen` (generations) add their items, their panels and their decisions."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Header, Static

from tuneboard.review.files import Keyed
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.safe import safe_text, visible

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from tuneboard.store import Store

LIMIT = 50
ItemT = TypeVar("ItemT", bound=Keyed)
DecisionT = TypeVar("DecisionT")
KeyT = TypeVar("KeyT", bound=Hashable)


@dataclass
class ReviewFiles(Generic[ItemT]):
    """What a review screen shows: the items to review from one of the run's files."""

    files: list[Path] = field(default_factory=list)
    file: Path | None = None
    items: list[ItemT] = field(default_factory=list)
    error: str | None = None


def review_bindings(
    decide: Iterable[BindingType], more: Iterable[BindingType] = ()
) -> list[BindingType]:
    """A review screen's keys: back, its `decide` keys, skip, undo, save, its `more` keys and
    the next file, in that order (the footer's)."""
    return [
        Binding("escape", "leave", "Back"),
        *decide,
        Binding("space", "skip", "Skip"),
        Binding("backspace", "undo", "Undo"),
        Binding("s", "save", "Save"),
        *more,
        Binding("f", "next_file", "Next file"),
    ]


class ReviewScreenBase(LiveScreen, Generic[ItemT, DecisionT]):
    """A run's items to review, one row each, decided from the keyboard and saved together.

    A subclass names its table's columns, draws an item's cells and its panels, reads the
    items (`read`), words a decision, writes the decisions (`write`, in a thread) and binds
    the keys that decide (calling `decide`).
    """

    live = False
    columns: ClassVar[tuple[str, ...]]
    decision_column: ClassVar[str]
    title_prefix: ClassVar[str]
    file_kind: ClassVar[str]  # "predictions": for "this run has no other predictions file"
    noun: ClassVar[str]  # what the items are called in messages: "examples", "outputs"
    empty_note: ClassVar[str]
    saving: ClassVar[str]  # the saving worker's name
    save_errors: ClassVar[tuple[type[Exception], ...]] = (TuneboardError,)
    data_type: ClassVar[type[ReviewFiles[Any]]] = ReviewFiles

    def __init__(self, run_id: str, *, limit: int = LIMIT) -> None:
        super().__init__()
        self.run_id = run_id
        self.limit = limit
        self.data: ReviewFiles[ItemT] = self.data_type()
        self.file_name: str | None = None
        self.decisions: dict[Any, DecisionT] = {}
        self.saved: dict[Any, DecisionT] = {}

    def compose(self) -> ComposeResult:
        """Summary, the items, the highlighted item's panels (`compose_item`), the keys."""
        yield Header()
        yield Static(id="review-summary")
        table: DataTable[Any] = Table(id="review-table", cursor_type="row", zebra_stripes=True)
        for label in self.columns:
            table.add_column(label, key=label)
        yield table
        yield from self.compose_item()
        yield WrappingFooter()

    def compose_item(self) -> ComposeResult:
        """The widgets that show the highlighted item in full."""
        raise NotImplementedError

    def on_mount(self) -> None:
        """Title and focus (`LiveScreen.on_mount` then loads in a thread)."""
        self.sub_title = f"{self.title_prefix} {self.run_id}"
        self.query_one(DataTable).focus()

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Runs training elsewhere change nothing here: no reload."""

    # --- data ---------------------------------------------------------------------------

    def load(self) -> ReviewFiles[ItemT]:
        """The run's files to review and the items to review from the chosen one."""
        try:
            with self.tb.store.hold():
                run_id = self.tb.store.get_run(self.run_id).run_id
                files = self.find_files(self.tb.store, run_id)
            return self.read(files, self.pick_file(files, run_id))
        except TuneboardError as error:
            return self.data_type(error=str(error))

    def find_files(self, store: Store, run_id: str) -> list[Path]:
        """The run's files to review, newest first."""
        raise NotImplementedError

    def pick_file(self, files: list[Path], run_id: str) -> Path:
        """The file of `files` to review (the one named `file_name`, by default the newest)."""
        raise NotImplementedError

    def read(self, files: list[Path], path: Path) -> ReviewFiles[ItemT]:
        """The items of `path` to review (in a thread)."""
        raise NotImplementedError

    def not_saved_here(self, done: Iterable[KeyT]) -> list[KeyT]:
        """The keys of `done` (items reviewed already) to leave out: items saved from this
        screen stay listed (marked saved) until it closes."""
        return [key for key in done if key not in self.saved]

    def show(self, data: ReviewFiles[ItemT]) -> None:
        """Draw the items with the decisions made so far."""
        self.data = data
        if data.file is not None:
            self.file_name = data.file.name
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for number, item in enumerate(data.items, start=1):
            table.add_row(*self.cells(number, item), key=str(number))
        if data.items:
            table.move_cursor(row=min(row, len(data.items) - 1))
        self._show_summary()
        self.show_item()

    def cells(self, number: int, item: ItemT) -> list[Any]:
        """The row of item `number` (`decision_cell` last)."""
        raise NotImplementedError

    def show_item(self) -> None:
        """Show the highlighted item in full."""
        raise NotImplementedError

    def describe_decision(self, decision: DecisionT) -> str:
        """A decision in a word or two, for the table."""
        raise NotImplementedError

    def decision_cell(self, item: ItemT) -> Text:
        """The item's decision: pending in bold, saved (✓) dim."""
        if item.key in self.decisions:
            return safe_text(self.describe_decision(self.decisions[item.key]), "bold")
        if item.key in self.saved:
            return safe_text(f"✓ {self.describe_decision(self.saved[item.key])}", "dim")
        return Text("")

    def _show_summary(self) -> None:
        data = self.data
        text = Text()
        if data.error:
            text.append(visible(data.error), style="bold")
        elif data.file is not None:
            text.append(visible(self.file_title(data.file)), style="bold")
            text.append(f" · {len(data.items)} {self.selection()}")
            if len(data.files) > 1:
                text.append(f" · file {data.files.index(data.file) + 1} of {len(data.files)}")
            pending = len(self.decisions)
            text.append(f"\n{pending} decided, not saved" if pending else "\nnothing to save")
            text.append(f" · {visible(self.destination())}")
            if not data.items:
                text.append(f"\n{self.empty_note}")
        self.query_one("#review-summary", Static).update(text)

    def file_title(self, file: Path) -> str:
        """The reviewed file, as the summary names it."""
        return file.name

    def selection(self) -> str:
        """What the items are and how they were chosen, after their number."""
        raise NotImplementedError

    def destination(self) -> str:
        """Where saving writes the decisions."""
        raise NotImplementedError

    @property
    def current(self) -> ItemT | None:
        """The highlighted item."""
        table = self.query_one(DataTable)
        items = self.data.items
        if not items or not 0 <= table.cursor_row < len(items):
            return None
        return items[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted item in full."""
        self.show_item()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter accepts, like `a`."""
        self.action_accept()

    def action_accept(self) -> None:
        """The model got this item right."""
        raise NotImplementedError

    # --- decisions ----------------------------------------------------------------------

    def decide(self, decision: DecisionT | None, *, advance: bool = True) -> None:
        """Decide the highlighted item (None: undecide it), then go to the next unless not
        `advance`."""
        item = self.current
        if item is None:
            return
        if decision is None:
            self.decisions.pop(item.key, None)
        else:
            self.decisions[item.key] = decision
        table = self.query_one(DataTable)
        row = table.cursor_row
        self._update_decision_cell(row, item)
        if advance and row + 1 < len(self.data.items):
            table.move_cursor(row=row + 1)
        self._show_summary()
        self.show_item()

    def _update_decision_cell(self, row: int, item: ItemT) -> None:
        table = self.query_one(DataTable)
        cell = self.decision_cell(item)
        table.update_cell(str(row + 1), self.decision_column, cell, update_width=True)

    def action_skip(self) -> None:
        """Leave this item undecided and go to the next."""
        table = self.query_one(DataTable)
        if table.cursor_row + 1 < len(self.data.items):
            table.move_cursor(row=table.cursor_row + 1)

    def action_undo(self) -> None:
        """Forget the decision on this item."""
        self.decide(None, advance=False)

    def action_next_file(self) -> None:
        """Review the run's next file."""
        files = self.data.files
        if len(files) < 2 or self.data.file is None:
            self.notify(f"this run has no other {self.file_kind} file")
            return
        self.file_name = files[(files.index(self.data.file) + 1) % len(files)].name
        self.request_refresh()

    # --- saving and leaving ---------------------------------------------------------------

    def action_save(self) -> None:
        """Save the decisions (`write`, in a thread)."""
        if not self.decisions:
            self.notify(f"nothing to save: decide on some {self.noun} first")
            return
        items = {item.key: item for item in self.data.items}
        decisions = {key: d for key, d in self.decisions.items() if key in items}
        save = partial(self._save, items, decisions)
        self.run_worker(save, name=self.saving, thread=True, exit_on_error=False)

    def write(self, items: Mapping[Any, ItemT], decisions: Mapping[Any, DecisionT]) -> str:
        """Save `decisions` (on `items`, by key) to the project's files; says what it saved
        (runs in a thread)."""
        raise NotImplementedError

    def _save(self, items: Mapping[Any, ItemT], decisions: Mapping[Any, DecisionT]) -> None:
        try:
            message = self.write(items, decisions)
        except self.save_errors as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._saved, decisions, message)

    def _saved(self, decisions: Mapping[Any, DecisionT], message: str) -> None:
        for key, decision in decisions.items():
            self.saved[key] = decision
            if self.decisions.get(key) == decision:
                self.decisions.pop(key)
        self.notify(message)
        for row, item in enumerate(self.data.items):
            self._update_decision_cell(row, item)
        self._show_summary()

    def action_leave(self) -> None:
        """Back to the run; asks first when decisions are not saved."""
        if not self.decisions:
            self.app.pop_screen()
            return

        def answered(leave: bool | None) -> None:
            if leave:
                self.app.pop_screen()

        count = len(self.decisions)
        self.app.push_screen(
            ConfirmDialog(f"Leave without saving {count} decisions?", yes="Leave", no="Stay"),
            answered,
        )
