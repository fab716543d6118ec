"""A live chart of several metric series, drawn with plotext."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tuneboard.store import Series
from tuneboard.ui.safe import visible

# A different marker per series, so lines differ by shape as well as by colour.
MARKERS = ("braille", "x", "o", "+", "*", "#")
BEST_MARKER = "◆"
SINGLE_MARKER = "●"


@dataclass(frozen=True)
class Boundary:
    """A vertical line where something starts (a stage), labelled at the top of the chart."""

    x: float
    label: str


@dataclass(frozen=True)
class Mark:
    """A point drawn over the series (a stage's best checkpoint), with a short label."""

    x: float
    y: float
    label: str


@dataclass(frozen=True)
class ChartMarks:
    """What a chart draws besides its series: stage boundaries and marked points."""

    boundaries: tuple[Boundary, ...] = ()
    points: tuple[Mark, ...] = ()


NO_MARKS = ChartMarks()


class MetricChart(PlotextPlot):
    """One chart (a metric family or one metric of several runs); redraws only on change.

    New series are only kept by `set_series`; the figure is built when Textual renders the
    widget, and reused while the data, the size and the theme stay the same. So a chart
    that is not on screen (another tab) is not built however often its data changes, and
    a chart whose data did not change is not built again when Textual redraws it.
    """

    DEFAULT_CSS = """
    MetricChart {
        height: 12;
        min-height: 8;
        width: 1fr;
    }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.series: dict[str, Series] = {}
        self.xlabel = "step"
        self.marks = NO_MARKS
        self._signature: object = None
        self._version = 0
        self._drawn: tuple[object, RenderResult] | None = None

    @property
    def points(self) -> int:
        """How many points the chart shows, over all its series."""
        return sum(len(series.xs) for series in self.series.values())

    def set_series(
        self, series: Mapping[str, Series], xlabel: str = "step", marks: ChartMarks = NO_MARKS
    ) -> bool:
        """Show these series (and marks); returns False (and does nothing) when nothing
        changed."""
        signature = (
            xlabel,
            marks,
            tuple(
                (name, len(s.xs), s.xs[-1] if s.xs else None, s.ys[-1] if s.ys else None)
                for name, s in series.items()
            ),
        )
        if signature == self._signature:
            return False
        self._signature = signature
        self.series = dict(series)
        self.xlabel = xlabel
        self.marks = marks
        self.replot()
        return True

    def replot(self) -> None:
        """Draw the current series afresh (when next rendered; the chart's size is unchanged)."""
        self._version += 1
        self.refresh()

    def render(self) -> RenderResult:
        """The figure of the current series at the current size, built again only when the
        series, the size or the theme changed."""
        key = (self._version, self.size, self.app.theme, self.theme)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        self._plot_series()
        figure = super().render()
        self._drawn = (key, figure)
        return figure

    def _plot_series(self) -> None:
        plt = self.plt
        plt.clear_figure()
        # Metric and run names are user data: plotext output is read back as ANSI codes.
        plt.title(visible(self.title))
        plt.xlabel(visible(self.xlabel))
        for index, (name, points) in enumerate(self.series.items()):
            if not points.xs:
                continue
            marker = MARKERS[index % len(MARKERS)]
            if len(points.xs) == 1:
                # A lone point (a test metric, a one-step baseline): a braille dot is too small.
                marker = SINGLE_MARKER if marker == "braille" else marker
                plt.scatter(points.xs, points.ys, label=visible(name), marker=marker)
            else:
                plt.plot(points.xs, points.ys, label=visible(name), marker=marker)
        xs = {x for points in self.series.values() for x in points.xs}
        xs.update(boundary.x for boundary in self.marks.boundaries)
        if len(xs) == 1:
            # Every point at one x: plotext would draw an axis from x-1 to x+1 with ticks at
            # made-up values (-1 .. 1 for step 0); one tick, at the points.
            (x,) = xs
            plt.xlim(x - 1, x + 1)
            plt.xticks([x])
        self._plot_marks()

    def _plot_marks(self) -> None:
        """Stage boundaries as labelled vertical lines, marked points over the series."""
        ys = [y for points in self.series.values() for y in points.ys if y == y]  # not NaN
        if not ys:
            return
        plt = self.plt
        top = max(ys)
        xs = [x for points in self.series.values() for x in points.xs]
        xs += [boundary.x for boundary in self.marks.boundaries]
        middle = (min(xs) + max(xs)) / 2
        for boundary in self.marks.boundaries:
            plt.vline(boundary.x, color="gray")
            # Labels in the right half end at their line, so the chart's edge does not cut them.
            side: Literal["left", "right"] = "right" if boundary.x > middle else "left"
            plt.text(visible(boundary.label), boundary.x, top, color="gray", alignment=side)
        for mark in self.marks.points:
            plt.scatter([mark.x], [mark.y], marker=BEST_MARKER, color="red+")
            if mark.label:
                plt.text(visible(mark.label), mark.x, mark.y, color="red+", alignment="right")
