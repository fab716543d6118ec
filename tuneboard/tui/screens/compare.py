"""Two or more runs side by side: one metric overlaid (over the whole runs, or aligned on one
stage), last and best values per stage, config differences, and the latest outputs of
generative runs for the same prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Header, Label, Select, Static, TabbedContent, TabPane, Tabs

from tuneboard.engine.context import metric_higher_is_better
from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import (
    ACTIVE_STATUSES,
    GenerationRow,
    RunRow,
    Series,
    StageSpan,
    StageValues,
    XAxis,
)
from tuneboard.tui.alignment import AXES, Axis, chart_boundaries, stage_starts
from tuneboard.tui.configs import config_differences
from tuneboard.tui.generations import (
    GenerationReader,
    PromptKey,
    body,
    compared_prompts,
    evaluation_label,
    heading,
    latest_outputs,
)
from tuneboard.tui.legend import run_labels
from tuneboard.tui.metrics import default_metric, direction_word
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.widgets.chart import NO_MARKS, ChartMarks, MetricChart
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.comparison import AlignedRow, aligned_rows, stage_groups
from tuneboard.ui.pipelines import match_stage, stage_names
from tuneboard.ui.render import format_number
from tuneboard.ui.safe import safe_text, visible

MAX_POINTS = 300

WHOLE_RUN = ""
"""The alignment picker's value for "the whole run" (a stage name is never empty)."""

_XLABELS: dict[Axis, str] = {
    "step": "step (whole run)",
    "epoch": "epoch (whole run)",
    "time": "seconds since start",
}

# How the note names the x axis, over whole runs and aligned on a stage.
_WHOLE_AXES: dict[Axis, str] = {
    "step": "run-wide steps",
    "epoch": "run-wide epochs",
    "time": "seconds since the run started",
}
_STAGE_AXES: dict[Axis, str] = {
    "step": "steps in the stage",
    "epoch": "epochs in the stage",
    "time": "seconds since the stage started",
}


