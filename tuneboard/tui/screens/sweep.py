"""One sweep at a glance: the objective of each trial in order with the best so far, each swept
parameter against the objective, and a table of the trials whose rows open the runs."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.widgets import DataTable, Header, Static

from tuneboard.tui.cells import status_cell
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.widgets.chart import step_ticks
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.scatter import Layer, ScatterChart, Ticks
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.render import format_number
from tuneboard.ui.safe import safe_text
from tuneboard.ui.sweeps import ParamPoints, SweepTrials, Trial, param_labels, value_text

TRIAL_MARKER = "●"
PRUNED_MARKER = "×"
BEST_MARKER = "◆"
BEST_COLOR = "red+"
PRUNED_COLOR = "gray"
# At most this many charts side by side; more parameters wrap onto further rows.
CHART_COLUMNS = 3
# A numeric parameter spread over at least this ratio is drawn on a log axis (learning rates).
LOG_RATIO = 50.0


class SweepScreen(LiveScreen):
    """A sweep's trials, followed live while some still run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        # Priority: the table's own Enter would only select the row.
        Binding("enter", "open_run", "Open run", priority=True),
        Binding("b", "best", "Best trial"),
    ]

    def __init__(self, sweep_id: str) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.sweep: SweepTrials | None = None
        self.trial_ids: list[str] = []
        self._charted: tuple[str, ...] | None = None
        self._table_key: object = None

    def compose(self) -> ComposeResult:
        """Summary, the charts, the table of trials and the footer."""
        yield Header()
        yield Static(id="sweep-summary")
        yield Grid(id="sweep-charts")
        yield Table(id="trials", cursor_type="row", zebra_stripes=True)
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Title and focus (`LiveScreen.on_mount` then does the first load)."""
        self.sub_title = self.sweep_id
        self.query_one("#trials", DataTable).focus()

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast while a trial is queued or running."""
        return self.sweep is None or self.sweep.active > 0

    def load(self) -> SweepTrials:
        """The sweep's trials and their objectives (one open of the database)."""
        from tuneboard.ui.sweeps import load_sweep, sweep_table

        app = self.tb
        return load_sweep(
            app.store,
            self.sweep_id,
            lambda experiment: sweep_table(app.project.experiment_tables, experiment),
            self._higher,
        )

    def _higher(self, metric: str) -> bool:
        from tuneboard.engine.context import metric_higher_is_better

        return metric_higher_is_better(metric, self.tb.registry)

    def show(self, data: SweepTrials) -> None:
        """Draw the summary, the charts and the table."""
        if not data.trials:
            self.query_one("#sweep-summary", Static).update(
                safe_text(f"sweep {self.sweep_id} has no runs (deleted?)")
            )
            self.stop_polling()
            return
        self.sweep = data
        self._show_summary(data)
        self._show_charts(data)
        # No stop once no trial runs: an optuna sweep asks its next trial after one ends.
        self._show_table(data)

    def _show_summary(self, sweep: SweepTrials) -> None:
        objective = sweep.objective
        head = f"{sweep.sweep_id} · {sweep.experiment}"
        if sweep.method:
            head += f" · {sweep.method}"
        head += f" · {sweep.counts()}"
        text = Text(style="bold").append_text(safe_text(head))
        text.append("\nobjective ").append_text(safe_text(objective.metric))
        text.append(f" {objective.arrow}")
        best = sweep.best
        if best is not None and best.objective is not None:
            labels = param_labels(sweep.params)
            values = ", ".join(
                f"{labels[key]}={value_text(best.values[key])}"
                for key in sweep.params
                if key in best.values
            )
            text.append(f" · best trial {best.number}: ")
            text.append_text(safe_text(format_number(best.objective), "bold"))
            if values:
                text.append(" (").append_text(safe_text(values)).append(")")
        text.append(f"\n{TRIAL_MARKER} trial  {PRUNED_MARKER} pruned  {BEST_MARKER} best  ")
        text.append("⠒⠒ best so far", style="dim")
        self.query_one("#sweep-summary", Static).update(text)

    def _show_charts(self, sweep: SweepTrials) -> None:
        grid = self.query_one("#sweep-charts", Grid)
        if self._charted != sweep.params:
            self._charted = sweep.params
            grid.remove_children()
            labels = param_labels(sweep.params)
            metric = sweep.objective.metric
            charts = [ScatterChart(f"{metric} per trial", id="objective-chart")]
            charts += [
                ScatterChart(f"{metric} by {labels[key]}", classes="param-chart")
                for key in sweep.params
            ]
            grid.styles.grid_size_columns = min(CHART_COLUMNS, len(charts))
            grid.mount_all(charts)
        charts = list(grid.query(ScatterChart))
        charts[0].set_layers(objective_layers(sweep), "trial", ticks=trial_ticks(len(sweep.trials)))
        for chart, key in zip(charts[1:], sweep.params, strict=True):
            points = sweep.param_points(key)
            log_x = wide_positive(points.xs)
            if points.categorical:
                ticks: Ticks | None = Ticks(
                    tuple(map(float, range(len(points.categories)))), points.categories
                )
            else:
                ticks = decade_ticks(points.xs) if log_x else whole_ticks(points.xs)
            chart.set_layers(
                param_layers(points, sweep.best),
                param_labels(sweep.params)[key],
                ticks=ticks,
                log_x=log_x,
            )

    def _show_table(self, sweep: SweepTrials) -> None:
        key = (sweep.params, sweep.trials, id(self.app.theme_variables))
        if key == self._table_key:
            return  # nothing changed: keep the table (and its cursor) as it is
        self._table_key = key
        table = self.query_one("#trials", DataTable)
        labels = param_labels(sweep.params)
        columns = ["#", "run", "status", *(labels[k] for k in sweep.params)]
        columns.append(f"{sweep.objective.metric} {sweep.objective.arrow}")
        current = self.current_run_id()
        if [str(c.label) for c in table.columns.values()] != columns:
            table.clear(columns=True)
            for label in columns:
                table.add_column(safe_text(label))
        table.clear()
        best = sweep.best
        variables = self.app.theme_variables
        for trial in sweep.trials:
            table.add_row(*self._cells(trial, trial is best, sweep.params, variables))
        self.trial_ids = [trial.run_id for trial in sweep.trials]
        if current in self.trial_ids:
            table.move_cursor(row=self.trial_ids.index(current), animate=False)

    def _cells(
        self, trial: Trial, best: bool, params: tuple[str, ...], variables: dict[str, str]
    ) -> list[Any]:
        style = "bold" if best else ""
        number = Text(f"{BEST_MARKER} {trial.number}" if best else f"  {trial.number}", style)
        if trial.pruned:
            status = Text(f"{PRUNED_MARKER} pruned", style=f"bold {variables.get('secondary', '')}")
        else:
            status = status_cell(trial.status, variables)
        values = [
            safe_text(value_text(trial.values[key]) if key in trial.values else "", style)
            for key in params
        ]
        objective = "" if trial.objective is None else format_number(trial.objective)
        return [number, safe_text(trial.run_id, style), status, *values, Text(objective, style)]

    # --- actions ------------------------------------------------------------------------

    def current_run_id(self) -> str | None:
        """The run of the trial under the cursor."""
        row = self.query_one("#trials", DataTable).cursor_row
        return self.trial_ids[row] if 0 <= row < len(self.trial_ids) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """A click on a selected row opens its run."""
        self.action_open_run()

    def action_open_run(self) -> None:
        """Open the run of the trial under the cursor."""
        from tuneboard.tui.screens.detail import DetailScreen

        run_id = self.current_run_id()
        if run_id is not None:
            self.app.push_screen(DetailScreen(run_id))

    def action_best(self) -> None:
        """Put the cursor on the best trial."""
        best = self.sweep.best if self.sweep is not None else None
        if best is None:
            self.notify("no trial has completed with a value of the objective yet")
            return
        self.query_one("#trials", DataTable).move_cursor(row=self.trial_ids.index(best.run_id))


