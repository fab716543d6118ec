"""The corrections file and the review logic shared by the app and `tuneboard review`."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest

from tuneboard.config import load_project
from tuneboard.review.corrections import Correction, read_corrections, save_corrections
from tuneboard.review.items import (
    ReviewItem,
    pick_prediction_file,
    read_predictions,
    read_review_file,
    resolve_label,
    select_items,
    write_review_file,
)
from tuneboard.sdk.errors import ConfigError, DataError, TuneboardError


def item(text: str, label: str | None, prediction: str, positive: float) -> ReviewItem:
    probabilities = {"neg": 1 - positive, "pos": positive}
    return ReviewItem(text, prediction, probabilities[prediction], probabilities, label)


ITEMS = [
    item("right and sure", "pos", "pos", 0.95),
    item("wrong and sure", "neg", "pos", 0.90),
    item("wrong, unsure", "pos", "neg", 0.45),
    item("right, unsure", "pos", "pos", 0.55),
    item("unlabelled", None, "neg", 0.30),
]


# --- the corrections file -------------------------------------------------------------------


def test_saving_merges_the_latest_label_per_example_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "corrections.jsonl"
    assert read_corrections(path) == {}
    added, changed = save_corrections(
        path, [Correction("a", "pos", run="r1"), Correction("b", "neg"), Correction("a", "neg")]
    )
    assert (added, changed) == (2, 0)
    added, changed = save_corrections(
        path, [Correction("b", "pos"), Correction("b", "neg", text_pair="x"), Correction("c", "x")]
    )
    assert (added, changed) == (2, 1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"text": "a", "label": "neg"},
        {"text": "b", "label": "pos"},
        {"text": "b", "text_pair": "x", "label": "neg"},
        {"text": "c", "label": "x"},
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["corrections.jsonl"]  # no temporary left
    assert read_corrections(path)[("b", None)].label == "pos"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not valid JSON"),
        ('["a", "b"]', "line 2: expected a JSON object"),
        ('{"text": "x"}', "line 2: 'label' must be a non-empty string"),
        ('{"text": "", "label": "pos"}', "line 2: 'text' must be a non-empty string"),
        ('{"text": "x", "label": "pos", "run": 3}', "line 2: 'run' must be a string"),
    ],
)
def test_a_malformed_corrections_file_names_the_line_and_is_left_alone(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "corrections.jsonl"
    original = '{"text": "ok", "label": "pos"}\n' + line + "\n"
    path.write_text(original)
    with pytest.raises(DataError, match=message) as raised:
        read_corrections(path)
    assert str(path) in str(raised.value)
    with pytest.raises(DataError, match=message):
        save_corrections(path, [Correction("new", "neg")])
    assert path.read_text() == original


def test_the_project_names_its_corrections_file(tmp_path: Path) -> None:
    (tmp_path / "tuneboard.toml").write_text("[project]\n")
    assert load_project(tmp_path).corrections_file == tmp_path / "corrections.jsonl"
    (tmp_path / "tuneboard.toml").write_text('[project]\ncorrections = "review/fixes.jsonl"\n')
    assert load_project(tmp_path).corrections_file == tmp_path / "review" / "fixes.jsonl"
    (tmp_path / "tuneboard.toml").write_text('[project]\ncorrections = "../fixes.jsonl"\n')
    with pytest.raises(ConfigError, match=r"\[project\]: key 'corrections' must be a path inside"):
        load_project(tmp_path)


# --- choosing what to review ----------------------------------------------------------------


def texts(items: list[ReviewItem]) -> list[str]:
    return [i.text for i in items]


def test_selection_wrong_uncertain_and_both() -> None:
    assert texts(select_items(ITEMS, "wrong", None)) == ["wrong and sure", "wrong, unsure"]
    assert texts(select_items(ITEMS, "uncertain", 3)) == [
        "wrong, unsure",
        "right, unsure",
        "unlabelled",
    ]
    assert texts(select_items(ITEMS, "auto", 4)) == [
        "wrong and sure",
        "wrong, unsure",
        "right, unsure",
        "unlabelled",
    ]
    done = {("wrong and sure", None)}
    assert texts(select_items(ITEMS + ITEMS, "auto", None, skip=done))[:2] == [
        "wrong, unsure",
        "right, unsure",
    ]
    assert len(select_items(ITEMS + ITEMS, "auto", None)) == len(ITEMS)  # repeats once
    with pytest.raises(TuneboardError, match="expected one of auto, wrong, uncertain"):
        select_items(ITEMS, "random", 3)  # type: ignore[arg-type]


def test_labels_resolve_exactly_or_ignoring_case() -> None:
    assert resolve_label(" POS ", ["neg", "pos"]) == "pos"
    assert resolve_label("pos", ["pos", "POS"]) == "pos"
    assert resolve_label("Pos", ["pos", "POS"]) is None  # ambiguous
    assert resolve_label("maybe", ["neg", "pos"]) is None


# --- predictions files ----------------------------------------------------------------------


def test_reads_jsonl_from_evaluate_and_csv_from_predict(tmp_path: Path) -> None:
    jsonl = tmp_path / "predictions-validation.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "text": "t",
                "label": "neg",
                "prediction": "pos",
                "probabilities": {"neg": 0.2, "pos": 0.8},
            }
        )
        + "\n"
    )
    found = read_predictions(jsonl)
    assert found.labels == ("neg", "pos")
    [only] = found.items
    assert (only.label, only.prediction, only.confidence, only.wrong) == ("neg", "pos", 0.8, True)

    table = tmp_path / "predictions-pool.csv"
    table.write_text('text,prediction,prob_neg,prob_pos\n"a, b",neg,0.6,0.4\nc,pos,0.1,0.9\n')
    found = read_predictions(table)
    assert [(i.text, i.label, i.confidence) for i in found.items] == [
        ("a, b", None, 0.6),
        ("c", None, 0.9),
    ]
    table.write_text("text,prediction,prob_neg,prob_pos\nc,pos,0.1,lots\n")
    with pytest.raises(DataError, match="line 2: a probability is not a number"):
        read_predictions(table)
    tokens = tmp_path / "predictions-test.csv"
    tokens.write_text("sentence,token,tag,prediction\n0,Oslo,B-LOC,B-LOC\n")
    with pytest.raises(DataError, match="token classification predictions cannot be reviewed"):
        read_predictions(tokens)


def test_picking_a_file_prefers_anything_but_the_test_split(tmp_path: Path) -> None:
    newest_first = [
        tmp_path / "s3" / "predictions-test.jsonl",
        tmp_path / "s1" / "predictions-validation.jsonl",
    ]
    assert pick_prediction_file(newest_first, "r", None) == newest_first[1]
    assert pick_prediction_file(newest_first[:1], "r", None) == newest_first[0]
    assert pick_prediction_file(newest_first, "r", "predictions-test.jsonl") == newest_first[0]
    assert (
        pick_prediction_file(newest_first, "r", "s1/predictions-validation.jsonl")
        == newest_first[1]
    )
    with pytest.raises(TuneboardError, match=r"has no predictions file 'x\.csv'; it has: pred"):
        pick_prediction_file(newest_first, "r", "x.csv")
    with pytest.raises(
        TuneboardError, match="run r has no predictions to review: add an `evaluate`"
    ):
        pick_prediction_file([], "r", None)


# --- the review file ------------------------------------------------------------------------


def fill(path: Path, values: dict[str, str]) -> None:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["corrected_label"] = values.get(row["text"], "")
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_review_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "reviews" / "run.csv"
    chosen = select_items(ITEMS, "auto", 3)
    write_review_file(path, "run-1", ["neg", "pos"], chosen)
    with path.open(newline="") as f:
        header = next(csv.reader(f))
    assert header == [
        "run",
        "text",
        "label",
        "prediction",
        "confidence",
        "prob_neg",
        "prob_pos",
        "corrected_label",
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_review_file(path) == []  # nothing filled in yet
    fill(path, {"wrong and sure": "neg", "wrong, unsure": " NEG "})
    corrections = read_review_file(path)
    assert [(c.text, c.label, c.run) for c in corrections] == [
        ("wrong and sure", "neg", "run-1"),
        ("wrong, unsure", "neg", "run-1"),
    ]
    assert all(c.time for c in corrections)


def test_review_file_with_an_unknown_label_names_file_line_and_value(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    write_review_file(path, "run-1", ["neg", "pos"], select_items(ITEMS, "auto", 3))
    fill(path, {"wrong and sure": "neg", "right, unsure": "neutral"})
    with pytest.raises(DataError) as raised:
        read_review_file(path)
    assert str(raised.value) == (
        f"{path}: line 4: corrected_label 'neutral' is not a label of the model (labels: neg, pos)"
    )
    path.write_text("text,label\nx,pos\n")
    with pytest.raises(DataError, match="not a review file from `tuneboard review`"):
        read_review_file(path)
