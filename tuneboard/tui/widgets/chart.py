"""A live chart of several metric series, drawn with plotext."""

from __future__ import annotations

from collections.abc import Mapping

from textual_plotext import PlotextPlot

from tuneboard.store import Series

# A different marker per series, so lines differ by shape as well as by colour.
MARKERS = ("braille", "x", "o", "+", "*", "#")


class MetricChart(PlotextPlot):
    """One chart (a metric family or one metric of several runs); redraws only on change."""

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
        self._signature: object = None

    @property
    def points(self) -> int:
        """How many points the chart shows, over all its series."""
        return sum(len(series.xs) for series in self.series.values())

    def set_series(self, series: Mapping[str, Series], xlabel: str = "step") -> bool:
        """Show these series; returns False (and does nothing) when nothing changed."""
        signature = (
            xlabel,
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
        self.replot()
        return True

    def replot(self) -> None:
        """Draw the current series afresh."""
        plt = self.plt
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        for index, (name, points) in enumerate(self.series.items()):
            if not points.xs:
                continue
            marker = MARKERS[index % len(MARKERS)]
            if len(points.xs) == 1:
                plt.scatter(points.xs, points.ys, label=name, marker=marker)
            else:
                plt.plot(points.xs, points.ys, label=name, marker=marker)
        self.refresh()
