"""A run's log as text, the same in `tuneboard logs` and the app's Logs tab: each row's
label, its lines, and the search both use (case-insensitive text in the label or message)."""

from __future__ import annotations

from datetime import datetime

from tuneboard.store.schema import LogRow


def log_label(row: LogRow) -> str:
    """Where the row came from, in a word or two: ``stdout``, ``stderr``, a warning's
    category, a logging record's level and logger, or ``tuneboard``."""
    if row.stream == "warnings":
        return row.source or "warning"
    if row.stream == "logging":
        return f"{row.level} {row.source}".strip()
    return row.stream


def clock_time(epoch: float) -> str:
    """A row's time as local `HH:MM:SS`."""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def log_lines(row: LogRow) -> tuple[str, list[str]]:
    """The row's prefix (time, stage, label) and its message's lines (at least one)."""
    stage = "-" if row.stage_index is None else str(row.stage_index)
    prefix = f"{clock_time(row.time)} {stage:>2} {log_label(row)}"
    return prefix, row.message.splitlines() or [""]


def log_matches(row: LogRow, needle: str) -> bool:
    """Whether `needle` (case-insensitive; empty matches all) is in the row's label or message."""
    if not needle:
        return True
    needle = needle.casefold()
    return needle in row.message.casefold() or needle in log_label(row).casefold()


def is_alarming(row: LogRow) -> bool:
    """A warning, an error or a note of dropped lines: shown in bold."""
    return row.level in ("warning", "error", "critical") or row.stream == "stderr"
