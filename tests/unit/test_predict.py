"""The `predict` stage: predictions of a split or a file, as CSV or JSON lines, for both tasks."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import RecordingContext, one_torch_thread, toy_state
from multistep_helpers import toy_ner_state

from tuneboard.builtin.evaluate import Evaluate, EvaluateParams
from tuneboard.builtin.predict import Predict, PredictParams
from tuneboard.sdk.contracts import PipelineState
from tuneboard.sdk.errors import ConfigError, DataError
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def run(ctx: RecordingContext, state: PipelineState, **values: Any) -> Path:
    Predict(build_params(PredictParams, values, "test (predict)")).run(ctx, state)
    [(path, kind)] = ctx.artifacts[-1:]
    assert kind == "predictions" and path.is_relative_to(ctx.run_dir.resolve())
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_split_predictions_as_csv_match_the_evaluation(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    path = run(ctx, state)
    assert path == ctx.run_dir.resolve() / "predictions-test.csv"
    rows = read_csv(path)
    assert list(rows[0]) == ["text", "label", "prediction", "prob_neg", "prob_pos"]
    assert [r["text"] for r in rows] == [ex.text for ex in state.splits["test"]]
    for row in rows:
        probs = {"neg": float(row["prob_neg"]), "pos": float(row["prob_pos"])}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["prediction"] == max(probs, key=lambda k: probs[k])
    accuracy = sum(r["label"] == r["prediction"] for r in rows) / len(rows)
    Evaluate(EvaluateParams()).run(ctx, state)
    assert state.metrics["test/accuracy"] == pytest.approx(accuracy)
    assert ctx.events[0][1].startswith("wrote 16 predictions (test) to ")


def test_file_predictions_as_jsonl(tmp_path: Path) -> None:
    state = toy_state()
    ctx = RecordingContext(tmp_path)
    (tmp_path / "new.txt").write_text("great movie\n\nawful plot\n", encoding="utf-8")
    path = run(ctx, state, file="new.txt", format="jsonl", output="out/new.jsonl")
    assert path == ctx.run_dir.resolve() / "out" / "new.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["great movie", "awful plot"]
    assert all(set(r) == {"text", "prediction", "probabilities"} for r in rows)
    assert set(rows[0]["probabilities"]) == {"neg", "pos"}
    (tmp_path / "new.tsv").write_text("id\tbody\tlabel\n1\tnice story\tpos\n", encoding="utf-8")
    path = run(ctx, state, file="new.tsv", text_column="body")
    [row] = read_csv(path)
    assert (row["text"], row["label"]) == ("nice story", "pos")


def test_sentence_predictions_one_tag_per_word(tmp_path: Path) -> None:
    state = toy_ner_state()
    ctx = RecordingContext(tmp_path, max_length=8)  # long sentences lose their last words
    path = run(ctx, state, split="validation", format="jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row, example in zip(rows, state.splits["validation"], strict=True):
        assert row["tokens"] == list(example.tokens) and row["tags"] == list(example.tags)
        assert len(row["predictions"]) == len(example.tokens)
        tagged = [t for t in row["predictions"] if t is not None]
        assert set(tagged) <= set(state.labels) and tagged == row["predictions"][: len(tagged)]
    assert any(None in r["predictions"] for r in rows)
    assert any("have no tag" in message for level, message in ctx.events if level == "warning")

    (tmp_path / "raw.conll").write_text("Maria\nvisited\nOslo\n\nAiko\nleft\n", encoding="utf-8")
    rows = read_csv(run(ctx, state, file="raw.conll"))
    assert list(rows[0]) == ["sentence", "token", "prediction"]
    assert [(r["sentence"], r["token"]) for r in rows] == [
        ("0", "Maria"),
        ("0", "visited"),
        ("0", "Oslo"),
        ("1", "Aiko"),
        ("1", "left"),
    ]
    (tmp_path / "lines.txt").write_text("Maria visited Oslo\n", encoding="utf-8")
    (tmp_path / "tagged.conll").write_text("Oslo B-LOC\n", encoding="utf-8")
    assert len(read_csv(run(ctx, state, file="lines.txt"))) == 3
    [row] = read_csv(run(ctx, state, file="tagged.conll"))
    assert row["tag"] == "B-LOC" and row["prediction"] in state.labels


def test_predict_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 'output' must be a relative path inside"):
        build_params(PredictParams, {"output": "../x.csv"}, "test")
    state = toy_state(n_train=4)
    ctx = RecordingContext(tmp_path)
    with pytest.raises(DataError, match=r"key 'file': file not found: none\.txt"):
        run(ctx, state, file="none.txt")
    (tmp_path / "data.xml").write_text("<a/>", encoding="utf-8")
    with pytest.raises(DataError, match=r"cannot read \.xml files"):
        run(ctx, state, file="data.xml")
    (tmp_path / "data.csv").write_text("body\nhello\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.csv: line 2: no text in column 'text'"):
        run(ctx, state, file="data.csv")
    del state.splits["test"]
    with pytest.raises(DataError, match="no 'test' split"):
        run(ctx, state)
    assert all(spec.help for spec in describe_params(PredictParams))
