"""Review of generations without the app: reading generations files, saving decisions to the
responses and preferences files (all or nothing), and `tuneboard review` on a generations run."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.tui.seed import COMPLETED_TINY, seed_database
from tests.tui.test_tui_review_generations import add_generations
from tuneboard.cli import main
from tuneboard.config import load_project
from tuneboard.review.generations import (
    Decision,
    GenerationItem,
    read_generations,
    save_review,
)
from tuneboard.sdk.errors import DataError

ITEMS = {
    "q1": GenerationItem(0, "validation", "q1", "out 1", "ref 1"),
    "q2": GenerationItem(1, "validation", "q2", "out 2", None),
}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_saving_merges_by_prompt_and_a_failed_rename_changes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses, preferences = tmp_path / "responses.jsonl", tmp_path / "preferences.jsonl"
    first = save_review(responses, preferences, ITEMS, {"q1": Decision("accept")}, "r1")
    assert (first.responses, first.preferences, first.unsaved_bad) == (1, 0, 0)
    assert not preferences.exists()
    decisions = {"q1": Decision("edit", "better 1"), "q2": Decision("bad")}
    second = save_review(responses, preferences, ITEMS, decisions, "r2")
    assert (second.responses, second.preferences, second.unsaved_bad) == (1, 1, 1)
    assert [(r["prompt"], r["response"], r["run"]) for r in lines(responses)] == [
        ("q1", "better 1", "r2")  # the latest response per prompt
    ]
    assert [(p["chosen"], p["rejected"]) for p in lines(preferences)] == [("better 1", "out 1")]
    before = (responses.read_bytes(), preferences.read_bytes())

    real_replace, calls = os.replace, []

    def failing_second_replace(source: str, target: Path) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_second_replace)
    bad = {"q1": Decision("bad"), "q2": Decision("edit", "better 2")}
    with pytest.raises(OSError, match="disk full"):
        save_review(responses, preferences, ITEMS, bad, "r3")
    monkeypatch.undo()
    assert (responses.read_bytes(), preferences.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preferences.jsonl", "responses.jsonl"]


def test_a_bad_generations_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "generations.jsonl"
    path.write_text('{"index": 0, "prompt": "p", "output": "o"}\n{"index": 1, "prompt": "p"}\n')
    with pytest.raises(DataError, match=r"generations.jsonl: line 2: 'output' must be a string"):
        read_generations(path)


def test_cli_review_writes_and_applies_a_generations_review_file(sentiment_project: Path) -> None:
    seed_database(sentiment_project)
    add_generations(sentiment_project, COMPLETED_TINY)
    project = load_project(sentiment_project)
    runner = CliRunner()
    at = ["--project", str(sentiment_project)]
    written = runner.invoke(main, ["review", COMPLETED_TINY, *at])
    assert written.exit_code == 0, written.output
    assert "wrote 3 outputs of generations.jsonl" in written.output
    review = sentiment_project / "reviews" / f"{COMPLETED_TINY}.csv"
    with review.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["prompt"] for r in rows] == [
        "How do I reset my password?",
        "Where is my parcel?",
        "Can I pay by card?",
    ]
    rows[0]["edited"] = "Open Settings, then Security."
    rows[1]["decision"] = "nonsense"
    rows[2]["decision"] = "accept"

    def rewrite() -> None:
        with review.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    rewrite()
    refused = runner.invoke(main, ["review", "--apply", str(review), *at])
    assert refused.exit_code != 0
    assert "line 3: decision 'nonsense': expected accept, edit or bad" in refused.output
    assert not project.preferences_file.exists()

    rows[1]["decision"] = "bad"
    rewrite()
    applied = runner.invoke(main, ["review", "--apply", str(review), *at])
    assert applied.exit_code == 0, applied.output
    assert "saved 2 responses" in applied.output and "2 preference pairs" in applied.output
    assert [(r["prompt"], r["response"]) for r in lines(project.responses_file)][1:] == [
        ("How do I reset my password?", "Open Settings, then Security."),
        ("Can I pay by card?", "Yes, by any card."),
    ]
    assert [(p["chosen"], p["rejected"], p["run"]) for p in lines(project.preferences_file)] == [
        ("Open Settings, then Security.", "Open Settings.", COMPLETED_TINY),
        ("Track it from your orders page.", "It is lost.", COMPLETED_TINY),
    ]
