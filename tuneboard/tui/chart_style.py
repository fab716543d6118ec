"""How a chart tells its series apart: pure functions, no Textual.

Every series is a braille line (the finest a terminal draws); series differ by colour. A
sparse series (validation points among training steps) also gets a marker at each of its
points, so its few values read as points rather than as a line made up between them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Distinct plotext colours, brightest first; red is kept for the best-checkpoint marks.
COLORS = (
    "blue+",
    "green+",
    "orange+",
    "cyan+",
    "magenta+",
    "yellow",
    "blue",
    "green",
    "orange",
    "cyan",
    "magenta",
    "gray+",
)
# Once every colour is used, later series are drawn with these markers instead of braille
# dots, so no two of up to 48 series look the same.
LINE_MARKERS = ("braille", "·", "+", "x")
POINT_MARKER = "•"
SINGLE_MARKER = "●"
# A series with at most this share of the chart's columns per point gets markers.
SPARSE_COLUMNS = 4


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: its line's marker and colour, and the marker of its
    points (empty: no point markers)."""

    line: str
    color: str
    points: str = ""


def series_style(index: int, points: int, width: int) -> SeriesStyle:
    """The style of the `index`th series of a chart `width` columns wide, with `points` points.

    A lone point is a dot (a braille dot is too small to see); a series with no more than one
    point per `SPARSE_COLUMNS` columns has a marker on each point.
    """
    color = COLORS[index % len(COLORS)]
    line = LINE_MARKERS[(index // len(COLORS)) % len(LINE_MARKERS)]
    if points == 1:
        return SeriesStyle("", color, SINGLE_MARKER)
    sparse = points * SPARSE_COLUMNS <= max(width, 0)
    return SeriesStyle(line, color, POINT_MARKER if sparse and line == "braille" else "")
