"""A small plotext chart of point layers (a sweep's trials), with categorical x ticks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tuneboard.ui.safe import visible


@dataclass(frozen=True)
class Layer:
    """Points drawn with one marker (joined by a line with `line`); a `label` puts them in a
    legend (small charts do better with none: it covers points)."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    marker: str
    color: str | None = None
    line: bool = False


@dataclass(frozen=True)
class Ticks:
    """Labelled x positions (the categories of a categorical parameter)."""

    positions: tuple[float, ...]
    labels: tuple[str, ...]


class ScatterChart(PlotextPlot):
    """Layers of points; the figure is built when rendered, again only when the layers, the
    size or the theme changed."""

    DEFAULT_CSS = """
    ScatterChart {
        height: 12;
        min-height: 8;
        width: 1fr;
    }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.point_layers: tuple[Layer, ...] = ()
        self.xlabel = ""
        self.ticks: Ticks | None = None
        self.log_x = False
        self._version = 0
        self._drawn: tuple[object, RenderResult] | None = None

    def set_layers(
        self,
        layers: Sequence[Layer],
        xlabel: str,
        *,
        ticks: Ticks | None = None,
        log_x: bool = False,
    ) -> bool:
        """Show these layers; returns False (and does nothing) when nothing changed."""
        new = (tuple(layers), xlabel, ticks, log_x)
        if new == (self.point_layers, self.xlabel, self.ticks, self.log_x):
            return False
        self.point_layers, self.xlabel, self.ticks, self.log_x = new
        self._version += 1
        self.refresh()
        return True

    def render(self) -> RenderResult:
        """The figure at the current size (built again only when something changed)."""
        key = (self._version, self.size, self.app.theme, self.theme)
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        self._draw_layers()
        figure = super().render()
        self._drawn = (key, figure)
        return figure

    def _draw_layers(self) -> None:
        plt = self.plt
        plt.clear_figure()
        # Titles, labels and categories are user data: plotext output is read back as ANSI.
        plt.title(visible(self.title))
        plt.xlabel(visible(self.xlabel))
        if self.log_x:
            plt.xscale("log")
        for layer in self.point_layers:
            if not layer.xs:
                continue
            draw = plt.plot if layer.line and len(layer.xs) > 1 else plt.scatter
            draw(
                list(layer.xs),
                list(layer.ys),
                marker=layer.marker,
                color=layer.color,
                label=visible(layer.label) if layer.label else None,
            )
        if self.ticks is not None:
            plt.xticks(list(self.ticks.positions), [visible(t) for t in self.ticks.labels])
            if len(self.ticks.positions) == 1:
                # One category: give it room on both sides rather than a zero-width axis.
                middle = self.ticks.positions[0]
                plt.xlim(middle - 1, middle + 1)