def objective_layers(sweep: SweepTrials) -> list[Layer]:
    """The objective of each trial (pruned ones apart), the best so far, the best trial."""
    scored = [t for t in sweep.trials if t.objective is not None and not t.pruned]
    pruned = [t for t in sweep.trials if t.objective is not None and t.pruned]
    line = step_points([t.number for t in sweep.trials], sweep.best_so_far())
    layers = [
        Layer("", tuple(x for x, _ in line), tuple(y for _, y in line), "braille", line=True),
        _layer(scored, TRIAL_MARKER),
        _layer(pruned, PRUNED_MARKER, PRUNED_COLOR),
    ]
    if sweep.best is not None:
        layers.append(_layer([sweep.best], BEST_MARKER, BEST_COLOR))
    return layers


def param_layers(points: ParamPoints, best: Trial | None) -> list[Layer]:
    """A parameter's trials against the objective: pruned ones apart, the best marked."""
    plain = [i for i, t in enumerate(points.trials) if not t.pruned]
    pruned = [i for i, t in enumerate(points.trials) if t.pruned]
    chosen = [i for i, t in enumerate(points.trials) if t is best]

    def pick(indexes: list[int], marker: str, color: str | None = None) -> Layer:
        xs = tuple(points.xs[i] for i in indexes)
        return Layer("", xs, tuple(points.ys[i] for i in indexes), marker, color)

    return [
        pick(plain, TRIAL_MARKER),
        pick(pruned, PRUNED_MARKER, PRUNED_COLOR),
        pick(chosen, BEST_MARKER, BEST_COLOR),
    ]


