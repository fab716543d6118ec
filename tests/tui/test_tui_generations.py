"""Generations in the app: a run's outputs per evaluation on Run detail, runs side by side on
Compare, and nothing of them for classification runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static, TabbedContent

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import T0
from tuneboard.config import load_project
from tuneboard.sdk.tasks import Generation
from tuneboard.store import Store
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.generations import SHOWN_PROMPTS, prompt_histories, read_watched
from tuneboard.tui.screens.compare import CompareScreen
from tuneboard.tui.screens.detail import DetailScreen

LIVE = "20260101-120000-gen1"  # still training: outputs at step 10 so far
DONE = "20260101-130000-gen2"  # finished: outputs at steps 10 and 20
CLASSIFIER = "20260101-140000-cls1"
CLASSIFIER_2 = "20260101-150000-cls2"

PROMPTS = ["Translate to French: cat", "Translate to French: dog", "Translate to French: bird"]
REFERENCES = ["chat", "chien", "oiseau"]


def _generations(step: int, outputs: list[str]) -> list[Generation]:
    return [
        Generation("validation", index, PROMPTS[index], output, REFERENCES[index], step)
        for index, output in enumerate(outputs)
    ]


def _evaluation(store: Store, run_id: str, step: int, outputs: list[str]) -> None:
    """What an evaluation of a generation task writes: generations, then val metrics."""
    store.log_generations(run_id, 0, _generations(step, outputs), at=T0 + step)
    store.log_metrics(run_id, 0, step, {"val/loss": 2.0 - step / 20}, wall_time=T0 + step)


def _start(store: Store, run_id: str, at: float) -> None:
    store.create_run(run_id, "tiny", {"stages": [{"plugin": "finetune"}]}, at=at)
    store.set_run_status(run_id, "running", device="cpu", at=at + 1)
    store.stage_started(run_id, 0, name="finetune", plugin="finetune", params={}, at=at + 2)


@pytest.fixture
def generation_project(sentiment_project: Path) -> Path:
    """A database with two generative runs (one live) and two classification runs."""
    with Store(load_project(sentiment_project).database) as store:
        _start(store, LIVE, T0)
        _evaluation(store, LIVE, 10, ["le chat", "un chien", "l'oiseau"])
        _start(store, DONE, T0 + 3600)
        _evaluation(store, DONE, 10, ["gato", "perro", "pájaro"])
        _evaluation(store, DONE, 20, ["chat", "chien", "oiseau"])
        store.stage_finished(DONE, 0, "completed", at=T0 + 3700)
        store.set_run_status(DONE, "completed", at=T0 + 3700)
        for run_id in (CLASSIFIER, CLASSIFIER_2):
            _start(store, run_id, T0 + 7200)
            store.log_metrics(run_id, 0, 5, {"val/accuracy": 0.75}, wall_time=T0 + 7205)
            store.stage_finished(run_id, 0, "completed", at=T0 + 7210)
            store.set_run_status(run_id, "completed", at=T0 + 7210)
    return sentiment_project


def _text(widget: Static) -> str:
    return str(widget.render())


def _footer_keys(app: TuneboardApp) -> set[str]:
    return {str(getattr(key, "description", "")) for key in app.screen.query("FooterKey")}


def _tab_shown(tabs: TabbedContent, pane: str) -> bool:
    return bool(tabs.get_tab(pane).display)


async def test_detail_shows_each_prompt_at_every_evaluation_live(
    generation_project: Path, make_app: AppFactory
) -> None:
    app = make_app(generation_project, poll_interval=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await app.push_screen(DetailScreen(LIVE))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        panel = screen.query_one("#generations", Static)
        await wait_for(pilot, lambda: "step 10" in _text(panel))
        assert _tab_shown(screen.query_one("#tabs", TabbedContent), "generations-tab")
        await wait_for(pilot, lambda: {"Prev prompt", "Next prompt"} <= _footer_keys(app))
        text = _text(panel)
        assert "prompt 1 of 3" in text
        assert PROMPTS[0] in text and "chat" in text and "le chat" in text

        # The run evaluates again, as a run training in this app would write it.
        _evaluation(app.store, LIVE, 20, ["un chat", "le chien", "un oiseau"])
        app.store.flush()
        await wait_for(pilot, lambda: "step 20" in _text(panel))
        text = _text(panel)
        assert text.index("step 20 (latest)") < text.index("un chat") < text.index("step 10")
        assert text.index("step 10") < text.index("le chat")

        await pilot.press("right_square_bracket")
        text = _text(panel)
        assert "prompt 2 of 3" in text and PROMPTS[1] in text
        assert "le chien" in text and "un chien" in text and PROMPTS[0] not in text
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert "prompt 3 of 3" in _text(panel) and "un oiseau" in _text(panel)


async def test_compare_shows_the_latest_output_of_each_run_per_prompt(
    generation_project: Path, make_app: AppFactory
) -> None:
    app = make_app(generation_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await app.push_screen(CompareScreen([DONE, LIVE]))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        prompt = screen.query_one("#generations-prompt", Static)
        await wait_for(pilot, lambda: PROMPTS[0] in _text(prompt))
        assert _tab_shown(screen.query_one("#compare-tabs", TabbedContent), "generations-tab")
        await wait_for(pilot, lambda: "Next prompt" in _footer_keys(app))
        assert "prompt 1 of 3" in _text(prompt) and "chat" in _text(prompt)
        done, live = (screen.output_columns[run_id] for run_id in (DONE, LIVE))
        assert DONE in _text(done) and "latest: step 20" in _text(done)
        assert "chat" in _text(done) and "gato" not in _text(done)
        assert LIVE in _text(live) and "le chat" in _text(live)

        await pilot.press("right_square_bracket")
        assert screen.query_one("#compare-tabs", TabbedContent).active == "generations-tab"
        assert PROMPTS[1] in _text(prompt) and "chien" in _text(prompt)
        assert "chien" in _text(done) and "perro" not in _text(done)
        assert "un chien" in _text(live)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert PROMPTS[2] in _text(prompt) and "l'oiseau" in _text(live)


async def test_classification_runs_show_no_generations(
    generation_project: Path, make_app: AppFactory
) -> None:
    app = make_app(generation_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await app.push_screen(DetailScreen(CLASSIFIER))
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await wait_for(pilot, lambda: detail.run is not None and detail.charts)
        assert not _tab_shown(detail.query_one("#tabs", TabbedContent), "generations-tab")
        await wait_for(pilot, lambda: "Back" in _footer_keys(app))
        assert "Next prompt" not in _footer_keys(app)
        await pilot.press("right_square_bracket")  # does nothing
        assert detail.query_one("#tabs", TabbedContent).active == "charts-tab"

        await app.push_screen(CompareScreen([CLASSIFIER, CLASSIFIER_2]))
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_for(pilot, lambda: compare.metric == "val/accuracy")
        assert not _tab_shown(compare.query_one("#compare-tabs", TabbedContent), "generations-tab")
        await wait_for(pilot, lambda: "Metric" in _footer_keys(app))
        assert "Next prompt" not in _footer_keys(app)


def test_a_run_without_validation_generations_shows_its_first_prompts_of_another_split(
    tmp_path: Path,
) -> None:
    """A `generate` stage over a file (step NULL) after training: its first prompts, each
    output named by its stage when several stages generated."""
    with Store(tmp_path / "db.duckdb") as store:
        _start(store, LIVE, T0)
        store.stage_started(LIVE, 1, name="write", plugin="generate", params={}, at=T0 + 9)
        many = [Generation("prompts.jsonl", i, f"p{i}", f"o{i}") for i in range(20)]
        store.log_generations(LIVE, 1, many[::-1], at=T0 + 10)
        store.log_generations(LIVE, 0, [Generation("prompts.jsonl", 3, "p3", "early", None, 5)])
        store.flush()
        rows = read_watched(store, LIVE)
    histories = prompt_histories(rows, {0: "finetune", 1: "write"})
    assert [h.idx for h in histories] == list(range(SHOWN_PROMPTS))
    assert histories[3].outputs == [("write", "o3"), ("finetune step 5", "early")]
    assert histories[0].outputs == [("write", "o0")] and histories[0].reference is None
