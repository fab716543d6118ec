"""What the runs table shows at a terminal's width: pure functions, no Textual.

A wide table shows every column in full. Narrower ones shorten cells before any column
falls off the right edge: started drops its year and seconds, the headline shows its value
only, the running stage's name and bar shrink, then the status shows its symbol only and a
run its short id (the filter still matches the whole id). The stage cell has a fixed
greatest width at every size, so a running run never pushes columns off screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from tuneboard.tui.cells import STATUS_VARIABLES, duration_cell, headline_cell, progress_bar
from tuneboard.tui.legend import short_id
from tuneboard.ui.render import (
    STATUS_STYLES,
    elapsed,
    format_duration,
    format_number,
    format_time,
    status_text,
)
from tuneboard.ui.safe import safe_text
from tuneboard.ui.sweeps import short_id as sweep_short_id

if TYPE_CHECKING:
    from tuneboard.store import RunRow
    from tuneboard.ui.sweeps import SweepTrials

# A selected run's mark: unlike any status symbol (✓ is completed).
SELECTED_MARK = "●"
MEDIUM = 116  # from these many columns: status words and full run ids
WIDE = 140  # from these many columns: full headlines and start times


@dataclass(frozen=True)
class Fit:
    """How the runs table's cells are shortened at one width."""

    name: str
    status_word: bool = True
    full_id: bool = True
    headline_name: bool = True
    stage_name: int = 12  # the most cells of a running stage's name
    bar: int = 8  # the progress bar's cells; 0: the percentage only
    started: str = "%Y-%m-%d %H:%M:%S"
    headers: Mapping[str, str] | None = None

    def header(self, key: str, label: str) -> str:
        """A column's header at this fit."""
        return (self.headers or {}).get(key, label)


FITS = (
    Fit("wide"),
    Fit("medium", headline_name=False, stage_name=10, bar=5, started="%m-%d %H:%M"),
    Fit(
        "narrow",
        status_word=False,
        full_id=False,
        headline_name=False,
        stage_name=8,
        bar=0,
        started="%m-%d %H:%M",
        headers={"status": "", "run": "id", "headline": "value", "duration": "time"},
    ),
)


def fit_for(width: int) -> Fit:
    """The fit of a table `width` columns wide."""
    if width >= WIDE:
        return FITS[0]
    return FITS[1] if width >= MEDIUM else FITS[2]


def stage_text(run: RunRow, fit: Fit) -> str:
    """The running stage, cut to the fit's width, and its progress; empty unless running."""
    if run.status != "running":
        return ""
    stage = run.current_stage or "starting"
    if cell_len(stage) > fit.stage_name:
        stage = set_cell_size(stage, fit.stage_name - 1) + "…"
    if run.progress is None:
        return stage
    if fit.bar:
        return f"{stage} {progress_bar(run.progress, fit.bar)}"
    return f"{stage} {100 * max(0.0, min(1.0, run.progress)):.0f}%"


def selection_cell(selected: bool) -> Text:
    """The mark of a selected run (blank when not selected)."""
    return Text(SELECTED_MARK if selected else " ", style="bold")


def status_of(status: str, variables: Mapping[str, str], fit: Fit) -> Text:
    """`✓ completed`, or the symbol alone in a narrow table, in the status's colour."""
    colour = variables.get(STATUS_VARIABLES.get(status, "foreground"), "")
    text = status_text(status) if fit.status_word else STATUS_STYLES.get(status, "?")[0]
    return safe_text(text, f"bold {colour}".strip())


def row_cells(
    run: RunRow,
    now: float,
    variables: Mapping[str, str],
    selected: bool,
    fit: Fit,
    prefix: str = "",
) -> tuple[Any, ...]:
    """The cells of a run in the runs table's column order, shortened to `fit`; `prefix`
    (dim) goes before the id (a run's place under an open sweep)."""
    if fit.headline_name:
        headline = headline_cell(run)
    else:
        headline = "" if run.headline_value is None else format_number(run.headline_value)
    if fit.started.startswith("%Y"):
        started = format_time(run.started_at)
    else:
        started = "" if run.started_at is None else _strftime(run.started_at, fit.started)
    return (
        selection_cell(selected),
        status_of(run.status, variables, fit),
        Text.assemble(
            (prefix, "dim"), safe_text(run.run_id if fit.full_id else short_id(run.run_id))
        ),
        safe_text(run.experiment),
        safe_text(stage_text(run, fit)),
        safe_text(headline),
        Text(duration_cell(run, now)),
        Text(started),
        safe_text(run.device or ""),
    )


def sweep_cells(
    sweep: SweepTrials,
    now: float,
    variables: Mapping[str, str],
    selected: int,
    expanded: bool,
    fit: Fit,
) -> tuple[Any, ...]:
    """The cells of a sweep's row (`▸ sweep 075300-a3f9  experiment  12 trials (2 pruned)
    best val/accuracy 0.91`), shortened to `fit` like a run's; `selected` of its runs are."""
    runs = [trial.run for trial in sweep.trials]
    some = Text("-", style="bold")
    mark = selection_cell(bool(selected)) if selected in (0, len(runs)) else some
    starts = [run.started_at for run in runs if run.started_at is not None]
    ends = [run.finished_at for run in runs if run.finished_at is not None]
    start = min(starts) if starts else None
    end = now if sweep.active else (max(ends) if ends else None)
    arrow = "▾" if expanded else "▸"
    best = sweep.best_text() if fit.headline_name else sweep.best_value_text()
    if fit.started.startswith("%Y"):
        started = format_time(start)
    else:
        started = "" if start is None else _strftime(start, fit.started)
    return (
        mark,
        status_of(sweep.status, variables, fit),
        Text.assemble(
            (f"{arrow} sweep ", "bold"),
            safe_text(sweep_short_id(sweep.sweep_id) if fit.full_id else short_id(sweep.sweep_id)),
        ),
        safe_text(sweep.experiment),
        safe_text(sweep.counts() if fit.status_word else f"{len(sweep.trials)} trials"),
        safe_text(best),
        Text(format_duration(elapsed(start, end))),
        Text(started),
        Text(""),
    )


def _strftime(epoch: float, pattern: str) -> str:
    return datetime.fromtimestamp(epoch).strftime(pattern)
