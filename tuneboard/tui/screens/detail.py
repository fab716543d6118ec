"""One run: its stages, live charts of every metric, what a generative model wrote, the tail of
its events and its config."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane, Tabs

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import (
    ACTIVE_STATUSES,
    EventRow,
    GenerationRow,
    RunRow,
    Series,
    StageRow,
    StageSpan,
)
from tuneboard.tui.axes import RUN_STEPS, AxisMode, chart_marks, next_mode, step_range
from tuneboard.tui.cells import duration_cell, progress_bar, status_cell
from tuneboard.tui.configs import flatten_config, toml_literal
from tuneboard.tui.generations import (
    GenerationReader,
    PromptHistory,
    history_text,
    prompt_histories,
)
from tuneboard.tui.lineage import (
    LINEAGE_ACTIONS,
    LineageLine,
    lineage_action_shown,
    open_children,
    open_parent,
)
from tuneboard.tui.logs import LogChunk, LogView
from tuneboard.tui.metrics import metric_families, monitored_metric
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.lineage import Lineage, read_lineage
from tuneboard.ui.render import elapsed, format_duration, format_number, format_time, status_text
from tuneboard.ui.safe import safe_text, visible

MAX_POINTS = 300
EVENT_TAIL = 40
WIDE = 120  # columns from which charts go two abreast
# Seconds between redraws of a running run's charts: drawing them at every poll (0.4 s) while
# runs log fast was most of the screen's CPU time, and a second is as live as a chart needs.
CHART_INTERVAL = 1.0
STAGE_COLUMNS = ("#", "stage", "plugin", "status", "steps", "best", "time")


@dataclass
class RunDetail:
    """Everything the detail screen shows of a run, read in one go."""

    run: RunRow | None
    stages: list[StageRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    series: dict[str, Series] = field(default_factory=dict)
    spans: list[StageSpan] = field(default_factory=list)
    axis: AxisMode = RUN_STEPS  # the axis the series were read on
    generations: list[GenerationRow] = field(default_factory=list)
    lineage: Lineage | None = None
    logs: LogChunk | None = None


class ChartArea(VerticalScroll):
    """The scrolling area of the charts; fits the charts' height whenever its own size changes."""

    def on_resize(self, event: events.Resize) -> None:
        """Charts as tall as the visible area allows (the area shrinks as stages appear)."""
        screen = self.screen
        if isinstance(screen, DetailScreen):
            screen.fit_chart_height(event.size.height)


