"""The Review screen: opened from a run with `v`, labels chosen from the keyboard, saved to the
project's corrections file through tuneboard.review.items / tuneboard.review.corrections."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, Static

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_TINY
from tuneboard.config import load_project
from tuneboard.store import Store
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.review import ReviewScreen

# (text, reference label, predicted label, probability of "positive")
ROWS = [
    ("sure and right", "positive", "positive", 0.97),
    ("confidently wrong", "negative", "positive", 0.91),
    ("a coin toss", "positive", "negative", 0.48),
    ("barely right", "negative", "negative", 0.40),
    ("already corrected", "negative", "positive", 0.80),
]


def add_predictions(project_dir: Path, run_id: str) -> Path:
    """A predictions-validation.jsonl in the run's folder, recorded as an artifact."""
    project = load_project(project_dir)
    path = project.runs_dir / run_id / "stage-1" / "predictions-validation.jsonl"
    path.parent.mkdir(parents=True)
    with path.open("w") as out:
        for text, label, prediction, positive in ROWS:
            probabilities = {"negative": 1 - positive, "positive": positive}
            row = {"text": text, "label": label, "prediction": prediction}
            out.write(json.dumps({**row, "probabilities": probabilities}) + "\n")
    with Store(project.database) as store:
        store.add_artifact(run_id, 1, "predictions", path)
    earlier = {"text": "already corrected", "label": "negative", "run": "x"}
    project.corrections_file.write_text(json.dumps(earlier) + "\n")
    return path


def review_screen(app: object) -> ReviewScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, ReviewScreen)
    return screen


def table_texts(screen: ReviewScreen, column: str) -> list[str]:
    table = screen.query_one(DataTable)
    return [str(table.get_cell(row, column)) for row in table.rows]


def saved(project_dir: Path) -> dict[str, str]:
    lines = load_project(project_dir).corrections_file.read_text().splitlines()
    return {json.loads(line)["text"]: json.loads(line)["label"] for line in lines}


async def test_review_labels_from_the_keyboard_and_saves_them(
    seeded_project: Path, make_app: AppFactory
) -> None:
    add_predictions(seeded_project, COMPLETED_TINY)
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        await pilot.pause()
        assert "Review" in str(app.screen.active_bindings.get("v").binding.description)  # type: ignore[union-attr]
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        screen = review_screen(app)
        await wait_for(pilot, lambda: screen.query_one(DataTable).row_count == 4)
        # Wrong ones first (most confident first), then the least sure; corrected ones left out.
        assert table_texts(screen, "text") == [
            "confidently wrong",
            "a coin toss",
            "barely right",
            "sure and right",
        ]
        summary = str(screen.query_one("#review-summary", Static).render())
        assert "predictions-validation.jsonl" in summary and "4 examples" in summary

        await pilot.press("1")  # confidently wrong: label 1 (negative), the reference
        await pilot.press("a")  # a coin toss: accept the prediction (negative)
        await pilot.press("space")  # barely right: skipped
        await pilot.press("g")  # sure and right: keep its label (positive)
        assert table_texts(screen, "new label") == ["negative", "negative", "", "positive"]
        example = str(screen.query_one("#review-example", Static).render())
        assert "sure and right" in example and "▶ 2 positive" in example

        await pilot.press("backspace")  # the last row stays highlighted: changed my mind
        assert table_texts(screen, "new label")[3] == ""
        await pilot.press("s")
        await wait_for(pilot, lambda: len(saved(seeded_project)) == 3)
        assert saved(seeded_project) == {
            "already corrected": "negative",
            "confidently wrong": "negative",
            "a coin toss": "negative",
        }
        await wait_for(pilot, lambda: table_texts(screen, "new label")[0] == "✓ negative")
        await pilot.press("escape")  # nothing unsaved: straight back
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))


async def test_leaving_with_unsaved_decisions_asks_first(
    seeded_project: Path, make_app: AppFactory
) -> None:
    add_predictions(seeded_project, COMPLETED_TINY)
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        await app.push_screen(ReviewScreen(COMPLETED_TINY, by="uncertain"))
        screen = review_screen(app)
        await wait_for(pilot, lambda: screen.query_one(DataTable).row_count == 4)
        assert table_texts(screen, "text")[0] == "a coin toss"  # least sure first
        await pilot.press("c", "c")  # cycle: negative, then positive; stays on the row
        assert table_texts(screen, "new label")[0] == "positive"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # stay
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("escape", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))
    assert "a coin toss" not in saved(seeded_project)


async def test_a_run_without_predictions_says_what_to_add(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(ReviewScreen(COMPLETED_TINY))
        screen = review_screen(app)
        summary = screen.query_one("#review-summary", Static)
        await wait_for(pilot, lambda: "no predictions" in str(summary.render()))
        assert "evaluate" in str(summary.render())
        await pilot.press("a", "s")  # nothing to act on: no crash, nothing written
        assert not load_project(seeded_project).corrections_file.exists()


async def test_the_launch_form_offers_the_feedback_and_repeat_parameters(
    seeded_project: Path, make_app: AppFactory
) -> None:
    from textual.widgets import Select

    from tuneboard.tui.screens.launch import LaunchScreen

    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        screen = app.screen
        assert isinstance(screen, LaunchScreen)
        screen.query_one("#experiment", Select).value = "iterative"
        await wait_for(pilot, lambda: screen.form_ready == "iterative", timeout=30)
        keys = {field.key for section in screen.sections for field in section.fields}
        assert {"stages.2.weight", "stages.2.drop_patterns", "stages.5.target"} <= keys
