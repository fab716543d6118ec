"""Review a run's predictions: accept or correct the labels of the examples it got wrong or was
least sure of, from the keyboard, and save them to the project's corrections file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Header, Static

from tuneboard.review.corrections import Key, now_iso, read_corrections, save_corrections
from tuneboard.review.items import (
    REVIEW_BY,
    ReviewBy,
    ReviewItem,
    describe_selection,
    pick_prediction_file,
    prediction_files,
    read_predictions,
    select_items,
)
from tuneboard.sdk.contracts import Correction
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.widgets.footer import WrappingFooter

LIMIT = 50
TEXT_WIDTH = 48
NEW_LABEL = "new label"


@dataclass
class ReviewData:
    """What the screen shows: the examples to review from one predictions file of the run."""

    files: list[Path] = field(default_factory=list)
    file: Path | None = None
    labels: tuple[str, ...] = ()
    items: list[ReviewItem] = field(default_factory=list)
    error: str | None = None


class ReviewScreen(LiveScreen):
    """The examples of a run worth a person's look, one row each, labelled from the keyboard."""

    live = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back"),
        Binding("a", "accept", "Accept prediction"),
        Binding("g", "keep", "Keep label"),
        Binding("1", "choose(0)", "Choose label", key_display="1-9"),
        *(Binding(str(n), f"choose({n - 1})", show=False) for n in range(2, 10)),
        Binding("c", "cycle", "Next label"),
        Binding("space", "skip", "Skip"),
        Binding("backspace", "undo", "Undo"),
        Binding("s", "save", "Save"),
        Binding("m", "mode", "Wrong/unsure"),
        Binding("f", "next_file", "Next file"),
    ]

    def __init__(self, run_id: str, *, by: ReviewBy = "auto", limit: int = LIMIT) -> None:
        super().__init__()
        self.run_id = run_id
        self.by: ReviewBy = by
        self.limit = limit
        self.data = ReviewData()
        self.file_name: str | None = None
        self.decisions: dict[Key, str] = {}
        self.saved: dict[Key, str] = {}

    def compose(self) -> ComposeResult:
        """Summary, the examples, the highlighted example in full, the keys."""
        yield Header()
        yield Static(id="review-summary")
        table: DataTable[Any] = DataTable(id="review-table", cursor_type="row", zebra_stripes=True)
        for label in ("#", "text", "label", "predicted", "sure", NEW_LABEL):
            table.add_column(label, key=label)
        yield table
        yield Static(id="review-example")
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Title and focus (`LiveScreen.on_mount` then loads in a thread)."""
        self.sub_title = f"review run {self.run_id}"
        self.query_one(DataTable).focus()

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Runs training elsewhere change nothing here: no reload."""

    # --- data ---------------------------------------------------------------------------

    def load(self) -> ReviewData:
        """The run's predictions files and the examples to review from the chosen one."""
        try:
            with self.tb.store.hold():
                run_id = self.tb.store.get_run(self.run_id).run_id
                files = prediction_files(self.tb.store, run_id)
            path = pick_prediction_file(files, run_id, self.file_name)
            predictions = read_predictions(path)
            done = read_corrections(self.tb.project.corrections_file)
        except TuneboardError as error:
            return ReviewData(error=str(error))
        # Examples saved from this screen stay listed (marked saved) until it closes.
        skip = [key for key in done if key not in self.saved]
        items = select_items(predictions.items, self.by, self.limit, skip=skip)
        return ReviewData(files, path, predictions.labels, items)

    def show(self, data: ReviewData) -> None:
        """Draw the examples with the decisions made so far."""
        self.data = data
        if data.file is not None:
            self.file_name = data.file.name
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for number, item in enumerate(data.items, start=1):
            table.add_row(*self._cells(number, item), key=str(number))
        if data.items:
            table.move_cursor(row=min(row, len(data.items) - 1))
        self._show_summary()
        self._show_example()

    def _cells(self, number: int, item: ReviewItem) -> list[Any]:
        text = item.text if len(item.text) <= TEXT_WIDTH else item.text[: TEXT_WIDTH - 1] + "…"
        predicted = Text(item.prediction, style="bold" if item.wrong else "")
        return [
            str(number),
            Text(text),
            Text(item.label or "–"),
            predicted,
            f"{item.confidence:.2f}",
            self._decision_cell(item),
        ]

    def _decision_cell(self, item: ReviewItem) -> Text:
        if item.key in self.decisions:
            return Text(self.decisions[item.key], style="bold")
        if item.key in self.saved:
            return Text(f"✓ {self.saved[item.key]}", style="dim")
        return Text("")

    def _show_summary(self) -> None:
        data = self.data
        text = Text()
        if data.error:
            text.append(data.error, style="bold")
        elif data.file is not None:
            text.append(f"{data.file.name}", style="bold")
            text.append(f" · {len(data.items)} examples: {describe_selection(self.by)}")
            if len(data.files) > 1:
                text.append(f" · file {data.files.index(data.file) + 1} of {len(data.files)}")
            pending = len(self.decisions)
            text.append(f"\n{pending} decided, not saved" if pending else "\nnothing to save")
            text.append(f" · corrections go to {self.tb.project.corrections_file.name}")
            if not data.items:
                text.append("\nnothing left to review in this file (m: other selection)")
        self.query_one("#review-summary", Static).update(text)

    def _show_example(self) -> None:
        item = self.current
        text = Text()
        if item is not None:
            text.append(item.text + "\n", style="bold")
            if item.text_pair is not None:
                text.append(item.text_pair + "\n", style="bold")
            text.append(f"label {item.label or '(none)'} · predicted {item.prediction}\n")
            for number, label in enumerate(self.data.labels, start=1):
                key = f"{number}" if number <= 9 else " "
                mark = "▶" if self.decisions.get(item.key) == label else " "
                probability = item.probabilities.get(label, 0.0)
                text.append(f"{mark} {key} {label}  {probability:.3f}\n")
        self.query_one("#review-example", Static).update(text)

    @property
    def current(self) -> ReviewItem | None:
        """The highlighted example."""
        table = self.query_one(DataTable)
        items = self.data.items
        if not items or not 0 <= table.cursor_row < len(items):
            return None
        return items[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted example in full."""
        self._show_example()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter accepts the prediction, like `a`."""
        self.action_accept()

    # --- decisions ----------------------------------------------------------------------

    def _decide(self, label: str | None, *, advance: bool = True) -> None:
        item = self.current
        if item is None:
            return
        if label is None:
            self.decisions.pop(item.key, None)
        else:
            self.decisions[item.key] = label
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.update_cell(str(row + 1), NEW_LABEL, self._decision_cell(item), update_width=True)
        if advance and row + 1 < len(self.data.items):
            table.move_cursor(row=row + 1)
        self._show_summary()
        self._show_example()

    def action_accept(self) -> None:
        """The predicted label is right."""
        if self.current is not None:
            self._decide(self.current.prediction)

    def action_keep(self) -> None:
        """The example's own label is right."""
        item = self.current
        if item is not None and item.label is None:
            self.notify("this example has no label of its own")
        elif item is not None:
            self._decide(item.label)

    def action_choose(self, index: int) -> None:
        """Label number `index + 1` is right."""
        if 0 <= index < len(self.data.labels):
            self._decide(self.data.labels[index])

    def action_cycle(self) -> None:
        """Try the next label (for more labels than number keys); stays on the example."""
        item, labels = self.current, self.data.labels
        if item is None or not labels:
            return
        now = self.decisions.get(item.key)
        following = labels[(labels.index(now) + 1) % len(labels)] if now in labels else labels[0]
        self._decide(following, advance=False)

    def action_skip(self) -> None:
        """Leave this example undecided and go to the next."""
        table = self.query_one(DataTable)
        if table.cursor_row + 1 < len(self.data.items):
            table.move_cursor(row=table.cursor_row + 1)

    def action_undo(self) -> None:
        """Forget the decision on this example."""
        self._decide(None, advance=False)

    def action_mode(self) -> None:
        """Switch between the selections: wrong and unsure, wrong only, unsure only."""
        self.by = REVIEW_BY[(REVIEW_BY.index(self.by) + 1) % len(REVIEW_BY)]
        self.notify(f"showing {describe_selection(self.by)}")
        self.request_refresh()

    def action_next_file(self) -> None:
        """Review the run's next predictions file."""
        files = self.data.files
        if len(files) < 2 or self.data.file is None:
            self.notify("this run has no other predictions file")
            return
        self.file_name = files[(files.index(self.data.file) + 1) % len(files)].name
        self.request_refresh()

    # --- saving and leaving ---------------------------------------------------------------

    def action_save(self) -> None:
        """Save the decisions to the project's corrections file."""
        if not self.decisions:
            self.notify("nothing to save: decide on some examples first")
            return
        items = {item.key: item for item in self.data.items}
        time = now_iso()
        corrections = [
            Correction(text=key[0], text_pair=key[1], label=label, run=self.run_id, time=time)
            for key, label in self.decisions.items()
            if key in items
        ]
        self._save(corrections)

    @work(thread=True, exit_on_error=False, name="saving corrections")
    def _save(self, corrections: list[Correction]) -> None:
        path = self.tb.project.corrections_file
        try:
            added, changed = save_corrections(path, corrections)
        except TuneboardError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._saved, corrections, added, changed)

    def _saved(self, corrections: list[Correction], added: int, changed: int) -> None:
        for correction in corrections:
            self.saved[correction.key] = correction.label
            if self.decisions.get(correction.key) == correction.label:
                self.decisions.pop(correction.key)
        name = self.tb.project.corrections_file.name
        self.notify(f"saved {len(corrections)} corrections to {name} ({added} new)")
        table = self.query_one(DataTable)
        for row, item in enumerate(self.data.items):
            table.update_cell(str(row + 1), NEW_LABEL, self._decision_cell(item), update_width=True)
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
