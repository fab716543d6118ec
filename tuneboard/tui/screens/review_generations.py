"""Review a run's generations: prompt, model output and reference side by side; accept the
output, edit it, or mark it bad, from the keyboard; save to the project's responses and
preferences files (`tuneboard.review.generations`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea

from tuneboard.review.generations import (
    Decision,
    GenerationItem,
    describe,
    generation_files,
    pick_generation_file,
    read_generations,
    reviewed_prompts,
    save_review,
    select_generations,
)
from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.screens.review_base import ReviewFiles, ReviewScreenBase, review_bindings
from tuneboard.ui.safe import safe_text, visible

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from tuneboard.store import Store

CELL_WIDTH = 30
DECISION = "decision"
NARROW = 110  # below this width the three texts are stacked


class GenerationReviewData(ReviewFiles[GenerationItem]):
    """What the screen shows: the outputs to review from one generations file of the run."""


def _clip(text: str, width: int = CELL_WIDTH) -> Text:
    line = visible(" ".join(text.split()))
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
            yield Label(safe_text(self.prompt, "bold", multiline=True), classes="question")
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


class GenerationReviewScreen(ReviewScreenBase[GenerationItem, Decision]):
    """A run's generated outputs, one row each, judged from the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = review_bindings(
        [
            Binding("a", "accept", "Accept output"),
            Binding("e", "edit", "Edit output"),
            Binding("b", "bad", "Mark bad"),
        ]
    )
    columns = ("#", "prompt", "output", "reference", DECISION)
    decision_column = DECISION
    title_prefix = "review generations of run"
    file_kind = "generations"
    noun = "outputs"
    empty_note = "nothing left to review in this file"
    saving = "saving reviewed generations"
    save_errors = (TuneboardError, OSError)
    data_type = GenerationReviewData

    def compose_item(self) -> ComposeResult:
        """The highlighted output's prompt, output and reference, side by side."""
        with Container(id="generation-panels"):
            for name in ("prompt", "output", "reference"):
                panel = Static(id=f"generation-{name}", classes="generation-panel")
                panel.border_title = name
                yield panel

    def on_mount(self) -> None:
        """Arrange the panels for the width (Textual then runs `ReviewScreenBase.on_mount`)."""
        self._arrange(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Side by side when wide, stacked when narrow."""
        self._arrange(event.size.width)

    def _arrange(self, width: int) -> None:
        self.query_one("#generation-panels").set_class(0 < width < NARROW, "stacked")

    # --- data ---------------------------------------------------------------------------

    def find_files(self, store: Store, run_id: str) -> list[Path]:
        """The run's generations files, newest first."""
        return generation_files(store, run_id)

    def pick_file(self, files: list[Path], run_id: str) -> Path:
        """The chosen generations file (by default the newest)."""
        return pick_generation_file(files, run_id, self.file_name)

    def read(self, files: list[Path], path: Path) -> GenerationReviewData:
        """The outputs of `path` to review, without the prompts reviewed already."""
        project = self.tb.project
        items = read_generations(path)
        done = reviewed_prompts(project.responses_file, project.preferences_file)
        chosen = select_generations(items, self.limit, self.not_saved_here(done))
        return GenerationReviewData(files, path, chosen)

    def cells(self, number: int, item: GenerationItem) -> list[Any]:
        """Number, prompt, output and reference (each clipped to a line), the decision."""
        texts = [_clip(item.prompt), _clip(item.output), _clip(item.reference or "–")]
        return [str(number), *texts, self.decision_cell(item)]

    def describe_decision(self, decision: Decision) -> str:
        """Accepted, edited or bad."""
        return describe(decision)

    def file_title(self, file: Path) -> str:
        """The stage folder and the file: every generate stage writes generations.jsonl."""
        return f"{file.parent.name}/{file.name}"

    def selection(self) -> str:
        """How the outputs were chosen."""
        return "outputs, those unlike their reference first"

    def destination(self) -> str:
        """The responses and preferences files."""
        project = self.tb.project
        return f"saved to {project.responses_file.name} and {project.preferences_file.name}"

    def show_item(self) -> None:
        """The highlighted output's prompt, output (the edit, when edited) and reference."""
        item = self.current
        decision = None if item is None else self.decisions.get(item.key)
        prompt = output = reference = Text()
        if item is not None:
            prompt = safe_text(item.prompt, multiline=True)
            output = safe_text(item.output, multiline=True)
            if decision is not None and decision.verdict == "edit":
                output = safe_text(decision.text or "", "bold", multiline=True)
                output.append("\n\nwas: ", style="dim")
                output.append(visible(item.output, multiline=True), style="dim strike")
            missing = item.reference is None
            reference = safe_text(
                item.reference or "(no reference)", "dim" if missing else "", multiline=True
            )
        self.query_one("#generation-prompt", Static).update(prompt)
        panel = self.query_one("#generation-output", Static)
        panel.update(output)
        panel.border_title = f"output · {describe(decision)}" if decision else "output"
        self.query_one("#generation-reference", Static).update(reference)

    # --- decisions ----------------------------------------------------------------------

    def action_accept(self) -> None:
        """The output is good: it becomes a supervised pair."""
        self.decide(Decision("accept"))

    def action_bad(self) -> None:
        """The output is bad: with a reference, the reference is preferred over it."""
        item = self.current
        if item is not None and item.reference is None:
            self.notify("no reference: nothing is saved for a bad output (e: edit it instead)")
        self.decide(Decision("bad"))

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
            self.decide(Decision("accept") if new == item.output else Decision("edit", new))

        self.app.push_screen(EditOutputDialog(item.prompt, text), edited)

    # --- saving ---------------------------------------------------------------------------

    def write(self, items: Mapping[str, GenerationItem], decisions: Mapping[str, Decision]) -> str:
        """Merge the decisions into the project's responses and preferences files."""
        project = self.tb.project
        responses, preferences = project.responses_file, project.preferences_file
        outcome = save_review(responses, preferences, items, decisions, self.run_id)
        message = (
            f"saved {outcome.responses} responses to {responses.name} and "
            f"{outcome.preferences} preference pairs to {preferences.name}"
        )
        if outcome.unsaved_bad:
            message += f" ({outcome.unsaved_bad} bad without a reference: nothing to save)"
        return message