@dataclass
class Comparison:
    """What the compare screen shows, read in one go."""

    runs: list[RunRow]
    stages: dict[str, list[StageValues]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    stage_names: list[str] = field(default_factory=list)
    metric: str | None = None
    stage: str | None = None
    x_axis: Axis = "step"
    series: dict[str, Series] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # the series' names in the legend
    marks: ChartMarks = NO_MARKS
    missing: list[str] = field(default_factory=list)
    generations: dict[str, list[GenerationRow]] = field(default_factory=dict)


class CompareScreen(LiveScreen):
    """Runs compared on one chart and in tables, over the whole run or aligned on one stage;
    follows runs that are still going."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "pick_metric", "Metric"),
        Binding("a", "align", "Align"),
        Binding("t", "toggle_x", "Step/epoch/time"),
        Binding("left_square_bracket", "prompt(-1)", "Prev prompt"),
        Binding("right_square_bracket", "prompt(1)", "Next prompt"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)
        self.metric: str | None = None
        self.stage: str | None = None
        self.x_axis: Axis = "step"
        self._names: list[str] = []
        self._stage_names: list[str] | None = None
        self._runs: list[RunRow] = []
        self._reader = GenerationReader()
        self.prompts: list[PromptKey] = []
        self.prompt_index = 0
        self._latest: dict[str, dict[PromptKey, GenerationRow]] = {}
        self._generations_drawn: object = None
        self.output_columns: dict[str, Static] = {}

    def compose(self) -> ComposeResult:
        """Metric and alignment pickers, then the chart, the metrics table and the config
        differences."""
        yield Header()
        with Horizontal(id="compare-controls"):
            yield Label("metric ")
            yield Select[str]([], id="metric", compact=True, prompt="metric")
            yield Label(" align ")
            yield Select[str](
                [("whole run", WHOLE_RUN)],
                id="align",
                compact=True,
                allow_blank=False,
                value=WHOLE_RUN,
            )
        yield Static(id="compare-note", classes="hint")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Chart", id="chart-tab"):
                yield MetricChart("", id="compare-chart")
            with TabPane("Metrics", id="metrics-tab"):
                yield Table(id="metrics", cursor_type="row")
            with TabPane("Config diff", id="config-tab"):
                yield Table(id="config-diff", cursor_type="row")
            with (
                TabPane("Generations", id="generations-tab"),
                VerticalScroll(),
                Horizontal(id="generations-row"),
            ):
                yield Static(id="generations-prompt", classes="generation-column")
                for run_id in self.run_ids:
                    column = Static(classes="generation-column")
                    self.output_columns[run_id] = column
                    yield column
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Title and focus (`LiveScreen.on_mount` then does the first load)."""
        self.sub_title = f"comparing {len(self.run_ids)} runs"
        # Shown once a run has generations: never when comparing classification runs.
        self.query_one("#compare-tabs", TabbedContent).hide_tab("generations-tab")
        self.query_one(Tabs).focus()

    def higher_is_better(self, name: str) -> bool:
        """The direction of a metric, from the metric plugins."""
        return metric_higher_is_better(name, self.tb.registry)

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast while one of the runs is still going."""
        return any(run.status in ACTIVE_STATUSES for run in self._runs)

    def load(self) -> Comparison:
        """The runs, each stage's last and best metric values, and the chosen metric's
        series: whole runs on the run-wide axis, or each run's stage that lines up with the
        chosen one."""
        store = self.tb.store
        runs: list[RunRow] = []
        data = Comparison(runs, x_axis=self.x_axis)
        with store.hold():
            for run_id in self.run_ids:
                try:
                    runs.append(store.get_run(run_id))
                except TuneboardError:
                    continue
            names: dict[str, None] = {}
            for run in runs:
                stages = store.stage_values(run.run_id, self.higher_is_better)
                data.stages[run.run_id] = stages
                for stage in stages:
                    names.update(dict.fromkeys(stage.last))
                # New generations come with new validation values or a stage's end.
                version = (
                    run.status,
                    run.current_stage,
                    tuple(
                        (stage.stage_index, name, value)
                        for stage in stages
                        for name, value in sorted(stage.last.items())
                        if name.startswith("val/")
                    ),
                )
                data.generations[run.run_id] = self._reader.read(store, run.run_id, version)
            data.names = sorted(names)
            data.stage_names = stage_names(data.stages.values())
            data.stage = self.stage if self.stage in data.stage_names else None
            headlines = [run.headline for run in runs]
            metric = self.metric if self.metric in names else None
            data.metric = metric or default_metric(data.names, ["val/accuracy", *headlines])
            if data.metric is not None:
                self._read_series(data, data.metric)
        return data

    def _read_series(self, data: Comparison, metric: str) -> None:
        """Each run's series of `metric` (and its stage boundaries over the whole run)."""
        store = self.tb.store
        starts: dict[str, list[tuple[float, str]]] = {}
        legend = run_labels([(run.run_id, run.experiment, run.config) for run in data.runs])
        for run in data.runs:
            spans = store.stage_spans(run.run_id)
            begun = {
                row.stage_index: row.started_at
                for row in store.stages(run.run_id)
                if row.started_at is not None
            }
            if data.stage is None:
                series = self._whole_run(run, metric, data.x_axis, spans)
                origin = run.started_at or (series.xs[0] if series.xs else 0.0)
                began = {index: at - origin for index, at in begun.items()}
                if series.xs:
                    starts[run.run_id] = stage_starts(spans, data.x_axis, began)
                data.series[run.run_id] = series
                data.labels[run.run_id] = legend[run.run_id]
                continue
            matched = match_stage(data.stages[run.run_id], data.stage)
            if matched is None:
                data.missing.append(run.run_id)
                continue
            span = next((s for s in spans if s.stage_index == matched.stage_index), None)
            series = self.tb.store.series(
                run.run_id,
                metric,
                max_points=MAX_POINTS,
                x=data.x_axis,
                stage_index=matched.stage_index,
                spans=spans,
            )
            if data.x_axis == "epoch" and span is not None:
                series = _shifted(series, span.first_epoch)
            elif data.x_axis == "time" and series.xs:
                series = _shifted(series, begun.get(matched.stage_index, series.xs[0]))
            label, shown = run.run_id, legend[run.run_id]
            if matched.name != data.stage:
                label, shown = f"{run.run_id} ({matched.name})", f"{shown} ({matched.name})"
            data.series[label] = series
            data.labels[label] = shown
        data.marks = ChartMarks(boundaries=chart_boundaries(starts))

    def _whole_run(self, run: RunRow, metric: str, axis: Axis, spans: list[StageSpan]) -> Series:
        store = self.tb.store
        if axis == "time":
            series = store.series(run.run_id, metric, max_points=MAX_POINTS, x="time")
            if series.xs:
                series = _shifted(series, run.started_at or series.xs[0])
            return series
        x: XAxis = "run_step" if axis == "step" else "epoch"
        return store.series(run.run_id, metric, max_points=MAX_POINTS, x=x, spans=spans)

    # --- drawing ------------------------------------------------------------------------

    def show(self, data: Comparison) -> None:
        """Draw the chart and the tables; stop polling once every run has ended."""
        # Only a metric that is gone is replaced: one picked during the load stays chosen
        # (so does a stage: `self.stage` is left as it is).
        if self.metric not in data.names:
            self.metric = data.metric
        self._runs = data.runs
        if data.names != self._names:
            self._names = data.names
            select = self.query_one("#metric", Select)
            with select.prevent(Select.Changed):
                select.set_options([(safe_text(name), name) for name in data.names])
                if self.metric is not None:
                    select.value = self.metric
        if data.stage_names != self._stage_names:
            self._stage_names = data.stage_names
            align = self.query_one("#align", Select)
            with align.prevent(Select.Changed):
                options = [(safe_text(f"stage {name}"), name) for name in data.stage_names]
                align.set_options([("whole run", WHOLE_RUN), *options])
                align.value = self.stage if self.stage in data.stage_names else WHOLE_RUN
        chart = self.query_one("#compare-chart", MetricChart)
        chart.title = data.metric or "no metrics"
        chart.set_series(data.series, _xlabel(data.x_axis, data.stage), data.marks, data.labels)
        self.query_one("#compare-note", Static).update(self._note(data))
        self._show_metrics(data)
        self._show_config(data.runs)
        self._show_generations(data)
        if all(run.status not in ACTIVE_STATUSES for run in data.runs):
            self.stop_polling()

    def _note(self, data: Comparison) -> Text:
        """The metric's direction, the alignment and the axis, and what the chart leaves out."""
        note = Text(" ")
        if data.metric is not None:
            arrow = direction_word(data.metric, self.higher_is_better)
            note.append(f"{arrow} {'higher' if arrow == '↑' else 'lower'} is better · ")
        if data.stage is None:
            note.append(f"whole runs · x: {_WHOLE_AXES[data.x_axis]}")
        else:
            note.append(f"aligned on stage {visible(data.stage)} · x: {_STAGE_AXES[data.x_axis]}")
        for run_id in data.missing:
            note.append(f" · {visible(run_id)} has no stage {visible(data.stage or '')}", "bold")
        if data.metric is not None and data.series and not any(s.xs for s in data.series.values()):
            where = "these runs" if data.stage is None else f"stage {visible(data.stage)}"
            note.append(f" · no {visible(data.metric)} in {where}", "bold")
        return note

    def _show_metrics(self, data: Comparison) -> None:
        """Last and best values per stage and metric; the best run of each row marked: the
        rows of `tuneboard compare` (`tuneboard.ui.comparison.aligned_rows`)."""
        table = self.query_one("#metrics", DataTable)
        table.clear(columns=True)
        table.add_column("stage", key="stage")
        table.add_column("metric", key="metric")
        table.add_column("", key="direction")
        for run in data.runs:
            table.add_column(safe_text(run.run_id), key=run.run_id)
        if data.runs:
            # Which run is which (the pipeline, the baseline), as `tuneboard compare` says.
            experiments = [Text(visible(run.experiment), style="dim") for run in data.runs]
            table.add_row(Text("experiment", style="dim"), "", "", *experiments, key="experiment")
        per_run = [data.stages.get(run.run_id, []) for run in data.runs]
        groups = stage_groups(per_run, data.stage)
        group: str | None = None
        for row in aligned_rows(groups, self.higher_is_better):
            stage_cell = Text("")
            if row.stage != group:
                group = row.stage
                stage_cell = safe_text(row.stage)
                if row.renamed:
                    cells = [
                        Text(f"stage {visible(name)}" if name else "no such stage", style="dim")
                        for name in row.stages
                    ]
                    table.add_row(stage_cell, Text("(each run's stage)", style="dim"), "", *cells)
                    stage_cell = Text("")
            table.add_row(stage_cell, safe_text(row.metric), *_metric_cells(row), key=row.label)

    def _show_config(self, runs: list[RunRow]) -> None:
        table = self.query_one("#config-diff", DataTable)
        table.clear(columns=True)
        table.add_column("key", key="key")
        for run in runs:
            table.add_column(safe_text(run.run_id), key=run.run_id)
        differences = config_differences([run.config for run in runs])
        for key, values in differences:
            table.add_row(safe_text(key), *(safe_text(value) for value in values), key=key)
        if not differences:
            table.add_row(Text("(the configs are the same)"), *(Text("") for _ in runs))

    def _show_generations(self, data: Comparison) -> None:
        """Keep each run's latest output per prompt; the tab appears with the first ones."""
        prompts = compared_prompts(data.generations)
        latest = {run_id: latest_outputs(rows) for run_id, rows in data.generations.items()}
        if prompts and self.prompts:
            # Stay on the prompt shown, wherever it is now in the list.
            current = self.prompts[self.prompt_index]
            self.prompt_index = prompts.index(current) if current in prompts else 0
        shown = bool(self.prompts)
        self.prompts = prompts
        self._latest = latest
        if shown != bool(prompts):
            tabs = self.query_one("#compare-tabs", TabbedContent)
            if prompts:
                tabs.show_tab("generations-tab")
            else:  # the runs' generations were removed
                tabs.hide_tab("generations-tab")
                self.prompt_index = 0
            self.refresh_bindings()
        self._draw_generations()

    def _draw_generations(self) -> None:
        """The prompt and its reference, then each run's latest output for it."""
        if not self.prompts:
            self._generations_drawn = None
            return
        key = self.prompts[self.prompt_index]
        shown = [
            (run_id, self._latest[run_id].get(key))
            for run_id in self.run_ids
            if run_id in self._latest
        ]
        drawn = (self.prompt_index, len(self.prompts), shown)
        if drawn == self._generations_drawn:
            return
        self._generations_drawn = drawn
        rows = [row for _, row in shown if row is not None]
        first = rows[0]
        reference = next((row.reference for row in rows if row.reference), None)
        text = Text()
        text.append(f"prompt {self.prompt_index + 1} of {len(self.prompts)}", style="bold")
        text.append(f"\n{visible(key[0])} #{key[1]} · [ ] other prompts\n\n", style="dim")
        text.append_text(heading("prompt"))
        text.append_text(body(first.prompt))
        text.append_text(heading("\nreference"))
        text.append_text(body(reference))
        self.query_one("#generations-prompt", Static).update(text)
        for run_id, column in self.output_columns.items():
            column.display = run_id in self._latest
            if run_id in self._latest:
                column.update(self._output_text(run_id, self._latest[run_id].get(key), first))

    @staticmethod
    def _output_text(run_id: str, row: GenerationRow | None, shown: GenerationRow) -> Text:
        text = heading(run_id)
        if row is None:
            text.append("no output for this prompt\n", style="dim")
            return text
        label = visible(evaluation_label(row, {}, several=False))
        text.append(f"latest: {label}\n\n", style="dim")
        text.append_text(body(row.output))
        if row.prompt != shown.prompt:
            text.append("\n(this run's prompt differs:)\n", style="dim")
            text.append_text(body(row.prompt))
        return text

    # --- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The prompt keys only when a run has generations (not in the footer otherwise)."""
        if action == "prompt":
            return bool(self.prompts)
        return True

    def action_prompt(self, delta: int) -> None:
        """Show the previous or next prompt (and the Generations tab)."""
        if not self.prompts:
            return
        self.prompt_index = (self.prompt_index + delta) % len(self.prompts)
        self.query_one("#compare-tabs", TabbedContent).active = "generations-tab"
        self._draw_generations()

    @on(Select.Changed, "#metric")
    def _metric_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.metric = event.value
            self.request_refresh()

    def action_pick_metric(self) -> None:
        """Open the metric picker."""
        self.query_one("#metric", Select).focus()
        self.query_one("#metric", Select).expanded = True

    @on(Select.Changed, "#align")
    def _stage_chosen(self, event: Select.Changed) -> None:
        stage = event.value if isinstance(event.value, str) and event.value else None
        if stage != self.stage:
            self.stage = stage
            self.request_refresh()

    def action_align(self) -> None:
        """Align the runs on the next stage name (after the last, the whole runs again)."""
        choices: list[str | None] = [None, *(self._stage_names or [])]
        position = choices.index(self.stage) if self.stage in choices else 0
        self.stage = choices[(position + 1) % len(choices)]
        align = self.query_one("#align", Select)
        with align.prevent(Select.Changed):
            align.value = self.stage or WHOLE_RUN
        self.request_refresh()

    def action_toggle_x(self) -> None:
        """Plot against steps, epochs or the seconds since each run (or stage) started."""
        self.x_axis = AXES[(AXES.index(self.x_axis) + 1) % len(AXES)]
        self.request_refresh()


def _xlabel(axis: Axis, stage: str | None) -> str:
    """The chart's x axis label."""
    if stage is None:
        return _XLABELS[axis]
    if axis == "time":
        return f"seconds since stage {stage} started"
    return f"{axis} in stage {stage}"


def _shifted(series: Series, origin: float) -> Series:
    """The series with `origin` taken off every x."""
    return Series([x - origin for x in series.xs], series.ys)


def _metric_cells(row: AlignedRow) -> list[Any]:
    """The direction, then per run the last value (and the best when it reads differently),
    ★ on the best runs (none for bookkeeping values such as the learning rate, or a tie)."""
    higher = row.higher_is_better
    cells: list[Any] = ["" if higher is None else "↑" if higher else "↓"]
    for index, cell in enumerate(row.cells):
        text = Text(format_number(None if cell is None else cell.final))
        if cell is not None and cell.shown_best is not None:
            text.append(f" (best {format_number(cell.shown_best)})", style="dim")
        if index in row.best_runs:
            text.append(" ★", style="bold")
        cells.append(text)
    return cells
