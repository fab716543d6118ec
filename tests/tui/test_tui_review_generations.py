"""Reviewing generations in the app: a run whose `generate` stage wrote generations.jsonl
opens the generation Review screen with `v`; outputs are accepted, edited in a text area or
marked bad, and saving writes the project's responses and preferences files. Side by side
when wide, stacked when narrow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static, TextArea

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_TINY
from tuneboard.config import load_project
from tuneboard.store import Store
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.review_generations import EditOutputDialog, GenerationReviewScreen

# (prompt, output, reference): the first two differ from their reference, so they come first.
ROWS = [
    ("How do I reset my password?", "Open Settings.", "Open Settings, then Security."),
    ("Where is my parcel?", "It is lost.", "Track it from your orders page."),
    ("Can I pay by card?", "Yes, by any card.", "Yes, by any card."),
    ("Already reviewed?", "Maybe.", None),
]


def add_generations(project_dir: Path, run_id: str) -> Path:
    """A generations.jsonl in the run's folder, recorded as a `generations` artifact, and a
    responses file that already holds the last prompt."""
    project = load_project(project_dir)
    path = project.runs_dir / run_id / "stage-2" / "generations.jsonl"
    path.parent.mkdir(parents=True)
    with path.open("w") as out:
        for index, (prompt, output, reference) in enumerate(ROWS):
            row = {"index": index, "split": "validation", "prompt": prompt}
            out.write(json.dumps({**row, "output": output, "reference": reference}) + "\n")
    with Store(project.database) as store:
        store.add_artifact(run_id, 2, "generations", path)
    earlier = {"prompt": "Already reviewed?", "response": "Yes.", "run": "x"}
    project.responses_file.write_text(json.dumps(earlier) + "\n")
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def panel(screen: GenerationReviewScreen, name: str) -> str:
    return str(screen.query_one(f"#generation-{name}", Static).render())


def decisions(screen: GenerationReviewScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [str(table.get_cell(row, "decision")) for row in table.rows]


async def test_accept_edit_and_reject_outputs_then_save_both_files(
    seeded_project: Path, make_app: AppFactory
) -> None:
    add_generations(seeded_project, COMPLETED_TINY)
    project = load_project(seeded_project)
    app = make_app(seeded_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.push_screen(DetailScreen(COMPLETED_TINY))
        await pilot.pause()
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, GenerationReviewScreen))
        screen = app.screen
        assert isinstance(screen, GenerationReviewScreen)
        await wait_for(pilot, lambda: screen.query_one(DataTable).row_count == 3)
        # The reviewed prompt is left out; outputs unlike their reference come first.
        assert panel(screen, "prompt") == "How do I reset my password?"
        assert panel(screen, "output") == "Open Settings."
        assert panel(screen, "reference") == "Open Settings, then Security."
        panels = screen.query_one("#generation-panels")
        assert not panels.has_class("stacked")  # wide: side by side
        footer = {b.binding.description for b in screen.active_bindings.values()}
        assert {"Accept output", "Edit output", "Mark bad", "Undo", "Save"} <= footer

        await pilot.press("e")  # edit the first output
        await wait_for(pilot, lambda: isinstance(app.screen, EditOutputDialog))
        area = app.screen.query_one(TextArea)
        assert area.text == "Open Settings."
        area.text = "Open Settings, then Security, then Reset."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("b")  # the parcel answer is bad
        await pilot.press("a")  # the card answer is right
        assert decisions(screen) == ["edited", "bad", "accepted"]
        await pilot.press("backspace", "b", "backspace", "a")  # undo works: accepted again
        assert decisions(screen) == ["edited", "bad", "accepted"]
        await pilot.press("up", "up")
        assert "Reset." in panel(screen, "output") and "was: Open Settings." in panel(
            screen, "output"
        )

        await pilot.press("s")
        await wait_for(pilot, lambda: project.preferences_file.exists())
        await wait_for(pilot, lambda: decisions(screen)[0] == "✓ edited")
        await app.workers.wait_for_complete()

        await pilot.resize_terminal(80, 40)  # narrow: stacked
        await wait_for(pilot, lambda: panels.has_class("stacked"))
        await pilot.press("e")  # a cancelled edit decides nothing
        await wait_for(pilot, lambda: isinstance(app.screen, EditOutputDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert not screen.decisions
        await pilot.press("escape")  # nothing unsaved: straight back
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen))

    responses = lines(project.responses_file)
    assert [(r["prompt"], r["response"]) for r in responses] == [
        ("Already reviewed?", "Yes."),
        ("How do I reset my password?", "Open Settings, then Security, then Reset."),
        ("Can I pay by card?", "Yes, by any card."),
    ]
    assert all(r["run"] == COMPLETED_TINY for r in responses[1:])
    pairs = lines(project.preferences_file)
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [
        (
            "How do I reset my password?",
            "Open Settings, then Security, then Reset.",
            "Open Settings.",
        ),
        ("Where is my parcel?", "Track it from your orders page.", "It is lost."),
    ]
    assert all(p["run"] == COMPLETED_TINY and p["time"] for p in pairs)
    assert not list(project.root.glob(".*.jsonl.*"))  # no temporary file left behind