def step_points(xs: list[int], ys: list[float | None]) -> list[tuple[float, float]]:
    """The points of a step line through `ys` (None: no value yet): each new value starts at
    its own x, level with the previous one until then."""
    points: list[tuple[float, float]] = []
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            continue
        if points and points[-1][1] != y:
            points.append((float(x), points[-1][1]))
        points.append((float(x), y))
    return points


def trial_ticks(count: int, most: int = 8) -> Ticks:
    """Whole trial numbers along the x axis, at most `most` of them."""
    step = max(1, math.ceil(count / most))
    numbers = range(1, count + 1, step)
    return Ticks(tuple(float(n) for n in numbers), tuple(str(n) for n in numbers))


def decade_ticks(xs: tuple[float, ...]) -> Ticks | None:
    """Powers of ten (`1e-4`) within the values, for a log axis; None when fewer than two."""
    low = math.ceil(math.log10(min(xs)) - 1e-9)
    high = math.floor(math.log10(max(xs)) + 1e-9)
    if high - low < 1:
        return None
    powers = range(low, high + 1)
    return Ticks(tuple(10.0**k for k in powers), tuple(f"1e{k}" for k in powers))


def whole_ticks(xs: tuple[float, ...]) -> Ticks | None:
    """Round whole numbers along the axis of a parameter whose values are all whole (epochs,
    batch sizes: `1 2 3 4 5 6`, not `1.0 2.2 3.5 4.8 6.0`); None for other values, or when
    plotext's own ticks fall on whole numbers already."""
    if not xs or not all(math.isfinite(x) and float(x).is_integer() for x in xs):
        return None
    numbers = step_ticks(min(xs), max(xs))
    if numbers is None:
        return None
    return Ticks(tuple(float(n) for n in numbers), tuple(str(n) for n in numbers))


def wide_positive(xs: tuple[float, ...]) -> bool:
    """Whether positive numbers span enough orders of magnitude for a log axis."""
    if not xs or min(xs) <= 0:
        return False
    return max(xs) / min(xs) >= LOG_RATIO and all(math.isfinite(x) for x in xs)


def _layer(trials: list[Trial], marker: str, color: str | None = None) -> Layer:
    xs = tuple(float(t.number) for t in trials)
    ys = tuple(float(t.objective) for t in trials if t.objective is not None)
    return Layer("", xs, ys, marker, color)
