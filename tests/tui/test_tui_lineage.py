"""Run detail shows where a run's model came from and what started from it, and opens them."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList, Static

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import COMPLETED_MULTI, COMPLETED_TINY, FAILED_TINY, RUNNING_TINY
from tuneboard.config import load_project
from tuneboard.store import RunLink, Store
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.lineage import ChildPicker
from tuneboard.tui.screens.detail import DetailScreen


def _footer_keys(app: TuneboardApp) -> set[str]:
    return {str(getattr(key, "description", "")) for key in app.screen.query("FooterKey")}


def _link(child: str, parent: str, stage: int, kind: str) -> RunLink:
    return RunLink(child, parent, stage, kind, f"/runs/{parent}/{kind}", "ab" * 32, "run:x")


def _add_lineage(project_dir: Path) -> None:
    """COMPLETED_TINY's export fed COMPLETED_MULTI; its finetune checkpoint fed FAILED_TINY."""
    with Store(load_project(project_dir).database) as store:
        store.record_parent(_link(COMPLETED_MULTI, COMPLETED_TINY, 2, "model"))
        store.record_parent(_link(FAILED_TINY, COMPLETED_TINY, 0, "checkpoint"))


def _detail(app: TuneboardApp) -> DetailScreen:
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return screen


async def test_detail_shows_the_parent_and_p_opens_it(
    seeded_project: Path, make_app: AppFactory
) -> None:
    _add_lineage(seeded_project)
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await app.push_screen(DetailScreen(COMPLETED_MULTI))
        child = _detail(app)
        line = child.query_one("#lineage", Static)
        await wait_for(pilot, lambda: line.display)
        assert f"from {COMPLETED_TINY} (export of tiny)" in str(line.render())
        await wait_for(pilot, lambda: "Parent run" in _footer_keys(app))
        assert "Child runs" not in _footer_keys(app)

        await pilot.press("p")
        await wait_for(pilot, lambda: _detail(app).run_id == COMPLETED_TINY)
        parent = _detail(app)
        await wait_for(pilot, lambda: parent.query_one("#lineage", Static).display)
        assert "children: 2" in str(parent.query_one("#lineage", Static).render())
        await wait_for(pilot, lambda: "Child runs" in _footer_keys(app))
        assert "Parent run" not in _footer_keys(app)

        await pilot.press("o")  # two children: a list to pick from
        await wait_for(pilot, lambda: isinstance(app.screen, ChildPicker))
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert [label.split()[0] for label in labels] == [COMPLETED_MULTI, FAILED_TINY]
        assert labels[1].endswith("← finetune checkpoint")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: _detail(app).run_id == FAILED_TINY)


async def test_a_run_without_lineage_shows_no_line_and_no_keys(
    seeded_project: Path, make_app: AppFactory
) -> None:
    _add_lineage(seeded_project)
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await app.push_screen(DetailScreen(RUNNING_TINY))
        screen = _detail(app)
        await wait_for(pilot, lambda: screen.run is not None and "Back" in _footer_keys(app))
        assert not screen.query_one("#lineage", Static).display
        assert not {"Parent run", "Child runs"} & _footer_keys(app)
        await pilot.press("p")  # does nothing
        assert _detail(app).run_id == RUNNING_TINY
