"""Run detail charts a run's system metrics (`sys/...`) after its training charts, one chart
each, on the run-wide axis, without moving the stages' boundaries."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tests.tui.conftest import AppFactory, wait_for
from tests.tui.seed import THREE_STAGE, seed_three_stage
from tuneboard.config import load_project
from tuneboard.store import Store
from tuneboard.tui.screens.detail import DetailScreen
from tuneboard.tui.widgets.chart import MetricChart

CPU, RSS = "sys/process_cpu_percent", "sys/process_rss_mb"


async def test_system_metrics_chart_after_the_training_ones(
    seeded_project: Path, make_app: AppFactory
) -> None:
    seed_three_stage(seeded_project)
    with Store(load_project(seeded_project).database) as store:
        for stage, step in ((0, 0), (0, 20), (1, 10), (1, 40)):  # steps the stages logged
            store.log_metrics(THREE_STAGE, stage, step, {CPU: 50.0 + step, RSS: 300.0})
    app = make_app(seeded_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(DetailScreen(THREE_STAGE))
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await wait_for(pilot, lambda: CPU in screen.charts and screen.spans)
        titles = [chart.title for chart in screen.query(MetricChart)]
        # The monitored metric's family first (val/accuracy), then loss; system metrics last.
        assert titles == ["accuracy", "loss", "auroc", "epoch", CPU, RSS]
        assert screen.charts[CPU].series[CPU].xs == [0.0, 20.0, 30.0, 60.0]  # run-wide steps
        assert screen.charts[CPU].marks.points == ()  # no best checkpoint on it
        table = screen.query_one("#stages", DataTable)
        ranges = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert ranges == ["1–20", "21–60", "61–80", "at 80", "at 80"]
