"""The `feedback` stage: corrections into training, eval overlap, drop patterns, rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import RecordingContext

from tuneboard.builtin.feedback import Feedback, FeedbackParams
from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    PipelineState,
    TextExample,
)
from tuneboard.sdk.errors import ConfigError, DataError
from tuneboard.sdk.params import build_params
from tuneboard.testing import ThrowawayProject


def state() -> PipelineState:
    ex = TextExample
    return PipelineState(
        task=SEQUENCE_CLASSIFICATION,
        labels=["neg", "pos"],
        splits={
            "train": [
                ex("good film", "pos"),
                ex("mislabelled gem", "neg"),
                ex("spam http://x", "pos"),
            ],
            "validation": [ex("in validation", "neg"), ex("fine", "pos")],
            "test": [ex("in test", "pos")],
        },
    )


def write(folder: Path, *rows: dict[str, Any], name: str = "corrections.jsonl") -> None:
    (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def run(ctx: RecordingContext, st: PipelineState, **values: Any) -> PipelineState:
    params = build_params(FeedbackParams, values, "test (feedback)")
    return Feedback(params).run(ctx, st)


def train(st: PipelineState) -> list[tuple[str, str | None]]:
    return sorted((ex.text, ex.label) for ex in st.splits["train"] if isinstance(ex, TextExample))


def logged(ctx: RecordingContext) -> dict[str, float]:
    return ctx.logs[-1][1]


CORRECTIONS = [
    {"text": "mislabelled gem", "label": "pos"},  # in train, wrong label
    {"text": "in validation", "label": "pos"},  # in validation
    {"text": "brand new", "label": "neg"},  # nowhere yet
    {"text": "other project", "label": "neutral"},  # a label this model lacks
]


def test_corrections_join_training_with_their_weight(tmp_path: Path) -> None:
    write(tmp_path, *CORRECTIONS)
    ctx, st = RecordingContext(tmp_path), state()
    run(ctx, st, weight=2)
    assert train(st) == [
        ("brand new", "neg"),
        ("brand new", "neg"),
        ("good film", "pos"),
        ("in validation", "pos"),
        ("in validation", "pos"),
        ("mislabelled gem", "pos"),
        ("mislabelled gem", "pos"),
        ("spam http://x", "pos"),
    ]
    assert [ex.text for ex in st.splits["validation"]] == ["fine"]  # moved out
    assert logged(ctx) == {
        "feedback/corrections": 3.0,
        "feedback/relabelled": 1.0,
        "feedback/moved": 1.0,
        "feedback/added": 6.0,
        "feedback/dropped": 0.0,
    }
    warning = [m for level, m in ctx.events if level == "warning"]
    assert warning == ["skipped corrections with labels the model does not have: 'neutral' (1)"]
    before = (train(st), list(st.splits["validation"]), list(st.splits["test"]))
    run(ctx, st, weight=2)  # the same stage again (a `repeat` round): the same splits
    assert (train(st), st.splits["validation"], st.splits["test"]) == before


def test_relabel_keeps_evaluation_examples_where_they_are(tmp_path: Path) -> None:
    write(tmp_path, {"text": "in validation", "label": "pos"}, {"text": "in test", "label": "neg"})
    ctx, st = RecordingContext(tmp_path), state()
    run(ctx, st, eval_overlap="relabel")
    assert [(ex.text, ex.label) for ex in st.splits["validation"]] == [  # type: ignore[union-attr]
        ("in validation", "pos"),
        ("fine", "pos"),
    ]
    assert [(ex.text, ex.label) for ex in st.splits["test"]] == [("in test", "neg")]  # type: ignore[union-attr]
    assert "in validation" not in {text for text, _ in train(st)}  # not trained on
    assert logged(ctx)["feedback/added"] == 0.0
    (tmp_path / "corrections.jsonl").write_text("")  # all taken back: the labels as they were
    run(ctx, st, eval_overlap="relabel")
    assert st.splits == state().splits


def test_drop_patterns_and_running_again_in_a_later_round(tmp_path: Path) -> None:
    write(tmp_path, *CORRECTIONS)
    ctx, st = RecordingContext(tmp_path), state()
    run(ctx, st, drop_patterns=["https?://", "^BRAND"])  # ignore_case by default
    assert train(st) == [
        ("good film", "pos"),
        ("in validation", "pos"),
        ("mislabelled gem", "pos"),
    ]
    assert logged(ctx)["feedback/dropped"] == 2.0
    assert ("info", "dropped by pattern: 'https?://' 1, '^BRAND' 1") in ctx.events

    # Next round: corrections taken back, one changed, one new; the last round is undone first.
    write(tmp_path, {"text": "mislabelled gem", "label": "neg"}, {"text": "later", "label": "pos"})
    run(ctx, st, weight=3)
    assert [ex.text for ex in st.splits["validation"]] == ["fine", "in validation"]
    assert train(st) == [
        ("good film", "pos"),
        ("later", "pos"),
        ("later", "pos"),
        ("later", "pos"),
        ("mislabelled gem", "neg"),
        ("mislabelled gem", "neg"),
        ("mislabelled gem", "neg"),
        ("spam http://x", "pos"),
    ]


def test_file_key_missing_file_and_project_setting(tmp_path: Path) -> None:
    ctx, st = RecordingContext(tmp_path), state()
    run(ctx, st)  # no corrections yet: nothing changes
    assert train(st) == train(state())
    assert "from corrections.jsonl (not there yet)" in ctx.events[-1][1]
    write(tmp_path, {"text": "elsewhere", "label": "pos"}, name="other.jsonl")
    run(ctx, st, file="other.jsonl")
    assert ("elsewhere", "pos") in train(st)


def test_the_project_corrections_setting_reaches_the_stage(
    tuneboard_project: ThrowawayProject,
) -> None:
    root = tuneboard_project.root
    (root / "tuneboard.toml").write_text(
        '[project]\nname = "throwaway"\ndevices = ["cpu"]\ncorrections = "fixes.jsonl"\n'
    )
    write(root, {"text": "brand new", "label": "negative"}, name="fixes.jsonl")
    write(root, {"text": "ignored", "label": "negative"})  # the default file is not the setting
    result = tuneboard_project.run({"plugin": "feedback"})
    assert result.status == "completed", result.error
    assert result.metrics["feedback/added"] == 1
    assert any("1 corrections from fixes.jsonl" in message for message in result.messages())


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'drop_patterns': '\(' is not a regular expression"):
        build_params(FeedbackParams, {"drop_patterns": ["("]}, "test (feedback)")
    with pytest.raises(ConfigError, match="key 'weight' must be >= 1"):
        build_params(FeedbackParams, {"weight": 0}, "test (feedback)")
    (tmp_path / "corrections.jsonl").write_text('{"text": "x", "label": "pos"}\n{"text": 1}\n')
    with pytest.raises(DataError, match=r"corrections.jsonl: line 2: 'text' must be"):
        run(RecordingContext(tmp_path), state())
    tokens = PipelineState(task=TOKEN_CLASSIFICATION, labels=["O"], splits={"train": []})
    with pytest.raises(
        ConfigError, match="feedback: supports sequence-classification and generation tasks"
    ):
        run(RecordingContext(tmp_path), tokens)
