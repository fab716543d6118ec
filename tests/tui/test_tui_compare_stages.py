"""Compare aligned by stage, on seeded runs: a pipeline (warmup -> full -> evaluate -> export)
against a single-stage baseline (single_step -> evaluate), and the per-stage metrics table
(the rows and ★ of `tuneboard compare` on the same runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, Static

from tests.conftest import CliRunner
from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import (
    BASELINE,
    COMPLETED_TINY,
    HOSTILE,
    HOSTILE_RUN,
    PIPELINE,
    seed_hostile_run,
    seed_pipeline_and_baseline,
)
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.compare import CompareScreen
from tuneboard.tui.widgets.chart import Boundary, MetricChart
from tuneboard.ui.safe import visible

ALIGNED_BASELINE = f"{BASELINE} (single_step)"


@pytest.fixture
def pipeline_project(seeded_project: Path) -> Path:
    """The seeded sample project plus a pipeline run and a baseline run."""
    seed_pipeline_and_baseline(seeded_project)
    return seeded_project


async def compare(app: TuneboardApp, pilot: Pilot[None], *run_ids: str) -> CompareScreen:
    """Open Compare on `run_ids` and wait for its first load."""
    await app.push_screen(CompareScreen(list(run_ids)))
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    await wait_for(pilot, lambda: screen.query_one("#metrics", DataTable).row_count > 0)
    return screen


def chart(screen: CompareScreen) -> MetricChart:
    return screen.query_one("#compare-chart", MetricChart)


def row(screen: CompareScreen, key: str) -> list[str]:
    return [str(cell) for cell in screen.query_one("#metrics", DataTable).get_row(key)]


def row_keys(screen: CompareScreen) -> list[str]:
    table = screen.query_one("#metrics", DataTable)
    return [str(key.value) for key in table.rows if key.value and " · " in key.value]


def note(screen: CompareScreen) -> str:
    return str(screen.query_one("#compare-note", Static).render())


async def test_whole_runs_share_the_run_wide_axis_with_the_pipeline_stage_boundary(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, PIPELINE, BASELINE)
        plot = chart(screen)
        await wait_for(pilot, lambda: set(plot.series) == {PIPELINE, BASELINE})
        assert screen.metric == "val/accuracy"
        # The full fine-tune continues where the 40-step warm-up ended.
        assert plot.series[PIPELINE].xs == [float(x) for x in range(10, 101, 10)]
        assert plot.series[BASELINE].xs == [1.0]
        assert plot.xlabel == "step (whole run)"
        # Only the pipeline has that boundary: labelled with its short name.
        assert plot.marks.boundaries == (Boundary(40.0, "full·a1a1"),)
        assert "whole runs · x: run-wide steps" in note(screen)


async def test_choosing_a_stage_overlays_each_run_matching_stage(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, PIPELINE, BASELINE)
        plot = chart(screen)
        align = screen.query_one("#align", Select)
        await pilot.press("a")
        await wait_for(pilot, lambda: plot.xlabel == "step in stage warmup")
        assert align.value == "warmup"
        # Steps within the stage: the warm-up from 0, the baseline's one step over it.
        assert plot.series[PIPELINE].xs == [10.0, 20.0, 30.0, 40.0]
        assert plot.series[ALIGNED_BASELINE].xs == [1.0]
        assert plot.marks.boundaries == ()
        await pilot.press("a")
        await wait_for(pilot, lambda: plot.xlabel == "step in stage full")
        assert set(plot.series) == {PIPELINE, ALIGNED_BASELINE}
        assert plot.series[PIPELINE].xs == [float(x) for x in range(10, 61, 10)]
        assert plot.series[PIPELINE].ys[-1] == pytest.approx(0.8485)
        assert plot.series[ALIGNED_BASELINE].ys == [0.55]
        assert "aligned on stage full · x: steps in the stage" in note(screen)
        # The table shows that stage only, and which stage of each run it is.
        assert row_keys(screen) == [f"full · {name}" for name in FULL_METRICS]
        assert row(screen, "full · val/accuracy")[3:] == ["0.8485 ★", "0.55"]
        # Epochs and seconds counted from the stage's start too.
        await pilot.press("t")
        await wait_for(pilot, lambda: plot.xlabel == "epoch in stage full")
        assert plot.series[PIPELINE].xs[-1] == pytest.approx(4.0)
        await pilot.press("t")
        await wait_for(pilot, lambda: plot.xlabel == "seconds since stage full started")
        assert plot.series[PIPELINE].xs[0] == pytest.approx(10.0)
        # After the last stage name (evaluate, then the baseline's own), the whole runs again.
        await pilot.press("a", "a", "a")
        await wait_for(pilot, lambda: plot.xlabel == "seconds since start")
        assert align.value == ""


# In `tuneboard compare`'s order: validation, then train, then bookkeeping values.
FULL_METRICS = (
    "val/accuracy",
    "val/loss",
    "train/loss",
    "train/epoch",
    "train/lr",
    "train/samples_per_s",
)


async def test_the_table_gives_last_and_best_values_per_stage_with_the_best_run_marked(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, PIPELINE, BASELINE)
        keys = row_keys(screen)
        # The baseline's one stage lines up with each of the pipeline's training stages, and
        # is not shown a third time on its own.
        assert keys == [
            *(f"warmup · {name}" for name in FULL_METRICS),
            *(f"full · {name}" for name in FULL_METRICS),
            "evaluate · test/accuracy",
            "evaluate · test/loss",
        ]
        assert row(screen, "warmup · val/accuracy")[3:] == ["0.6235 ★", "0.55"]
        assert row(screen, "full · val/accuracy")[3:] == ["0.8485 ★", "0.55"]
        assert row(screen, "evaluate · test/accuracy")[3:] == ["0.84 ★", "0.58"]
        assert row(screen, "full · train/loss")[2] == "↓"
        # Bookkeeping values have no direction and no best (a tie on lr, epochs and speed
        # that differ), and a tie has no best either.
        for name in ("train/lr", "train/epoch", "train/samples_per_s"):
            cells = row(screen, f"full · {name}")
            assert cells[2] == ""
            assert not any("★" in cell for cell in cells), cells
        assert row(screen, "evaluate · test/loss")[3:] == ["0.41", "0.41"]
        # Which stage of each run a group shows, where they differ.
        table = screen.query_one("#metrics", DataTable)
        # Which run is which, first: the experiment of each.
        assert row(screen, "experiment") == ["experiment", "", "", "multistep", "baseline"]
        first = [str(cell) for cell in table.get_row_at(1)]
        assert first[0] == "warmup"
        assert first[3:] == ["stage warmup", "stage single_step"]


async def test_a_run_without_the_chosen_stage_is_left_off_and_named(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, COMPLETED_TINY, PIPELINE)
        plot = chart(screen)
        screen.query_one("#align", Select).value = "finetune"
        await wait_for(pilot, lambda: plot.xlabel == "step in stage finetune")
        # The pipeline has two finetune stages: neither is the one to line up.
        assert set(plot.series) == {COMPLETED_TINY}
        assert f"{PIPELINE} has no stage finetune" in note(screen)
        assert row(screen, "finetune · val/accuracy")[3:] == ["0.7969", ""]


async def test_single_points_at_one_step_read_on_a_sensible_axis(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, PIPELINE, BASELINE)
        plot = chart(screen)
        screen.query_one("#metric", Select).value = "test/accuracy"
        await wait_for(pilot, lambda: plot.title == "test/accuracy")
        # Test values sit at each run's end on the run-wide axis.
        assert plot.series[PIPELINE].xs == [100.0]
        assert plot.series[BASELINE].xs == [1.0]
        screen.query_one("#align", Select).value = "evaluate"
        await wait_for(pilot, lambda: plot.xlabel == "step in stage evaluate")
        assert {name: s.xs for name, s in plot.series.items()} == {
            PIPELINE: [0.0],
            BASELINE: [0.0],
        }
        await pilot.pause()
        lines = str(plot.render()).splitlines()
        # One tick, at step 0 (not -1 .. 1), and a marker that shows for the lone point.
        ticks = lines[-2].split()
        assert ticks == ["0"], lines[-3:]
        assert "●" in "".join(lines[1:-3])


async def test_hostile_stage_names_show_as_text_when_aligned(
    pipeline_project: Path, make_app: AppFactory
) -> None:
    seed_hostile_run(pipeline_project)
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, HOSTILE_RUN, PIPELINE)
        plot = chart(screen)
        await pilot.press("a")
        await wait_for(pilot, lambda: plot.xlabel == f"step in stage {HOSTILE}")
        assert f"aligned on stage {visible(HOSTILE)}" in note(screen)
        assert f"{PIPELINE} has no stage {visible(HOSTILE)}" in note(screen)
        assert set(plot.series) == {HOSTILE_RUN}
        table = screen.query_one("#metrics", DataTable)
        assert str(table.get_row_at(1)[0]) == visible(HOSTILE)
        # The stage picker's options are drawn as text too.
        align = screen.query_one("#align", Select)
        align.expanded = True
        await wait_for(pilot, lambda: align.query("SelectOverlay"))
        await pilot.pause()
        assert app.is_running


@pytest.mark.parametrize("stage", [None, "full"])
async def test_the_table_has_the_rows_and_stars_of_tuneboard_compare(
    pipeline_project: Path, make_app: AppFactory, cli: CliRunner, stage: str | None
) -> None:
    args = ["compare", PIPELINE, BASELINE, "--json", *(["--stage", stage] if stage else [])]
    done = cli(*args, cwd=pipeline_project)
    assert done.returncode == 0, done.stderr
    expected = [
        (f"{r['stage']} · {r['metric']}", [run in r["best_runs"] for run in (PIPELINE, BASELINE)])
        for r in json.loads(done.stdout)["rows"]
    ]
    app = make_app(pipeline_project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await compare(app, pilot, PIPELINE, BASELINE)
        if stage is not None:
            screen.query_one("#align", Select).value = stage
            await wait_for(pilot, lambda: row_keys(screen)[0].startswith(f"{stage} · "))
        shown = [(key, ["★" in cell for cell in row(screen, key)[3:]]) for key in row_keys(screen)]
        assert shown == expected
