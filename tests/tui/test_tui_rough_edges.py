"""Rough edges of the app (issue 16): chart styles and legends, chart order, SQL bars and
types, the runs table at narrow widths, and actions on several selected runs."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len
from textual.widgets import DataTable, TextArea

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import (
    CANCELLED_BASE,
    COMPLETED_MULTI,
    COMPLETED_TINY,
    FAILED_TINY,
    RUNNING_TINY,
)
from tests.tui.test_tui_logic import _run
from tuneboard.store import QueryResult
from tuneboard.tui.chart_style import COLORS, LINE_MARKERS, series_style
from tuneboard.tui.legend import run_labels, short_id
from tuneboard.tui.metrics import metric_families, monitored_metric
from tuneboard.tui.run_columns import FITS, SELECTED_MARK, fit_for, row_cells, stage_text
from tuneboard.tui.screens.compare import CompareScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.screens.result_chart import bars, category_column
from tuneboard.tui.screens.runs import RunsScreen
from tuneboard.tui.screens.sql import SqlScreen, numeric_columns, short_type
from tuneboard.tui.selection import delete_question, selection_order
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.tui.widgets.footer import WrappingFooter, footer_columns
from tuneboard.ui.render import STATUS_STYLES

# --- charts -------------------------------------------------------------------------------


def test_every_series_is_a_braille_line_and_sparse_ones_get_points() -> None:
    dense = series_style(0, 200, 80)
    assert (dense.line, dense.points) == ("braille", "")
    sparse = series_style(1, 10, 80)  # validation points among training steps
    assert (sparse.line, sparse.points) == ("braille", "•")
    assert series_style(2, 1, 80).line == ""  # a lone point is a dot, not a line
    assert dense.color != sparse.color


def test_series_styles_do_not_repeat_for_many_runs() -> None:
    count = len(COLORS) * len(LINE_MARKERS)
    styles = {(s.line, s.color) for s in (series_style(i, 200, 80) for i in range(count))}
    assert len(styles) == count
    assert "x" not in {series_style(i, 200, 80).line for i in range(len(COLORS))}


def test_legend_labels_are_experiment_and_short_id_or_seed() -> None:
    assert short_id("20260101-120000-aaaa") == "aaaa"
    assert short_id("custom") == "custom"
    mixed = [
        ("20260101-120000-aaaa", "tiny", {"seed": 1}),
        ("20260101-130000-bbbb", "baseline", {"seed": 1}),
    ]
    assert run_labels(mixed) == {
        "20260101-120000-aaaa": "tiny aaaa",
        "20260101-130000-bbbb": "baseline bbbb",
    }
    seeds = [
        ("20260101-120000-aaaa", "tiny", {"seed": 1, "stages": [{"lr": 0.1}]}),
        ("20260101-130000-bbbb", "tiny", {"seed": 2, "stages": [{"lr": 0.1}]}),
    ]
    assert run_labels(seeds) == {"20260101-120000-aaaa": "seed 1", "20260101-130000-bbbb": "seed 2"}
    clash = [("a-1-ffff", "tiny", {"lr": 1}), ("b-2-ffff", "tiny", {"lr": 2})]
    assert run_labels(clash) == {"a-1-ffff": "a-1-ffff", "b-2-ffff": "b-2-ffff"}


def test_the_monitored_metric_family_comes_first_in_a_fixed_order() -> None:
    names = ["train/lr", "val/f1_macro", "train/loss", "val/accuracy", "val/loss"]
    families = list(metric_families(names, "val/f1_macro"))
    assert families == ["f1_macro", "loss", "accuracy", "lr"]
    assert list(metric_families(reversed(names), "val/f1_macro")) == families
    assert monitored_metric([{"lr": 1}, {"monitor": "val/f1_macro"}], "test/accuracy") == (
        "val/f1_macro"
    )
    assert monitored_metric([{}], "test/accuracy") == "test/accuracy"


async def test_compare_legend_names_runs_shortly(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.push_screen(CompareScreen([COMPLETED_TINY, COMPLETED_MULTI]))
        chart = app.screen.query_one("#compare-chart", MetricChart)
        await wait_for(pilot, lambda: len(chart.labels) == 2)
        assert chart.labels == {COMPLETED_TINY: "tiny aaaa", COMPLETED_MULTI: "tiny bbbb"}
        await wait_for(pilot, lambda: "tiny aaaa" in chart.render().plain)  # type: ignore[union-attr]
        assert COMPLETED_TINY not in chart.render().plain  # type: ignore[union-attr]


# --- SQL ----------------------------------------------------------------------------------


def _result(columns: list[str], rows: list[tuple[object, ...]]) -> QueryResult:
    return QueryResult(columns=columns, types=[], rows=rows, truncated=False, elapsed=0.0)


def test_a_text_first_column_is_drawn_as_bars() -> None:
    result = _result(["status", "runs"], [("completed", 3), ("failed", 1), (None, 2)])
    numeric = numeric_columns(result)
    assert category_column(result, numeric) == "status"
    drawn = bars(result, "status", "runs")
    assert (drawn.labels, drawn.values, drawn.left_out) == (
        ["completed", "failed", "NULL"],
        [3.0, 1.0, 2.0],
        0,
    )
    assert bars(result, "status", "runs", limit=2).left_out == 1
    assert category_column(_result(["step", "loss"], [(1, 0.5)]), ["step", "loss"]) is None


def test_schema_types_are_shortened_not_cut() -> None:
    assert short_type("TIMESTAMP WITH TIME ZONE") == "TIMESTAMPTZ"
    assert short_type("VARCHAR") == "VARCHAR"
    assert short_type("STRUCT(name VARCHAR, value DOUBLE)[]") == "STRUCT(…)[]"
    assert short_type("DECIMAL(18,3)") == "DECIMAL(18,3)"


async def test_sql_charts_text_categories_as_bars_and_ctrl_a_selects_all(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        footer = screen.query_one(WrappingFooter)
        await wait_for(pilot, lambda: footer.size.height > 0)
        assert footer.size.height <= 2
        editor = screen.query_one("#editor", TextArea)
        sql = "SELECT status, count(*) AS runs FROM runs GROUP BY status ORDER BY status"
        editor.load_text(sql)
        await pilot.press("ctrl+a")
        assert editor.selected_text == sql
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.result is not None)  # type: ignore[attr-defined]
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.screen.query("#result-chart"))
        chart = app.screen.query_one("#result-chart", MetricChart)
        await wait_for(pilot, lambda: bool(chart.bars))
        assert chart.bars == ["cancelled", "completed", "failed", "running"]
        assert "completed" in chart.render().plain  # type: ignore[union-attr]


def test_footer_keeps_to_two_rows() -> None:
    assert footer_columns(8, 24, 80) == 4  # would fit 3 abreast: 3 rows
    assert footer_columns(8, 10, 80) == 8
    assert footer_columns(12, 14, 80) == 6


# --- the runs table -----------------------------------------------------------------------


def test_the_stage_cell_has_a_fixed_greatest_width() -> None:
    long = _run("running", current_stage="pretrain-on-a-very-long-corpus", progress=0.5)
    for fit in FITS:
        text = stage_text(long, fit)
        assert cell_len(text) <= fit.stage_name + 1 + (fit.bar + 5 if fit.bar else 4)
        assert text.startswith("pretrai")


def test_narrow_tables_shorten_cells_and_mark_selection_unlike_a_status() -> None:
    assert SELECTED_MARK not in {symbol for symbol, _ in STATUS_STYLES.values()}
    run = _run("completed", run_id="20260101-120000-aaaa", headline_value=0.8125)
    wide = [str(c) for c in row_cells(run, 30.0, {}, True, fit_for(160))]
    narrow = [str(c) for c in row_cells(run, 30.0, {}, False, fit_for(80))]
    assert wide[:3] == [SELECTED_MARK, "✓ completed", "20260101-120000-aaaa"]
    assert narrow[:3] == [" ", "✓", "aaaa"]
    assert wide[5] == "test/accuracy 0.8125" and narrow[5] == "0.8125"


def _table_width(table: DataTable[object]) -> int:
    return sum(column.get_render_width(table) for column in table.columns.values())


async def test_runs_table_fits_80_and_116_columns(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert _table_width(table) <= 80
        await wait_for(pilot, lambda: table.virtual_size.width == _table_width(table))
        assert table.max_scroll_x == 0  # nothing off screen to the right
        await pilot.resize_terminal(116, 30)
        await wait_for(pilot, lambda: str(table.get_cell(COMPLETED_TINY, "run")) == COMPLETED_TINY)
        assert _table_width(table) <= 116
        await wait_for(pilot, lambda: table.virtual_size.width == _table_width(table))
        assert table.max_scroll_x == 0
        assert "finetune" in str(table.get_cell(RUNNING_TINY, "stage"))


async def test_delete_and_compare_act_on_every_selected_run(
    seeded_project: Path, make_app: AppFactory
) -> None:
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        for run_id in (FAILED_TINY, CANCELLED_BASE, COMPLETED_MULTI):
            table.move_cursor(row=table.get_row_index(run_id))
            await pilot.press("space")
        assert str(table.get_cell(FAILED_TINY, "sel")) == SELECTED_MARK
        # The filter hides one selected run: compare says so.
        await pilot.press("slash", *"tiny", "enter")
        await wait_for(pilot, lambda: table.row_count == 4)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert any("1 hidden by the filters" in str(n.message) for n in app._notifications)
        compared = app.screen
        assert isinstance(compared, CompareScreen)
        assert compared.run_ids == [FAILED_TINY, COMPLETED_MULTI, CANCELLED_BASE]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        table.move_cursor(row=table.get_row_index(COMPLETED_TINY))  # not selected
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.runs) == 2)
        assert {run.run_id for run in screen.runs} == {COMPLETED_TINY, RUNNING_TINY}
        assert not screen.selected


def test_selection_order_and_the_delete_question() -> None:
    ids, hidden = selection_order({"c", "a", "z"}, ["a", "b", "c"])
    assert (ids, hidden) == (["a", "c", "z"], 1)
    runs = [_run("completed", run_id=r) for r in ("a", "c", "z")]
    question = delete_question(runs, 1)
    assert question.startswith("Delete 3 selected runs, 1 of them hidden by the filters?")
    assert delete_question(runs[:1], 0).startswith("Delete run a (tiny, completed)?")
