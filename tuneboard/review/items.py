"""Human review of a run's predictions: which examples to look at, and turning answers into
corrections.

A run's predictions come from its `evaluate` stages (``predictions-<split>.jsonl`` in the
stage's folder) or `predict` stages (CSV or JSON lines), recorded as `predictions`
artifacts. `select_items` picks the examples worth a person's time: those the model got
wrong (most confident mistakes first: often mislabelled examples) and those it was least sure
of. The app's Review screen and `tuneboard review` both use this module; the answers go to
the project's corrections file (`tuneboard.review.corrections`). Sequence classification only.
No Textual, no torch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuneboard.builtin.textfiles import jsonl_objects
from tuneboard.review import files as shared
from tuneboard.review.corrections import Key, now_iso
from tuneboard.sdk.contracts import Correction
from tuneboard.sdk.errors import DataError, TuneboardError

if TYPE_CHECKING:
    from tuneboard.store import Store

ReviewBy = Literal["auto", "wrong", "uncertain"]
REVIEW_BY: tuple[ReviewBy, ...] = ("auto", "wrong", "uncertain")
PROB_PREFIX = "prob_"
CORRECTED = "corrected_label"


@dataclass(frozen=True)
class ReviewItem:
    """One predicted example: its text, reference label (when the data had one), the
    predicted label, its probability (`confidence`) and every label's probability."""

    text: str
    prediction: str
    confidence: float
    probabilities: Mapping[str, float]
    label: str | None = None
    text_pair: str | None = None

    @property
    def key(self) -> Key:
        """The example's identity in the corrections file."""
        return (self.text, self.text_pair)

    @property
    def wrong(self) -> bool:
        """True when the example has a reference label the model did not predict."""
        return self.label is not None and self.label != self.prediction


@dataclass(frozen=True)
class PredictionFile:
    """The examples of one predictions file and the model's labels, in index order."""

    path: Path
    labels: tuple[str, ...]
    items: list[ReviewItem]


# --- finding and reading predictions ---------------------------------------------------------


def prediction_files(store: Store, run_id: str) -> list[Path]:
    """The run's predictions files that still exist, newest first."""
    return shared.artifact_files(store, run_id, "predictions")


def pick_prediction_file(files: Sequence[Path], run_id: str, name: str | None) -> Path:
    """The one of `files` whose name (or path ending) is `name`; by default the newest that is
    not a test split's (reviewing test examples and training on them would make the test
    score meaningless), else the newest."""
    if not files:
        raise TuneboardError(
            f"run {run_id} has no predictions to review: add an `evaluate` stage (it writes "
            "predictions-<split>.jsonl) or a `predict` stage to the experiment"
        )
    if name is None:
        return next((f for f in files if not f.name.startswith("predictions-test.")), files[0])
    return shared.named_file(files, run_id, name, "predictions", lambda path: path.name)


def read_predictions(path: Path) -> PredictionFile:
    """Read a `predict` or `evaluate` predictions file (.jsonl or .csv) of texts."""
    text = shared.read_text(path)
    if path.suffix.lower() == ".jsonl":
        rows = list(_jsonl_rows(path, text))
    elif path.suffix.lower() == ".csv":
        rows = list(_csv_rows(path, text))
    else:
        raise DataError(f"{path}: not a predictions file (.jsonl or .csv)")
    if not rows:
        raise DataError(f"{path}: no predictions in it")
    labels = tuple(rows[0][1]["probabilities"])
    items = [_item(path, line, row, labels) for line, row in rows]
    return PredictionFile(path, labels, items)


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, row in jsonl_objects(path, text):
        if "tokens" in row:
            raise DataError(f"{path}: token classification predictions cannot be reviewed yet")
        yield number, row


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if "token" in header:
        raise DataError(f"{path}: token classification predictions cannot be reviewed yet")
    labels = [name[len(PROB_PREFIX) :] for name in header if name.startswith(PROB_PREFIX)]
    start = 2
    for record in reader:
        row: dict[str, Any] = {k: v for k, v in record.items() if not k.startswith(PROB_PREFIX)}
        try:
            row["probabilities"] = {label: float(record[PROB_PREFIX + label]) for label in labels}
        except (TypeError, ValueError):
            raise DataError(f"{path}: line {start}: a probability is not a number") from None
        for key in ("label", "text_pair"):
            if row.get(key) == "":
                row.pop(key)
        yield start, row
        start = reader.line_num + 1


