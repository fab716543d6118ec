"""A query result drawn as a chart: pick the x and y columns; a text first column draws bars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Select

from tuneboard.store import QueryResult, Series
from tuneboard.tui.screens.sql import numeric_columns
from tuneboard.tui.widgets.chart import MetricChart
from tuneboard.ui.safe import safe_text, visible

# Bars beyond these many rows would not fit a label each.
MAX_BARS = 40


@dataclass(frozen=True)
class Bars:
    """One bar per row: its category (shown), its value, and how many rows were left out
    (past `MAX_BARS`, or with no number to draw)."""

    labels: list[str]
    values: list[float]
    left_out: int


def category_column(result: QueryResult, numeric: list[str]) -> str | None:
    """The first column when it is not numeric (names, statuses, days): the result's
    categories, drawn as bars."""
    if not result.columns or result.columns[0] in numeric:
        return None
    return result.columns[0]


def bars(result: QueryResult, category: str, value: str, limit: int = MAX_BARS) -> Bars:
    """A bar per row of `value` labelled by `category`, for the first `limit` rows that
    have a number; a missing category reads `NULL`."""
    ci, vi = result.columns.index(category), result.columns.index(value)
    labels: list[str] = []
    values: list[float] = []
    for row in result.rows:
        if len(values) < limit and _finite(row[vi]):
            labels.append("NULL" if row[ci] is None else visible(str(row[ci])))
            values.append(float(row[vi]))
    return Bars(labels, values, len(result.rows) - len(values))


class ResultChartScreen(ModalScreen[None]):
    """y against x for the rows of a result (rows whose x or y is not a number are skipped);
    bars of y by category when the first column is text."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, result: QueryResult) -> None:
        super().__init__()
        self.result = result
        self.numeric = numeric_columns(result)
        self.category = category_column(result, self.numeric)

    def compose(self) -> ComposeResult:
        """Column pickers above the chart."""
        ys = self.numeric
        xs = [c for c in self.result.columns if c in ys]
        x_default = self.category or (xs[0] if len(xs) > 1 else None)
        y_default = next((c for c in ys if c != x_default), ys[0])
        options: list[tuple[str | Text, str]] = [
            ("(row number)", ""),
            *((safe_text(c), c) for c in xs),
        ]
        if self.category is not None:
            options.insert(0, (safe_text(f"{self.category} (bars)"), self.category))
        with Vertical(classes="dialog chart-dialog"):
            with Horizontal(classes="field"):
                yield Label("x ", classes="field-name")
                yield Select(
                    options,
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
        chart = self.query_one("#result-chart", MetricChart)
        if x and x == self.category:
            drawn = bars(self.result, str(x), str(y))
            chart.title = f"{y} by {x}"
            if drawn.left_out:
                chart.title += f" ({drawn.left_out} of {len(self.result.rows)} rows left out)"
            positions = [float(i) for i in range(len(drawn.values))]
            chart.set_series({str(y): Series(positions, drawn.values)}, str(x), bars=drawn.labels)
            return
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
        chart.title = f"{y} by {x or 'row'}"
        chart.set_series({str(y): Series(xs, ys)}, str(x or "row"))


def _finite(value: object) -> bool:
    """A number the chart can draw (not NaN or infinite, which plotext cannot place)."""
    return isinstance(value, int | float) and math.isfinite(value)
