"""A query result drawn as a chart: pick the x and y columns."""

from __future__ import annotations

import math
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Select

from tuneboard.store import QueryResult, Series
from tuneboard.tui.screens.sql import numeric_columns
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.ui.safe import safe_text


class ResultChartScreen(ModalScreen[None]):
    """y against x for the rows of a result (rows whose x or y is not a number are skipped)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, result: QueryResult) -> None:
        super().__init__()
        self.result = result
        self.numeric = numeric_columns(result)

    def compose(self) -> ComposeResult:
        """Column pickers above the chart."""
        ys = self.numeric
        xs = [c for c in self.result.columns if c in ys]
        x_default = xs[0] if len(xs) > 1 else None
        y_default = next((c for c in ys if c != x_default), ys[0])
        with Vertical(classes="dialog chart-dialog"):
            with Horizontal(classes="field"):
                yield Label("x ", classes="field-name")
                yield Select(
                    [("(row number)", ""), *((safe_text(c), c) for c in xs)],
                    value=x_default or "",
                    allow_blank=False,
                    id="x",
                    compact=True,
                )
                yield Label("  y ", classes="field-name")
                yield Select(
                    [(safe_text(c), c) for c in ys],
                    value=y_default,
                    allow_blank=False,
                    id="y",
                    compact=True,
                )
            yield MetricChart("", id="result-chart")
            yield Label("escape closes", classes="hint")

    def on_mount(self) -> None:
        """Draw the default columns."""
        self.redraw()

    @on(Select.Changed)
    def redraw(self) -> None:
        """Draw y against x."""
        x = self.query_one("#x", Select).value
        y = self.query_one("#y", Select).value
        columns = self.result.columns
        yi = columns.index(str(y))
        xi = columns.index(str(x)) if x else None
        xs: list[float] = []
        ys: list[float] = []
        for number, row in enumerate(self.result.rows):
            xv = number if xi is None else row[xi]
            yv = row[yi]
            if _finite(xv) and _finite(yv):
                xs.append(float(xv))
                ys.append(float(yv))
        chart = self.query_one("#result-chart", MetricChart)
        chart.title = f"{y} by {x or 'row'}"
        chart.set_series({str(y): Series(xs, ys)}, str(x or "row"))


def _finite(value: object) -> bool:
    """A number the chart can draw (not NaN or infinite, which plotext cannot place)."""
    return isinstance(value, int | float) and math.isfinite(value)