def _item(path: Path, line: int, row: dict[str, Any], labels: tuple[str, ...]) -> ReviewItem:
    where = f"{path}: line {line}"
    probabilities = row.get("probabilities")
    if not isinstance(probabilities, dict) or tuple(probabilities) != labels or len(labels) < 2:
        raise DataError(f"{where}: needs a probability for each label ({', '.join(labels)})")
    text, prediction = row.get("text"), row.get("prediction")
    if not isinstance(text, str) or prediction not in labels:
        raise DataError(f"{where}: needs a 'text' and a 'prediction' among the labels")
    label, pair = row.get("label"), row.get("text_pair")
    return ReviewItem(
        text=text,
        prediction=str(prediction),
        confidence=float(probabilities[prediction]),
        probabilities={k: float(v) for k, v in probabilities.items()},
        label=None if label is None else str(label),
        text_pair=None if pair is None else str(pair),
    )


# --- choosing what to review ----------------------------------------------------------------


def select_items(
    items: Sequence[ReviewItem],
    by: ReviewBy = "auto",
    limit: int | None = 20,
    skip: Collection[Key] = (),
) -> list[ReviewItem]:
    """The examples to review, at most `limit`, leaving out those whose key is in `skip`
    (already corrected) and repeats of one example.

    ``wrong``: the examples whose reference label the model missed, most confident first.
    ``uncertain``: every example, least sure (lowest probability of the prediction) first.
    ``auto``: the wrong ones, then the least sure of the rest.
    """
    if by not in REVIEW_BY:
        raise TuneboardError(f"review by {by!r}: expected one of {', '.join(REVIEW_BY)}")
    fresh = shared.unseen(items, skip)
    wrong = sorted((i for i in fresh if i.wrong), key=lambda i: -i.confidence)
    unsure = sorted(fresh, key=lambda i: i.confidence)
    if by == "wrong":
        chosen = wrong
    elif by == "uncertain":
        chosen = unsure
    else:
        chosen = wrong + [i for i in unsure if not i.wrong]
    return chosen if limit is None else chosen[:limit]


def describe_selection(by: ReviewBy) -> str:
    """A few words saying how the examples were chosen, for headers and messages."""
    return {
        "wrong": "wrong predictions, most confident first",
        "uncertain": "least sure predictions first",
        "auto": "wrong predictions first, then the least sure",
    }[by]


def resolve_label(value: str, labels: Sequence[str]) -> str | None:
    """The label `value` names (exactly, or ignoring case when that is unambiguous)."""
    value = value.strip()
    if value in labels:
        return value
    matches = [label for label in labels if label.casefold() == value.casefold()]
    return matches[0] if len(matches) == 1 else None


# --- the review file of `tuneboard review` --------------------------------------------------


def review_header(labels: Sequence[str], pairs: bool) -> list[str]:
    """The columns of a review file."""
    columns = ["run", "text", *(["text_pair"] if pairs else []), "label", "prediction"]
    return [*columns, "confidence", *(PROB_PREFIX + label for label in labels), CORRECTED]


def write_review_file(
    path: Path, run_id: str, labels: Sequence[str], items: Sequence[ReviewItem]
) -> None:
    """Write `items` as a CSV to edit: fill `corrected_label` where the label should be another
    (or confirm one), leave it empty to skip. Written in one step, readable by its owner only."""
    pairs = any(item.text_pair is not None for item in items)
    rows = []
    for item in items:
        pair = [item.text_pair or ""] if pairs else []
        probs = [f"{item.probabilities[label]:.4f}" for label in labels]
        row = [run_id, item.text, *pair, item.label or "", item.prediction]
        rows.append([*row, f"{item.confidence:.4f}", *probs, ""])
    shared.write_review_csv(path, review_header(labels, pairs), rows)


def read_review_file(path: Path) -> list[Correction]:
    """The corrections a person wrote into a review file: every row whose `corrected_label`
    is filled. Nothing is returned unless every filled label is one of the file's labels (its
    ``prob_<label>`` columns); otherwise DataError naming the file, line and value."""
    reader = shared.review_csv(path)
    header = reader.fieldnames or []
    labels = [name[len(PROB_PREFIX) :] for name in header if name.startswith(PROB_PREFIX)]
    missing = [c for c in ("text", CORRECTED) if c not in header]
    if missing or len(labels) < 2:
        need = ", ".join(missing) or "prob_<label> for each label"
        raise DataError(
            f"{path}: not a review file from `tuneboard review` (missing columns: {need})"
        )
    corrections: list[Correction] = []
    time = now_iso()
    start = 2
    for record in reader:
        value = (record.get(CORRECTED) or "").strip()
        if value:
            label = resolve_label(value, labels)
            if label is None:
                raise DataError(
                    f"{path}: line {start}: {CORRECTED} {value!r} is not a label of the model "
                    f"(labels: {', '.join(labels)})"
                )
            text_value = record.get("text") or ""
            if not text_value.strip():
                raise DataError(f"{path}: line {start}: empty text")
            corrections.append(
                Correction(
                    text=text_value,
                    label=label,
                    text_pair=record.get("text_pair") or None,
                    run=record.get("run") or None,
                    time=time,
                )
            )
        start = reader.line_num + 1
    return corrections
