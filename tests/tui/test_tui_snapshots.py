"""SVG snapshots of every screen, on a seeded copy of sample_projects/sentiment.

The database holds made-up runs with fixed ids, times and metrics, the clock is fixed and
times show in UTC, so the pictures are the same on every machine. Update them with
`pytest tests/tui --snapshot-update` after a deliberate change, and look at the diff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Select

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import (
    BASELINE,
    COMPLETED_MULTI,
    COMPLETED_TINY,
    FAILED_TINY,
    PIPELINE,
    SWEEP_ID,
    THREE_STAGE,
    seed_pipeline_and_baseline,
    seed_sweep,
    seed_three_stage,
)
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.compare import CompareScreen
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.screens.launch import LaunchScreen
from tuneboard.tui.screens.runs import SWEEP_KEY, RunsScreen
from tuneboard.tui.screens.sweep import SweepScreen
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.tui.widgets.scatter import ScatterChart

SnapCompare = Callable[..., bool]
Before = Callable[[Pilot[None]], Awaitable[None]]


def table_settled(app: TuneboardApp, rows: int) -> bool:
    """True once the runs table holds `rows` rows and has measured them: DataTable sizes its
    columns to new rows only when it is next idle, which a loaded machine can delay past the
    moment the rows are there."""
    if not isinstance(app.screen, RunsScreen):
        return False
    table = app.screen.query_one("#runs", DataTable)
    return table.row_count == rows and not table._require_update_dimensions


def runs_loaded(app: TuneboardApp, rows: int = 5) -> Before:
    async def before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: table_settled(app, rows))
        # Paint what the measuring scheduled: a dialog pushed next would cover a stale table.
        await pilot.pause()

    return before


def charts_settled(screen: DetailScreen) -> bool:
    """True once every chart has the height fitted to the visible area (sizing takes refreshes)."""
    visible = screen.query_one("#charts-scroll").size.height
    fitted = max(10, min(20, visible))
    return visible > 0 and all(c.size.height == fitted for c in screen.charts.values())


def detail_of(app: TuneboardApp, run_id: str, rows: int = 5) -> Before:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app, rows)(pilot)
        await app.push_screen(DetailScreen(run_id))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: screen.run is not None and len(screen.charts) >= 4)
        await wait_for(pilot, lambda: charts_settled(screen))
        await pilot.pause()

    return before


@pytest.fixture
def app(seeded_project: Path, make_app: AppFactory) -> TuneboardApp:
    return make_app(seeded_project)


def test_runs_80x24(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=runs_loaded(app))


def test_runs_160x48_light(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=(160, 48), run_before=runs_loaded(app))


def test_detail_80x24(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=detail_of(app, COMPLETED_TINY))


def test_detail_160x48(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(160, 48), run_before=detail_of(app, COMPLETED_TINY))


def test_detail_of_a_failed_run(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(100, 30), run_before=detail_of(app, FAILED_TINY))


@pytest.fixture
def three_stage_app(seeded_project: Path, make_app: AppFactory) -> TuneboardApp:
    """The app with a three-stage run besides the seeded ones (six in all)."""
    seed_three_stage(seeded_project)
    return make_app(seeded_project)


def test_detail_of_a_three_stage_run(
    three_stage_app: TuneboardApp, snap_compare: SnapCompare
) -> None:
    before = detail_of(three_stage_app, THREE_STAGE, rows=6)
    assert snap_compare(three_stage_app, terminal_size=(100, 30), run_before=before)


def test_detail_of_a_three_stage_run_160x48(
    three_stage_app: TuneboardApp, snap_compare: SnapCompare
) -> None:
    before = detail_of(three_stage_app, THREE_STAGE, rows=6)
    assert snap_compare(three_stage_app, terminal_size=(160, 48), run_before=before)


def compare_before(app: TuneboardApp, *keys: str) -> Before:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app)(pilot)
        await app.push_screen(CompareScreen([COMPLETED_TINY, COMPLETED_MULTI]))
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#metrics", DataTable).row_count > 0)
        await pilot.press(*keys)
        await pilot.pause()

    return before


def test_compare_chart(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(100, 30), run_before=compare_before(app))


def test_compare_metrics(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=(100, 30), run_before=compare_before(app, "right"))


def compare_pipeline_before(app: TuneboardApp, *keys: str, xlabel: str) -> Before:
    async def before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: table_settled(app, 7))
        await app.push_screen(CompareScreen([PIPELINE, BASELINE]))
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#metrics", DataTable).row_count > 0)
        await pilot.press(*keys)
        chart = screen.query_one("#compare-chart", MetricChart)
        await wait_for(pilot, lambda: chart.xlabel == xlabel)
        await pilot.pause()

    return before


@pytest.fixture
def pipeline_app(seeded_project: Path, make_app: AppFactory) -> TuneboardApp:
    seed_pipeline_and_baseline(seeded_project)
    return make_app(seeded_project)


def test_compare_pipeline_with_baseline(
    pipeline_app: TuneboardApp, snap_compare: SnapCompare
) -> None:
    before = compare_pipeline_before(pipeline_app, xlabel="step (whole run)")
    assert snap_compare(pipeline_app, terminal_size=(100, 30), run_before=before)


def test_compare_pipeline_with_baseline_aligned_on_full(
    pipeline_app: TuneboardApp, snap_compare: SnapCompare
) -> None:
    before = compare_pipeline_before(pipeline_app, "a", "a", xlabel="step in stage full")
    assert snap_compare(pipeline_app, terminal_size=(100, 30), run_before=before)


def test_compare_pipeline_with_baseline_table_by_stage(
    pipeline_app: TuneboardApp, snap_compare: SnapCompare
) -> None:
    before = compare_pipeline_before(pipeline_app, "right", xlabel="step (whole run)")
    assert snap_compare(pipeline_app, terminal_size=(100, 30), run_before=before)


def test_launch_80x24(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app)(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        screen: Any = app.screen
        screen.query_one("#experiment", Select).value = "tiny"
        await wait_for(pilot, lambda: screen.form_ready == "tiny")
        form = screen.query_one("#launch-form")
        # The scrollbar follows the new fields' height only once the form is laid out again,
        # which a loaded machine can delay past form_ready: wait until the scrollbar agrees.
        await wait_for(
            pilot,
            lambda: (
                form.vertical_scrollbar.window_virtual_size == form.virtual_size.height
                and form.vertical_scrollbar.window_size == form.scrollable_content_region.height
                and form.scroll_y == 0
            ),
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_sql_80x24(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app)(pilot)
        await pilot.press("2")
        screen: Any = app.screen
        editor = screen.query_one("#editor")
        editor.cursor_blink = False
        await wait_for(pilot, lambda: len(screen.query_one("#schema").root.children) >= 5)
        await wait_for(pilot, lambda: hasattr(screen, "_history"))
        # The cursor is drawn once the editor has the focus that mounting gives it. A line
        # drawn in a blink's dark phase is cached under the same key as a line drawn with
        # blinking off: clear the cache, or the cursor may stay dark.
        await wait_for(pilot, lambda: editor.has_focus)
        editor.notify_style_update()
        editor.refresh()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_plugins_80x24(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app)(pilot)
        await pilot.press("3")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_delete_dialog(app: TuneboardApp, snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[None]) -> None:
        await runs_loaded(app)(pilot)
        table = app.screen.query_one("#runs", DataTable)
        table.move_cursor(row=table.get_row_index(COMPLETED_TINY))
        await pilot.press("d")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@pytest.fixture
def sweep_app(seeded_project: Path, make_app: AppFactory) -> TuneboardApp:
    seed_sweep(seeded_project)
    return make_app(seeded_project)


def test_runs_with_an_open_sweep_100x30(sweep_app: TuneboardApp, snap_compare: SnapCompare) -> None:
    app = sweep_app

    async def before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: table_settled(app, 6))
        table = app.screen.query_one("#runs", DataTable)
        table.move_cursor(row=table.get_row_index(SWEEP_KEY + SWEEP_ID))
        await pilot.press("right")
        await wait_for(pilot, lambda: table_settled(app, 18))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=before)


def test_sweep_view_100x30(sweep_app: TuneboardApp, snap_compare: SnapCompare) -> None:
    app = sweep_app

    async def before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: table_settled(app, 6))
        await app.push_screen(SweepScreen(SWEEP_ID))
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        trials = screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: trials.row_count == 12)
        await wait_for(pilot, lambda: not trials._require_update_dimensions)
        await wait_for(pilot, lambda: all(c.size.height > 0 for c in screen.query(ScatterChart)))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=before)