class DetailScreen(LiveScreen):
    """A run, followed live while it trains (two or more refreshes a second)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "cancel_run", "Cancel run"),
        Binding("r", "relaunch", "Re-launch"),
        Binding("t", "toggle_x", "X axis"),
        Binding("v", "review", "Review"),
        Binding("left_square_bracket", "prompt(-1)", "Prev prompt"),
        Binding("right_square_bracket", "prompt(1)", "Next prompt"),
        Binding("p", "open_parent", "Parent run"),
        Binding("o", "open_children", "Child runs"),
        Binding("slash", "search_logs", "Search logs"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.run: RunRow | None = None
        self.axis = RUN_STEPS
        self.spans: list[StageSpan] = []
        self.charts: dict[str, MetricChart] = {}
        self._events_key: object = None
        self._config_shown = False
        self._charts_drawn: tuple[float, AxisMode | None] = (0.0, None)  # when, on which axis
        self._chart_height = 0
        self._summary_lines = 0
        self._stage_cells: list[tuple[Any, ...]] = []
        self._stage_theme: object = None
        self._reader = GenerationReader()
        self.histories: list[PromptHistory] = []
        self.prompt_index = 0
        self.lineage: Lineage | None = None
        self.log_view = LogView(id="logs")

    def compose(self) -> ComposeResult:
        """Summary, error banner, stage timeline, then charts, generations, events, logs and
        config as tabs (generations only once the run has some)."""
        yield Header()
        yield Static(id="summary")
        yield LineageLine(id="lineage")
        yield Static(id="error", classes="error-banner")
        stages: DataTable[Any] = Table(id="stages", cursor_type="none")
        for label in STAGE_COLUMNS:
            stages.add_column(label, key=label)
        yield stages
        with TabbedContent(id="tabs"):
            with TabPane("Charts", id="charts-tab"), ChartArea(id="charts-scroll"):
                yield Static("no metrics logged yet", id="no-charts", classes="hint")
                yield Grid(id="charts")
            with TabPane("Generations", id="generations-tab"), VerticalScroll():
                yield Static(id="generations")
            with TabPane("Events", id="events-tab"), VerticalScroll():
                yield Static(id="events")
            with TabPane("Logs", id="logs-tab"):
                yield self.log_view
            with TabPane("Config", id="config-tab"), VerticalScroll():
                yield Static(id="config")
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Title and layout (`LiveScreen.on_mount` then does the first load)."""
        self.sub_title = f"run {self.run_id}"
        self.query_one("#error").display = False
        # Shown once the run has generations: classification runs never show it.
        self.query_one("#tabs", TabbedContent).hide_tab("generations-tab")
        self._fit_charts(self.size.width)
        self.query_one(Tabs).focus()

    def on_resize(self, event: events.Resize) -> None:
        """Two charts abreast on wide terminals."""
        self._fit_charts(event.size.width)

    def _fit_charts(self, width: int) -> None:
        self.query_one("#charts", Grid).styles.grid_size_columns = 2 if width >= WIDE else 1

    def fit_chart_height(self, visible: int) -> None:
        """One row of charts fills the `visible` lines of the chart area, within 10 to 20."""
        height = max(10, min(20, visible))
        grid = self.query_one("#charts", Grid)
        if self._chart_height != height:
            self._chart_height = height
            grid.styles.grid_rows = str(height)
            for chart in self.charts.values():
                chart.styles.height = height

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast until the run is known to have ended."""
        return self.run is None or self.run.status in ACTIVE_STATUSES

    def load(self) -> RunDetail:
        """The run, its stages, recent events and downsampled series of every metric."""
        store = self.tb.store
        with store.hold():
            try:
                run = store.get_run(self.run_id)
            except TuneboardError:
                return RunDetail(None)
            names = store.metric_names(self.run_id)
            stages = store.stages(self.run_id)
            spans = store.stage_spans(self.run_id)
            axis = self.axis
            series = {
                name: store.series(
                    self.run_id,
                    name,
                    max_points=MAX_POINTS,
                    x=axis.x,
                    stage_index=axis.stage_index,
                    spans=spans,
                )
                for name in names
            }
            if axis.stage_index is not None:  # only the metrics that stage logged
                series = {name: s for name, s in series.items() if s.xs}
            # Generations are written just before the validation metrics of the same
            # evaluation, or by a stage before it ends: read them again only then.
            version = (
                tuple((stage.stage_index, stage.status) for stage in stages),
                tuple(
                    (name, s.xs[-1])
                    for name, s in series.items()
                    if name.startswith("val/") and s.xs
                ),
            )
            return RunDetail(
                run=run,
                stages=stages,
                events=store.events(self.run_id, limit=EVENT_TAIL),
                series=series,
                spans=spans,
                axis=axis,
                generations=self._reader.read(store, self.run_id, version),
                lineage=read_lineage(store, run.run_id, whole=False),
                logs=self.log_view.read(store, self.run_id),
            )

    def show(self, data: RunDetail) -> None:
        """Draw the run; stop polling once it has ended and been drawn."""
        if data.run is None:
            self.notify(f"run {self.run_id} no longer exists", severity="warning")
            self.stop_polling()
            self.app.pop_screen()
            return
        self.run = data.run
        self._show_summary(data.run)
        self.spans = data.spans
        self._show_lineage(data.lineage)
        self._show_stages(data.stages, data.spans)
        self._show_charts(data)
        self._show_generations(data.stages, data.generations)
        self._show_events(data.events)
        self.log_view.show(data.logs)
        if not self._config_shown:
            self._show_config(data.run)
        if data.run.status not in ACTIVE_STATUSES:
            self.stop_polling()

    def _show_summary(self, run: RunRow) -> None:
        now = self.tb.clock()
        text = Text()
        text.append(visible(run.run_id), style="bold")
        text.append(visible(f"  {run.experiment}  "))
        text.append_text(status_cell(run.status, self.app.theme_variables))
        details = [run.device or "no device yet"]
        if run.started_at is not None:
            details.append(f"started {format_time(run.started_at)}")
        details.append(duration_cell(run, now))
        if run.headline_value is not None:
            details.append(f"{run.headline} {format_number(run.headline_value)}")
        text.append("\n" + visible(" · ".join(d for d in details if d)))
        if run.status == "running" and run.current_stage:
            stage = visible(f"stage {run.current_stage} {progress_bar(run.progress)}")
            text.append(f"\n{stage}")
        summary = self.query_one("#summary", Static)
        summary.update(text, layout=self._summary_resized(text, summary.content_size.width))
        banner = self.query_one("#error", Static)
        failed = run.status in ("failed", "interrupted") and bool(run.error)
        banner.display = failed
        if failed:
            banner.update(safe_text(f"{status_text(run.status)}: {run.error}", multiline=True))

    def _show_lineage(self, lineage: Lineage | None) -> None:
        before = [lineage_action_shown(self.lineage, action) for action in LINEAGE_ACTIONS]
        self.lineage = lineage
        self.query_one(LineageLine).show(lineage)
        if before != [lineage_action_shown(lineage, action) for action in LINEAGE_ACTIONS]:
            self.refresh_bindings()

    def _summary_resized(self, text: Text, width: int) -> bool:
        """Whether the summary's height may change: another number of lines, or a line
        that wraps. Otherwise it is redrawn without laying out the screen again."""
        lines = text.plain.split("\n")
        fits = width > 0 and all(cell_len(line) <= width for line in lines)
        resized = not fits or len(lines) != self._summary_lines
        self._summary_lines = len(lines) if fits else 0
        return resized

    def _show_stages(self, stages: list[StageRow], spans: list[StageSpan]) -> None:
        """Fill the table when the stages are new, else change only the cells that changed
        (a refill measures every cell and lays the screen out again)."""
        table = self.query_one("#stages", DataTable)
        variables = self.app.theme_variables
        placed = {span.stage_index: span for span in spans}
        rows = [
            self._stage_cells_of(stage, placed.get(stage.stage_index), variables)
            for stage in stages
        ]
        if len(rows) == len(self._stage_cells) and self._stage_theme is variables:
            for row, (cells, before) in enumerate(zip(rows, self._stage_cells, strict=True)):
                for column, value, old in zip(STAGE_COLUMNS, cells, before, strict=True):
                    if value != old:
                        table.update_cell(str(row), column, value, update_width=True)
        else:
            table.clear()
            for row, cells in enumerate(rows):
                table.add_row(*cells, key=str(row))
            table.styles.height = len(stages) + 1 if stages else 1
        self._stage_cells = rows
        self._stage_theme = variables

    def _stage_cells_of(
        self, stage: StageRow, span: StageSpan | None, variables: dict[str, str]
    ) -> tuple[Any, ...]:
        """A stage's row: its run-wide steps (and its progress while short of its total),
        its best value at its run-wide step, its time."""
        steps = step_range(span) if span is not None else ""
        done = stage.steps or 0
        if stage.total_steps and done < stage.total_steps:
            steps = f"{steps} {done}/{stage.total_steps}".strip()
        best = ""
        if stage.best_value is not None:
            best = f"{stage.best_metric} {format_number(stage.best_value)}"
            if span is not None and span.best_step is not None:
                best += f" @ {span.best_step}"
            elif stage.best_step is not None:
                best += f" @ {stage.best_step}"
        end = stage.finished_at if stage.finished_at is not None else self.tb.clock()
        return (
            str(stage.stage_index),
            safe_text(stage.name),
            safe_text(stage.plugin),
            status_cell(stage.status, variables),
            steps,
            safe_text(best),
            format_duration(elapsed(stage.started_at, end)),
        )

    def _show_charts(self, data: RunDetail) -> None:
        """A chart per metric family, in the families' order, with the stages' boundaries
        and best checkpoints; families with no points on this axis are taken away."""
        series, axis = data.series, data.axis
        now = time.monotonic()
        drawn_at, drawn_axis = self._charts_drawn
        running = data.run is not None and data.run.status in ACTIVE_STATUSES
        if running and axis == drawn_axis and now - drawn_at < CHART_INTERVAL:
            return  # drawn less than CHART_INTERVAL ago: the next poll draws them
        self._charts_drawn = (now, axis)
        starts = self._stage_starts(data.stages)
        monitored = monitored_metric(
            (stage.params for stage in data.stages), data.run.headline if data.run else None
        )
        families = metric_families(series, monitored)
        grid = self.query_one("#charts", Grid)
        self.query_one("#no-charts").display = not families
        for family in [f for f in self.charts if f not in families]:
            self.charts.pop(family).remove()
        previous: MetricChart | None = None
        for family, names in families.items():
            chart = self.charts.get(family)
            if chart is None:
                chart = self.charts[family] = MetricChart(family, classes="run-chart")
                if self._chart_height:
                    chart.styles.height = self._chart_height
                if previous is not None:
                    grid.mount(chart, after=previous)
                elif grid.children:
                    grid.mount(chart, before=0)
                else:
                    grid.mount(chart)
            chart.set_series(
                {name: self._x(series[name], axis) for name in names},
                axis.label,
                chart_marks(axis, data.spans, names, starts),
            )
            previous = chart

    def _run_start(self) -> float | None:
        return self.run.started_at if self.run else None

    def _x(self, series: Series, axis: AxisMode) -> Series:
        """Times as seconds since the run started, so axes read naturally."""
        if axis.x != "time" or not series.xs:
            return series
        start = self._run_start() or series.xs[0]
        return Series([x - start for x in series.xs], series.ys)

    def _stage_starts(self, stages: list[StageRow]) -> dict[int, float]:
        """When each started stage started, in seconds since the run started."""
        start = self._run_start()
        if start is None:
            return {}
        return {s.stage_index: s.started_at - start for s in stages if s.started_at is not None}

    def _show_generations(self, stages: list[StageRow], rows: list[GenerationRow]) -> None:
        """The chosen prompt with its outputs at every evaluation; the tab appears with the
        run's first generations."""
        names = {stage.stage_index: stage.name for stage in stages}
        histories = prompt_histories(rows, names)
        if histories == self.histories:
            return
        shown = bool(self.histories)
        self.histories = histories
        if shown != bool(histories):
            tabs = self.query_one("#tabs", TabbedContent)
            if histories:
                tabs.show_tab("generations-tab")
            else:  # a resume removed them
                tabs.hide_tab("generations-tab")
            self.refresh_bindings()
        self._draw_generations()

    def _draw_generations(self) -> None:
        if not self.histories:
            return
        self.prompt_index = min(self.prompt_index, len(self.histories) - 1)
        text = history_text(
            self.histories[self.prompt_index], self.prompt_index, len(self.histories)
        )
        self.query_one("#generations", Static).update(text)

    def _show_events(self, events_: list[EventRow]) -> None:
        key = (len(events_), events_[-1].time if events_ else None)
        if key == self._events_key:
            return
        self._events_key = key
        text = Text()
        for event in events_:
            first, *rest = event.message.splitlines() or [""]
            style = "bold" if event.level in ("error", "warning") else ""
            text.append(f"{format_time(event.time)}  {event.level:<7} ", style="dim")
            text.append(f"{visible(first)}\n", style=style)
            if event.level == "error":
                for line in rest[-8:]:
                    text.append(f"    {visible(line)}\n")
        self.query_one("#events", Static).update(text)

    def _show_config(self, run: RunRow) -> None:
        lines = [
            f"{key} = {toml_literal(value)}" for key, value in flatten_config(run.config).items()
        ]
        self.query_one("#config", Static).update(safe_text("\n".join(lines), multiline=True))
        self._config_shown = True

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The prompt keys only for a run with generations, the lineage keys only for a run
        with a parent or children (not in the footer otherwise)."""
        if action == "prompt":
            return bool(self.histories)
        if action in LINEAGE_ACTIONS:
            return lineage_action_shown(self.lineage, action)
        return True

    def action_prompt(self, delta: int) -> None:
        """Show the previous or next prompt's generations (and the Generations tab)."""
        if not self.histories:
            return
        self.prompt_index = (self.prompt_index + delta) % len(self.histories)
        self.query_one("#tabs", TabbedContent).active = "generations-tab"
        self._draw_generations()

    def action_search_logs(self) -> None:
        """Show the Logs tab and search it."""
        self.query_one("#tabs", TabbedContent).active = "logs-tab"
        self.log_view.open_search()

    def action_open_parent(self) -> None:
        """Open the run this run's model came from."""
        open_parent(self, self.lineage)

    def action_open_children(self) -> None:
        """Open a run that started from this run's models (a list when there are several)."""
        open_children(self, self.lineage)

    def action_toggle_x(self) -> None:
        """Plot against the next x axis: run-wide steps, the steps of each stage in turn,
        epochs, time."""
        self.axis = next_mode(self.axis, self.spans)
        self.notify(f"x axis: {self.axis.choice}")
        self.request_refresh()

    def action_cancel_run(self) -> None:
        """Cancel this run if it is queued or running."""
        run = self.run
        if run is None or run.status not in ACTIVE_STATUSES:
            self.notify("this run is not active")
            return
        if self.tb.engine.cancel(run.run_id):
            self.notify(f"cancelling run {run.run_id}…")
        else:
            self.notify(f"run {run.run_id} could not be cancelled from here", severity="warning")

    def action_relaunch(self) -> None:
        """Launch this run's config again."""
        if self.run is not None:
            self.relaunch(self.run)

    @work(thread=True, exit_on_error=False, name="opening the review")
    def action_review(self) -> None:
        """Review this run's predictions (accept or correct their labels), or its generations
        (accept, edit or reject outputs) when those are the newest it wrote."""
        from tuneboard.review.generations import reviews_generations
        from tuneboard.tui.screens.review import ReviewScreen
        from tuneboard.tui.screens.review_generations import GenerationReviewScreen

        try:
            with self.tb.store.hold():
                run_id = self.tb.store.get_run(self.run_id).run_id
                generations = reviews_generations(self.tb.store, run_id)
        except TuneboardError:
            generations = False  # the Review screen says what went wrong
        screen = GenerationReviewScreen if generations else ReviewScreen
        self.app.call_from_thread(self.app.push_screen, screen(self.run_id))
