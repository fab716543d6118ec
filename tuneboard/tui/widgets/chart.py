"""A live chart of several metric series, drawn with plotext."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tuneboard.store import Series
from tuneboard.tui.chart_style import series_style
from tuneboard.ui.safe import visible

BEST_MARKER = "◆"
BOUNDARY_COLOR = "gray"
# The fewest cells of a shortened label; boundaries fewer columns apart than a label that
# short (and an edge column each side) share one label.
MIN_LABEL = 6
LABEL_GAP = MIN_LABEL + 2
# The top edge of a plotext frame (boundaries' columns drawn as ┬): where labels are written.
_TOP_FRAME = re.compile(r"^( *)┌([─┬]*)┐ *$")


@dataclass(frozen=True)
class Boundary:
    """A vertical line where something starts (a stage), labelled on the chart's top edge.

    `note` follows the label when there is room (what the stage starts from)."""

    x: float
    label: str
    note: str = ""


@dataclass(frozen=True)
class Mark:
    """A point drawn over the series (a stage's best checkpoint); marks of one `label` share
    one entry of the legend."""

    x: float
    y: float
    label: str


@dataclass(frozen=True)
class ChartMarks:
    """What a chart draws besides its series: stage boundaries and marked points."""

    boundaries: tuple[Boundary, ...] = ()
    points: tuple[Mark, ...] = ()


NO_MARKS = ChartMarks()


def column_of(x: float, lo: float, hi: float, width: int) -> int:
    """The canvas column plotext draws `x` in, on an x axis from `lo` to `hi` `width` columns
    wide (its own rounding, so labels land on their lines)."""
    if hi <= lo or width <= 1:
        return 0
    return math.floor(round(0.5 + (width - 1) * (x - lo) / (hi - lo), 8))


def step_ticks(lo: float, hi: float, count: int = 5) -> list[int] | None:
    """Whole-number x ticks for an axis of whole numbers (steps) from `lo` to `hi`, at a round
    interval (1, 2 or 5 times a power of ten) near a `count`-th of the span; None when
    plotext's own `count` evenly spaced ticks already fall on whole numbers (`0 30 60 90 120`),
    so that `1 10.8 20.5 30.2 40` reads `10 20 30 40` instead."""
    if hi <= lo or all(float((hi - lo) * i / (count - 1)).is_integer() for i in range(count)):
        return None
    raw = (hi - lo) / (count - 1)
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    rounds = [m * power for m in (1, 2, 5, 10) if m * power >= 1]
    step = int(min(rounds, key=lambda r: abs(math.log(r / raw))))
    first = math.ceil(lo / step) * step
    return list(range(first, math.floor(hi) + 1, step))


def _candidates(labels: list[str], note: str) -> list[str]:
    """A merged boundary's texts, longest first: with its note, with the note squeezed, bare."""
    name = "+".join(labels)
    texts = [f"{name} {note}", name + note.replace(" ", "")] if note else []
    texts.append(name)
    if len(labels) > 1:
        texts.append(f"{labels[0]}+…")
    return texts


def _shortened(text: str, room: int) -> str:
    """`text` cut to `room` cells with an ellipsis, or "" when too little of it would show."""
    if cell_len(text) <= room:
        return text
    if room < MIN_LABEL:
        return ""
    return set_cell_size(text, room - 1) + "…"


def place_labels(
    boundaries: Sequence[Boundary], lo: float, hi: float, width: int
) -> list[tuple[int, str]]:
    """Where the boundaries' labels go on a top edge `width` columns wide: (first column, text).

    Boundaries too close for a label between them (stages that take no room) share one
    label, their names joined by `+`, with the first one's note. A label starts just right
    of its line; the last one, with no room there (the run's end), ends just left of it. One
    that does not fit drops its note, then is shortened, or is left out when too little of
    it would show.
    """
    groups: list[tuple[int, list[str], str]] = []
    for boundary in sorted(boundaries, key=lambda b: b.x):
        column = column_of(boundary.x, lo, hi, width)
        if groups and column - groups[-1][0] < LABEL_GAP:
            groups[-1][1].append(visible(boundary.label))
            continue
        groups.append((column, [visible(boundary.label)], visible(boundary.note)))
    placed: list[tuple[int, str]] = []
    used = 0  # the first free column: labels keep one column of edge between them
    for number, (column, labels, note) in enumerate(groups):
        last = number + 1 == len(groups)
        start = column + 1 if column > 0 else 0
        right = (width if last else groups[number + 1][0] - 1) - start
        # Only the last label may end at its line: nothing lies right of the run's end, but
        # a label left of a line in the middle would read as the previous stage's.
        left = column - used if last else 0
        spot = _spot(_candidates(labels, note), start, right, column, left)
        if spot is not None:
            placed.append(spot)
            used = spot[0] + cell_len(spot[1]) + 1
        else:
            used = max(used, column + 1)
    return placed


def _spot(
    texts: list[str], start: int, right: int, column: int, left: int
) -> tuple[int, str] | None:
    """The longest of `texts` right of the line (`right` cells from `start`), else left of
    it (`left` cells before `column`), else the first shortened to the larger room."""
    for text in texts:
        if cell_len(text) <= right:
            return start, text
    for text in texts:
        if cell_len(text) <= left:
            return column - cell_len(text), text
    text = _shortened(texts[-1].removesuffix("+…"), max(right, left))
    if not text:
        return None
    return (start, text) if right >= left else (column - cell_len(text), text)


def label_top_edge(figure: Text, boundaries: Sequence[Boundary], lo: float, hi: float) -> Text:
    """The figure with the boundaries' labels written into the top edge of its frame (a row
    the series never use, so labels hide no point), on an x axis from `lo` to `hi`."""
    lines = figure.split("\n", allow_blank=True)
    found = [i for i, line in enumerate(lines) if _TOP_FRAME.match(line.plain)]
    if not found or not boundaries:
        return figure
    row = found[-1]
    match = _TOP_FRAME.match(lines[row].plain)
    assert match is not None
    start, width = len(match.group(1)) + 1, len(match.group(2))
    line = lines[row]
    for column, text in place_labels(boundaries, lo, hi, width):
        first = start + column
        last = first + cell_len(text)
        label = line[first:last]  # the edge's own colours, then bold
        label.plain = text
        label.stylize("bold")
        line = line[:first] + label + line[last:]
    lines[row] = line
    return Text("\n").join(lines)


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
        self.labels: dict[str, str] = {}
        self.bars: list[str] = []
        self.xlabel = "step"
        self.marks = NO_MARKS
        self._signature: object = None
        self._version = 0
        self._drawn: tuple[object, RenderResult] | None = None
        self._xlim: tuple[float, float] | None = None

    @property
    def points(self) -> int:
        """How many points the chart shows, over all its series."""
        return sum(len(series.xs) for series in self.series.values())

    def set_series(
        self,
        series: Mapping[str, Series],
        xlabel: str = "step",
        marks: ChartMarks = NO_MARKS,
        labels: Mapping[str, str] | None = None,
        bars: Sequence[str] = (),
    ) -> bool:
        """Show these series (and marks); returns False (and does nothing) when nothing
        changed. `labels` names series in the legend (by default, by their keys). With
        `bars`, the first series is drawn as bars, one per label (its points' y)."""
        signature = (
            xlabel,
            marks,
            tuple(sorted((labels or {}).items())),
            tuple(bars),
            tuple(
                (name, len(s.xs), s.xs[-1] if s.xs else None, s.ys[-1] if s.ys else None)
                for name, s in series.items()
            ),
        )
        if signature == self._signature:
            return False
        self._signature = signature
        self.series = dict(series)
        self.labels = dict(labels or {})
        self.bars = list(bars)
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
        if self._xlim is not None and isinstance(figure, Text):
            figure = label_top_edge(figure, self.marks.boundaries, *self._xlim)
        self._drawn = (key, figure)
        return figure

    def _plot_series(self) -> None:
        plt = self.plt
        plt.clear_figure()
        # Metric and run names are user data: plotext output is read back as ANSI codes.
        plt.title(visible(self.title))
        plt.xlabel(visible(self.xlabel))
        if self.bars and self.series:
            self._xlim = None
            values = next(iter(self.series.values())).ys
            # Horizontal bars keep long labels whole; plotext stacks them bottom up, so the
            # rows go in reversed to read in the result's order, top down.
            plt.bar(
                self.bars[::-1],
                values[::-1],
                orientation="horizontal",
                width=0.6,
                color=series_style(0, 2, 0).color,
            )
            plt.xlabel(visible(next(iter(self.series))))
            return
        span = self._x_span()
        if span is None:
            self._xlim = None
            return
        lo, hi = span
        if lo == hi:
            # Every point at one x: plotext would draw an axis from x-1 to x+1 with ticks at
            # made-up values (-1 .. 1 for step 0); one tick, at the points.
            plt.xticks([lo])
            lo, hi = lo - 1, hi + 1
        elif (ticks := self._step_ticks(lo, hi)) is not None:
            plt.xticks([float(tick) for tick in ticks], [str(tick) for tick in ticks])
        self._xlim = (lo, hi)
        plt.xlim(lo, hi)
        # Lines first: the series and marks are drawn over them. The frame is the line of a
        # boundary at either edge (stages that take no room, at the run's end).
        for boundary in self.marks.boundaries:
            if lo < boundary.x < hi:
                plt.vline(boundary.x, color=BOUNDARY_COLOR)
        width = self.size.width
        for index, (name, points) in enumerate(self.series.items()):
            if not points.xs:
                continue
            style = series_style(index, len(points.xs), width)
            label = visible(self.labels.get(name, name))
            if style.line:
                plt.plot(points.xs, points.ys, label=label, marker=style.line, color=style.color)
                label = ""
            if style.points:
                plt.scatter(
                    points.xs,
                    points.ys,
                    label=label or None,
                    marker=style.points,
                    color=style.color,
                )
        labels = dict.fromkeys(mark.label for mark in self.marks.points)
        for label in labels:
            marks = [mark for mark in self.marks.points if mark.label == label]
            plt.scatter(
                [mark.x for mark in marks],
                [mark.y for mark in marks],
                marker=BEST_MARKER,
                color="red+",
                label=visible(label) or None,
            )

    def _step_ticks(self, lo: float, hi: float) -> list[int] | None:
        """`step_ticks` when every x drawn is a whole number (steps, trials), else None."""
        xs = [x for points in self.series.values() for x in points.xs]
        xs += [boundary.x for boundary in self.marks.boundaries]
        xs += [mark.x for mark in self.marks.points]
        if not all(float(x).is_integer() for x in xs):
            return None
        return step_ticks(lo, hi)

    def _x_span(self) -> tuple[float, float] | None:
        """The lowest and highest x of every point, boundary and mark; None when there is no
        point to draw."""
        xs = [x for points in self.series.values() for x in points.xs]
        if not xs:
            return None
        xs += [boundary.x for boundary in self.marks.boundaries]
        xs += [mark.x for mark in self.marks.points]
        return min(xs), max(xs)
