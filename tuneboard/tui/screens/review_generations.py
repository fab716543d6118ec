"""Review a run's generations: prompt, model output and reference side by side; accept the
output, edit it, or mark it bad, from the keyboard; save to the project's responses and
preferences files (`tuneboard.review.generations`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Header, Label, Static, TextArea

from tuneboard.review.generations import (
    Decision,
    GenerationItem,
    ReviewOutcome,
    describe,
    generation_files,
    pick_generation_file,
    read_generations,
    reviewed_prompts,
    save_review,
    select_generations,
)
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.widgets.footer import WrappingFooter

LIMIT = 50
CELL_WIDTH = 30
DECISION = "decision"
NARROW = 110  # below this width the three texts are stacked


@dataclass
class GenerationReviewData:
    """What the screen shows: the outputs to review from one generations file of the run."""

    files: list[Path] = field(default_factory=list)
    file: Path | None = None
    items: list[GenerationItem] = field(default_factory=list)
    error: str | None = None


def _clip(text: str, width: int = CELL_WIDTH) -> Text:
    line = " ".join(text.split())
    return Text(line if len(line) <= width else line[: width - 1] + "…")


class EditOutputDialog(ModalScreen[str | None]):
    """Edit a model output in a text area; dismisses with the text, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save edit", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, prompt: str, text: str) -> None:
        super().__init__()
        self.prompt = prompt
        self.text = text

    def compose(self) -> ComposeResult:
        """The prompt, the output to edit, the keys."""
        with Vertical(classes="dialog edit-dialog"):
            yield Label(Text(self.prompt, style="bold"), classes="question")
            yield TextArea(self.text, id="edit-output", soft_wrap=True)
            yield Label("ctrl+s: save the edit · escape: cancel", classes="hint")

    def on_mount(self) -> None:
        """Focus the text."""
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        """Keep the edit (an empty one is refused)."""
        text = self.query_one(TextArea).text
        if not text.strip():
            self.notify("an edited output cannot be empty: mark it bad (b) instead")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        """Give up the edit."""
        self.dismiss(None)


