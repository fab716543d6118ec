"""Formatting shared by the CLI and the app: durations, numbers, statuses, tables as text."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import IO, Any

# Status -> (symbol, colour). The symbol carries the meaning, the colour only helps.
STATUS_STYLES: dict[str, tuple[str, str]] = {
    "queued": ("…", "yellow"),
    "running": ("▶", "cyan"),
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("■", "magenta"),
    "cancelling": ("□", "magenta"),  # the app, until the store records the run cancelled
    "interrupted": ("!", "red"),
}

OUTPUT_FORMATS = ("table", "csv", "json")


def status_text(status: str) -> str:
    """A status with its symbol, e.g. `✓ completed`."""
    symbol, _ = STATUS_STYLES.get(status, ("?", "white"))
    return f"{symbol} {status}"


def format_duration(seconds: float | None) -> str:
    """`42.1s`, `3m 05s`, `2h 10m`; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(epoch: float | None) -> str:
    """An epoch timestamp as local `YYYY-MM-DD HH:MM:SS`; empty for None."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(epoch: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 in UTC, for CSV and JSON output."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def elapsed(start: float | None, end: float | None) -> float | None:
    """Seconds between two epoch timestamps, or None when one is missing."""
    if start is None or end is None:
        return None
    return end - start


def format_number(value: Any) -> str:
    """Numbers to 4 significant digits for floats; other values as text; None empty.

    Total: every value a query can return gives a string (see `tuneboard.ui.safe`).
    """
    from tuneboard.ui.safe import format_value

    return format_value(value)


def toml_literal(value: Any) -> str:
    """A value written as TOML (what `--set KEY=VALUE` reads back), e.g. `["a", "b"]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {toml_literal(v)}" for k, v in value.items())
        return "{" + (f" {items} " if items else "") + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if value is None:
        return ""
    return json.dumps(str(value))


def _key(key: Any) -> str:
    text = str(key)
    if text and all(c.isalnum() or c in "_-" for c in text):
        return text
    return json.dumps(text)


def clip(text: str, width: int) -> str:
    """`text` on one line, cut to `width` terminal cells with an ellipsis when longer.

    Line breaks show as ``⏎`` and other runs of white space as one space.
    """
    from rich.text import Text  # lazily: rich costs start-up time

    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    flat = Text(" ⏎ ".join(line for line in lines if line))
    flat.truncate(max(width, 1), overflow="ellipsis")
    return flat.plain


def json_default(value: Any) -> Any:
    """`json.dumps` fallback for dates and other non-JSON values."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float | str):
        return value
    return str(value)


def write_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, stream: IO[str]
) -> None:
    """Write rows as CSV or JSON (a list of objects) for scripts."""
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                [
                    "" if v is None else json_default(v) if isinstance(v, datetime) else v
                    for v in row
                ]
            )
    elif fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        json.dump(records, stream, default=json_default, indent=2)
        stream.write("\n")
    else:
        raise ValueError(f"unknown format {fmt!r}")


# Columns a user copies (a run's id) or reads at a glance (its status): never cut nor wrapped,
# whatever the width; the other columns wrap to give them room.
WHOLE_COLUMNS = frozenset({"run_id", "run", "status", "parent_run_id", "child_run_id"})


def rich_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    whole: Collection[str] = WHOLE_COLUMNS,
) -> Any:
    """A `rich.table.Table` of the rows (imported lazily: rich costs start-up time).

    Title, headers and cells are user data: plain text with control characters escaped,
    never read as markup. The columns named in `whole` (run ids and statuses by default)
    are never cut nor wrapped, in a narrow terminal or a pipe (80 columns): the others wrap,
    a long word folded, to make room.
    """
    from rich.table import Table

    from tuneboard.ui.safe import cell_text, safe_text

    table = Table(
        title=None if title is None else safe_text(title),
        title_justify="left",
        header_style="bold",
    )
    cells = [[safe_text(cell_text(v)) for v in row] for row in rows]
    for index, column in enumerate(columns):
        header = safe_text(column)
        if column in whole:
            width = max([header.cell_len, *(row[index].cell_len for row in cells)])
            table.add_column(header, no_wrap=True, min_width=width)
        else:
            table.add_column(header, overflow="fold", min_width=1)
    for row in cells:
        table.add_row(*row)
    return table
