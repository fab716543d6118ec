"""Table cells for runs: status with symbol and word, progress bars, durations, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.text import Text

from tuneboard.ui.render import elapsed, format_duration, format_number, status_text
from tuneboard.ui.safe import cell_text, safe_text

if TYPE_CHECKING:
    from tuneboard.store import RunRow

# Status -> theme variable. Theme colours stay readable in light and dark themes; the
# symbol and word from `status_text` carry the meaning on their own.
STATUS_VARIABLES: dict[str, str] = {
    "queued": "warning",
    "running": "accent",
    "completed": "success",
    "failed": "error",
    "cancelled": "secondary",
    "cancelling": "secondary",
    "interrupted": "error",
}

BAR_WIDTH = 8


def is_active(status: str) -> bool:
    """True for a queued or running run."""
    # Imported here: the store (duckdb, pyarrow) loads after the app's first paint.
    from tuneboard.store import ACTIVE_STATUSES

    return status in ACTIVE_STATUSES


def status_cell(status: str, variables: Mapping[str, str]) -> Text:
    """`✓ completed`, coloured with the theme's colour for the status."""
    colour = variables.get(STATUS_VARIABLES.get(status, "foreground"), "")
    return safe_text(status_text(status), f"bold {colour}".strip())


def progress_bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """`████░░░░  50%` for a fraction between 0 and 1; empty for None."""
    if fraction is None:
        return ""
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    return f"{'█' * filled}{'░' * (width - filled)} {100 * fraction:3.0f}%"


def duration_of(run: RunRow, now: float) -> float | None:
    """Seconds the run took, or has been running so far."""
    end = run.finished_at if run.finished_at is not None else (now if run.started_at else None)
    return elapsed(run.started_at, end)


def duration_cell(run: RunRow, now: float) -> str:
    """The duration as text (`42.1s`, `3m 05s`)."""
    return format_duration(duration_of(run, now))


def headline_cell(run: RunRow) -> str:
    """`test/accuracy 0.8125`, or empty before the run has a headline value."""
    if run.headline_value is None:
        return ""
    return f"{run.headline or 'value'} {format_number(run.headline_value)}"


def plain(value: object) -> Text:
    """A value as text that is never read as markup (user data can hold `[` and `]`), with
    control characters escaped: one cell of any type a query returns."""
    return safe_text(cell_text(value))
