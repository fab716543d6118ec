"""Two or more runs side by side: one metric overlaid, final and best values, config differences,
and the latest outputs of generative runs for the same prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Header, Label, Select, Static, TabbedContent, TabPane, Tabs

from tuneboard.engine.context import metric_higher_is_better
from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import ACTIVE_STATUSES, GenerationRow, RunRow, Series
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
from tuneboard.tui.metrics import best_index, default_metric, direction_word
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.render import format_number
from tuneboard.ui.safe import safe_text, visible

MAX_POINTS = 300

XAxis = Literal["step", "time"]


@dataclass
class Comparison:
    """What the compare screen shows, read in one go."""

    runs: list[RunRow]
    last: dict[str, dict[str, float]] = field(default_factory=dict)
    best: dict[str, dict[str, float]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    metric: str | None = None
    series: dict[str, Series] = field(default_factory=dict)
    generations: dict[str, list[GenerationRow]] = field(default_factory=dict)


class CompareScreen(LiveScreen):
    """Runs compared on one chart and in tables; follows runs that are still going."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "pick_metric", "Metric"),
        Binding("t", "toggle_x", "Step/time"),
        Binding("left_square_bracket", "prompt(-1)", "Prev prompt"),
        Binding("right_square_bracket", "prompt(1)", "Next prompt"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)
        self.metric: str | None = None
        self.x_axis: XAxis = "step"
        self._names: list[str] = []
        self._runs: list[RunRow] = []
        self._reader = GenerationReader()
        self.prompts: list[PromptKey] = []
        self.prompt_index = 0
        self._latest: dict[str, dict[PromptKey, GenerationRow]] = {}
        self._generations_drawn: object = None
        self.output_columns: dict[str, Static] = {}

    def compose(self) -> ComposeResult:
        """Metric picker, then the chart, the metrics table and the config differences."""
        yield Header()
        with Horizontal(id="compare-controls"):
            yield Label("metric ")
            yield Select[str]([], id="metric", compact=True, prompt="metric")
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
        """The runs, their last and best metric values, and the chosen metric's series."""
        store = self.tb.store
        runs: list[RunRow] = []
        data = Comparison(runs)
        with store.hold():
            for run_id in self.run_ids:
                try:
                    runs.append(store.get_run(run_id))
                except TuneboardError:
                    continue
            names: dict[str, None] = {}
            for run in runs:
                data.last[run.run_id] = store.last_metrics(run.run_id)
                data.best[run.run_id] = store.best_metrics(run.run_id, self.higher_is_better)
                names.update(dict.fromkeys(data.last[run.run_id]))
                # New generations come with new validation values or a stage's end.
                version = (
                    run.status,
                    run.current_stage,
                    tuple(
                        sorted(
                            (name, value)
                            for name, value in data.last[run.run_id].items()
                            if name.startswith("val/")
                        )
                    ),
                )
                data.generations[run.run_id] = self._reader.read(store, run.run_id, version)
            data.names = sorted(names)
            headlines = [run.headline for run in runs]
            metric = self.metric if self.metric in names else None
            data.metric = metric or default_metric(data.names, ["val/accuracy", *headlines])
            if data.metric is not None:
                for run in runs:
                    series = store.series(
                        run.run_id, data.metric, max_points=MAX_POINTS, x=self.x_axis
                    )
                    if self.x_axis == "time" and series.xs:
                        start = run.started_at or series.xs[0]
                        series = Series([x - start for x in series.xs], series.ys)
                    data.series[run.run_id] = series
        return data

    def show(self, data: Comparison) -> None:
        """Draw the chart and the tables; stop polling once every run has ended."""
        self.metric = data.metric
        self._runs = data.runs
        if data.names != self._names:
            self._names = data.names
            select = self.query_one("#metric", Select)
            with select.prevent(Select.Changed):
                select.set_options([(safe_text(name), name) for name in data.names])
                if data.metric is not None:
                    select.value = data.metric
        chart = self.query_one("#compare-chart", MetricChart)
        chart.title = data.metric or "no metrics"
        xlabel = "step" if self.x_axis == "step" else "seconds since start"
        chart.set_series(data.series, xlabel)
        if data.metric is not None:
            arrow = direction_word(data.metric, self.higher_is_better)
            note = f"  {arrow} {'higher' if arrow == '↑' else 'lower'} is better · x: {self.x_axis}"
            self.query_one("#compare-note", Static).update(Text(note))
        self._show_metrics(data)
        self._show_config(data.runs)
        self._show_generations(data)
        if all(run.status not in ACTIVE_STATUSES for run in data.runs):
            self.stop_polling()

    def _show_metrics(self, data: Comparison) -> None:
        table = self.query_one("#metrics", DataTable)
        table.clear(columns=True)
        table.add_column("metric", key="metric")
        table.add_column("", key="direction")
        for run in data.runs:
            table.add_column(safe_text(run.run_id), key=run.run_id)
        for name in data.names:
            higher = self.higher_is_better(name)
            bests = [data.best.get(run.run_id, {}).get(name) for run in data.runs]
            winner = best_index(bests, higher) if len(data.runs) > 1 else None
            cells: list[Any] = [safe_text(name), "↑" if higher else "↓"]
            for index, run in enumerate(data.runs):
                last = data.last.get(run.run_id, {}).get(name)
                best = bests[index]
                text = Text(format_number(last))
                if best is not None and best != last:
                    text.append(f" (best {format_number(best)})", style="dim")
                if index == winner:
                    text.append(" ★ best", style="bold")
                cells.append(text)
            table.add_row(*cells, key=name)

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

    def action_toggle_x(self) -> None:
        """Plot against the step or the time since each run started."""
        self.x_axis = "time" if self.x_axis == "step" else "step"
        self.request_refresh()