class GenerationReviewScreen(LiveScreen):
    """A run's generated outputs, one row each, judged from the keyboard."""

    live = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back"),
        Binding("a", "accept", "Accept output"),
        Binding("e", "edit", "Edit output"),
        Binding("b", "bad", "Mark bad"),
        Binding("space", "skip", "Skip"),
        Binding("backspace", "undo", "Undo"),
        Binding("s", "save", "Save"),
        Binding("f", "next_file", "Next file"),
    ]

    def __init__(self, run_id: str, *, limit: int = LIMIT) -> None:
        super().__init__()
        self.run_id = run_id
        self.limit = limit
        self.data = GenerationReviewData()
        self.file_name: str | None = None
        self.decisions: dict[str, Decision] = {}
        self.saved: dict[str, Decision] = {}

    def compose(self) -> ComposeResult:
        """Summary, the outputs, the highlighted one's prompt, output and reference, keys."""
        yield Header()
        yield Static(id="review-summary")
        table: DataTable[Any] = DataTable(id="review-table", cursor_type="row", zebra_stripes=True)
        for label in ("#", "prompt", "output", "reference", DECISION):
            table.add_column(label, key=label)
        yield table
        with Container(id="generation-panels"):
            for name in ("prompt", "output", "reference"):
                panel = Static(id=f"generation-{name}", classes="generation-panel")
                panel.border_title = name
                yield panel
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Title and focus (`LiveScreen.on_mount` then loads in a thread)."""
        self.sub_title = f"review generations of run {self.run_id}"
        self.query_one(DataTable).focus()
        self._arrange(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Side by side when wide, stacked when narrow."""
        self._arrange(event.size.width)

    def _arrange(self, width: int) -> None:
        self.query_one("#generation-panels").set_class(0 < width < NARROW, "stacked")

    def on_runs_changed(self, message: RunsChanged) -> None:
        """Runs training elsewhere change nothing here: no reload."""

    # --- data ---------------------------------------------------------------------------

    def load(self) -> GenerationReviewData:
        """The run's generations files and the outputs to review from the chosen one."""
        project = self.tb.project
        try:
            with self.tb.store.hold():
                run_id = self.tb.store.get_run(self.run_id).run_id
                files = generation_files(self.tb.store, run_id)
            path = pick_generation_file(files, run_id, self.file_name)
            items = read_generations(path)
            done = reviewed_prompts(project.responses_file, project.preferences_file)
        except TuneboardError as error:
            return GenerationReviewData(error=str(error))
        # Outputs saved from this screen stay listed (marked saved) until it closes.
        skip = [prompt for prompt in done if prompt not in self.saved]
        return GenerationReviewData(files, path, select_generations(items, self.limit, skip))

    def show(self, data: GenerationReviewData) -> None:
        """Draw the outputs with the decisions made so far."""
        self.data = data
        if data.file is not None:
            self.file_name = data.file.name
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for number, item in enumerate(data.items, start=1):
            cells = [_clip(item.prompt), _clip(item.output), _clip(item.reference or "–")]
            table.add_row(str(number), *cells, self._decision_cell(item), key=str(number))
        if data.items:
            table.move_cursor(row=min(row, len(data.items) - 1))
        self._show_summary()
        self._show_item()

    def _decision_cell(self, item: GenerationItem) -> Text:
        if item.key in self.decisions:
            return Text(describe(self.decisions[item.key]), style="bold")
        if item.key in self.saved:
            return Text(f"✓ {describe(self.saved[item.key])}", style="dim")
        return Text("")

    def _show_summary(self) -> None:
        data, project = self.data, self.tb.project
        text = Text()
        if data.error:
            text.append(data.error, style="bold")
        elif data.file is not None:
            text.append(f"{data.file.parent.name}/{data.file.name}", style="bold")
            text.append(f" · {len(data.items)} outputs, those unlike their reference first")
            if len(data.files) > 1:
                text.append(f" · file {data.files.index(data.file) + 1} of {len(data.files)}")
            pending = len(self.decisions)
            text.append(f"\n{pending} decided, not saved" if pending else "\nnothing to save")
            text.append(
                f" · saved to {project.responses_file.name} and {project.preferences_file.name}"
            )
            if not data.items:
                text.append("\nnothing left to review in this file")
        self.query_one("#review-summary", Static).update(text)

    def _show_item(self) -> None:
        item = self.current
        decision = None if item is None else self.decisions.get(item.key)
        prompt = output = reference = Text()
        if item is not None:
            prompt = Text(item.prompt)
            output = Text(item.output)
            if decision is not None and decision.verdict == "edit":
                output = Text(decision.text or "", style="bold")
                output.append("\n\nwas: ", style="dim")
                output.append(item.output, style="dim strike")
            missing = item.reference is None
            reference = Text(item.reference or "(no reference)", style="dim" if missing else "")
        self.query_one("#generation-prompt", Static).update(prompt)
        panel = self.query_one("#generation-output", Static)
        panel.update(output)
        panel.border_title = f"output · {describe(decision)}" if decision else "output"
        self.query_one("#generation-reference", Static).update(reference)

    @property
    def current(self) -> GenerationItem | None:
        """The highlighted output."""
        table = self.query_one(DataTable)
        items = self.data.items
        if not items or not 0 <= table.cursor_row < len(items):
            return None
        return items[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted output in full."""
        self._show_item()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter accepts the output, like `a`."""
        self.action_accept()

    # --- decisions ----------------------------------------------------------------------

    def _decide(self, decision: Decision | None, *, advance: bool = True) -> None:
        item = self.current
        if item is None:
            return
        if decision is None:
            self.decisions.pop(item.key, None)
        else:
            self.decisions[item.key] = decision
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.update_cell(str(row + 1), DECISION, self._decision_cell(item), update_width=True)
        if advance and row + 1 < len(self.data.items):
            table.move_cursor(row=row + 1)
        self._show_summary()
        self._show_item()

    def action_accept(self) -> None:
        """The output is good: it becomes a supervised pair."""
        self._decide(Decision("accept"))

    def action_bad(self) -> None:
        """The output is bad: with a reference, the reference is preferred over it."""
        item = self.current
        if item is not None and item.reference is None:
            self.notify("no reference: nothing is saved for a bad output (e: edit it instead)")
        self._decide(Decision("bad"))

    def action_edit(self) -> None:
        """Edit the output in a text area; saving the edit decides the row."""
        item = self.current
        if item is None:
            return
        decision = self.decisions.get(item.key)
        text = decision.text if decision and decision.text is not None else item.output

        def edited(new: str | None) -> None:
            if new is None or self.current is not item:
                return
            self._decide(Decision("accept") if new == item.output else Decision("edit", new))

        self.app.push_screen(EditOutputDialog(item.prompt, text), edited)

    def action_skip(self) -> None:
        """Leave this output undecided and go to the next."""
        table = self.query_one(DataTable)
        if table.cursor_row + 1 < len(self.data.items):
            table.move_cursor(row=table.cursor_row + 1)

    def action_undo(self) -> None:
        """Forget the decision on this output."""
        self._decide(None, advance=False)

    def action_next_file(self) -> None:
        """Review the run's next generations file."""
        files = self.data.files
        if len(files) < 2 or self.data.file is None:
            self.notify("this run has no other generations file")
            return
        self.file_name = files[(files.index(self.data.file) + 1) % len(files)].name
        self.request_refresh()

    # --- saving and leaving ---------------------------------------------------------------

    def action_save(self) -> None:
        """Save the decisions to the project's responses and preferences files."""
        if not self.decisions:
            self.notify("nothing to save: decide on some outputs first")
            return
        items = {item.key: item for item in self.data.items}
        self._save(items, {k: d for k, d in self.decisions.items() if k in items})

    @work(thread=True, exit_on_error=False, name="saving reviewed generations")
    def _save(self, items: dict[str, GenerationItem], decisions: dict[str, Decision]) -> None:
        project = self.tb.project
        try:
            outcome = save_review(
                project.responses_file, project.preferences_file, items, decisions, self.run_id
            )
        except (TuneboardError, OSError) as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self._saved, decisions, outcome)

    def _saved(self, decisions: dict[str, Decision], outcome: ReviewOutcome) -> None:
        for key, decision in decisions.items():
            self.saved[key] = decision
            if self.decisions.get(key) == decision:
                self.decisions.pop(key)
        project = self.tb.project
        message = (
            f"saved {outcome.responses} responses to {project.responses_file.name} and "
            f"{outcome.preferences} preference pairs to {project.preferences_file.name}"
        )
        if outcome.unsaved_bad:
            message += f" ({outcome.unsaved_bad} bad without a reference: nothing to save)"
        self.notify(message)
        table = self.query_one(DataTable)
        for row, item in enumerate(self.data.items):
            table.update_cell(str(row + 1), DECISION, self._decision_cell(item), update_width=True)
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
