"""Review a run's predictions: accept or correct the labels of the examples it got wrong or was
least sure of, from the keyboard, and save them to the project's corrections file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Static

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
from tuneboard.tui.screens.review_base import LIMIT, ReviewFiles, ReviewScreenBase, review_bindings
from tuneboard.ui.safe import safe_text, visible

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import ComposeResult

    from tuneboard.store import Store

TEXT_WIDTH = 48
NEW_LABEL = "new label"


@dataclass
class ReviewData(ReviewFiles[ReviewItem]):
    """What the screen shows: the examples to review from one predictions file of the run,
    and the model's labels."""

    labels: tuple[str, ...] = ()


class ReviewScreen(ReviewScreenBase[ReviewItem, str]):
    """The examples of a run worth a person's look, one row each, labelled from the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = review_bindings(
        [
            Binding("a", "accept", "Accept prediction"),
            Binding("g", "keep", "Keep label"),
            Binding("1", "choose(0)", "Choose label", key_display="1-9"),
            *(Binding(str(n), f"choose({n - 1})", show=False) for n in range(2, 10)),
            Binding("c", "cycle", "Next label"),
        ],
        [Binding("m", "mode", "Wrong/unsure")],
    )
    columns = ("#", "text", "label", "predicted", "sure", NEW_LABEL)
    decision_column = NEW_LABEL
    title_prefix = "review run"
    file_kind = "predictions"
    noun = "examples"
    empty_note = "nothing left to review in this file (m: other selection)"
    saving = "saving corrections"
    data_type = ReviewData
    data: ReviewData

    def __init__(self, run_id: str, *, by: ReviewBy = "auto", limit: int = LIMIT) -> None:
        super().__init__(run_id, limit=limit)
        self.by: ReviewBy = by

    def compose_item(self) -> ComposeResult:
        """The highlighted example in full, with every label's probability."""
        yield Static(id="review-example")

    # --- data ---------------------------------------------------------------------------

    def find_files(self, store: Store, run_id: str) -> list[Path]:
        """The run's predictions files, newest first."""
        return prediction_files(store, run_id)

    def pick_file(self, files: list[Path], run_id: str) -> Path:
        """The chosen predictions file (by default the newest not of a test split)."""
        return pick_prediction_file(files, run_id, self.file_name)

    def read(self, files: list[Path], path: Path) -> ReviewData:
        """The examples of `path` to review, without those corrected already."""
        predictions = read_predictions(path)
        done = read_corrections(self.tb.project.corrections_file)
        skip = self.not_saved_here(done)
        items = select_items(predictions.items, self.by, self.limit, skip=skip)
        return ReviewData(files, path, items, labels=predictions.labels)

    def cells(self, number: int, item: ReviewItem) -> list[Any]:
        """Number, text (clipped), label, prediction (bold when wrong), its probability, the
        new label."""
        text = item.text if len(item.text) <= TEXT_WIDTH else item.text[: TEXT_WIDTH - 1] + "…"
        predicted = safe_text(item.prediction, "bold" if item.wrong else "")
        return [
            str(number),
            safe_text(text),
            safe_text(item.label or "–"),
            predicted,
            f"{item.confidence:.2f}",
            self.decision_cell(item),
        ]

    def describe_decision(self, decision: str) -> str:
        """The new label."""
        return decision

    def selection(self) -> str:
        """How the examples were chosen."""
        return f"examples: {describe_selection(self.by)}"

    def destination(self) -> str:
        """The corrections file."""
        return f"corrections go to {self.tb.project.corrections_file.name}"

    def show_item(self) -> None:
        """The highlighted example, its labels and their probabilities."""
        item = self.current
        text = Text()
        if item is not None:
            text.append(visible(item.text, multiline=True) + "\n", style="bold")
            if item.text_pair is not None:
                text.append(visible(item.text_pair, multiline=True) + "\n", style="bold")
            text.append(visible(f"label {item.label or '(none)'} · predicted {item.prediction}"))
            text.append("\n")
            for number, label in enumerate(self.data.labels, start=1):
                key = f"{number}" if number <= 9 else " "
                mark = "▶" if self.decisions.get(item.key) == label else " "
                probability = item.probabilities.get(label, 0.0)
                text.append(f"{mark} {key} {visible(label)}  {probability:.3f}\n")
        self.query_one("#review-example", Static).update(text)

    # --- decisions ----------------------------------------------------------------------

    def action_accept(self) -> None:
        """The predicted label is right."""
        if self.current is not None:
            self.decide(self.current.prediction)

    def action_keep(self) -> None:
        """The example's own label is right."""
        item = self.current
        if item is not None and item.label is None:
            self.notify("this example has no label of its own")
        elif item is not None:
            self.decide(item.label)

    def action_choose(self, index: int) -> None:
        """Label number `index + 1` is right."""
        if 0 <= index < len(self.data.labels):
            self.decide(self.data.labels[index])

    def action_cycle(self) -> None:
        """Try the next label (for more labels than number keys); stays on the example."""
        item, labels = self.current, self.data.labels
        if item is None or not labels:
            return
        now = self.decisions.get(item.key)
        following = labels[(labels.index(now) + 1) % len(labels)] if now in labels else labels[0]
        self.decide(following, advance=False)

    def action_mode(self) -> None:
        """Switch between the selections: wrong and unsure, wrong only, unsure only."""
        self.by = REVIEW_BY[(REVIEW_BY.index(self.by) + 1) % len(REVIEW_BY)]
        self.notify(f"showing {describe_selection(self.by)}")
        self.request_refresh()

    # --- saving ---------------------------------------------------------------------------

    def write(self, items: Mapping[Key, ReviewItem], decisions: Mapping[Key, str]) -> str:
        """Merge the new labels into the project's corrections file."""
        time = now_iso()
        corrections = [
            Correction(text=key[0], text_pair=key[1], label=label, run=self.run_id, time=time)
            for key, label in decisions.items()
        ]
        path = self.tb.project.corrections_file
        added, _ = save_corrections(path, corrections)
        return f"saved {len(corrections)} corrections to {path.name} ({added} new)"
