"""Reading data files as text, with errors that name the file and the line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tuneboard import DataError


def read_text(path: Path, encoding: str) -> str:
    """The file decoded with `encoding` (a leading BOM dropped); DataError with the bad line."""
    data = path.read_bytes()
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not valid {encoding} ({exc.reason})") from None
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}") from None


def jsonl_objects(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line's JSON object with its line number; DataError naming the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object")
        yield number, value


def delimited_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Each record of a delimited file with a header row, keyed by the header, with the line
    it starts on (a quoted field may span lines); DataError naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file")
        start = reader.line_num + 1
        for record in reader:
            if record:
                if len(record) > len(header):
                    raise DataError(
                        f"{path}: line {start}: {len(record)} fields but the header has "
                        f"{len(header)}"
                    )
                yield start, dict(zip(header, record, strict=False))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: {exc}") from None


def check_columns(path: Path, line: int, row: Mapping[str, Any], columns: Iterable[str]) -> None:
    """DataError naming the line and the columns missing from `row`, if any."""
    missing = [column for column in columns if column not in row]
    if missing:
        have = ", ".join(str(c) for c in row) or "none"
        raise DataError(
            f"{path}: line {line}: no column {', '.join(missing)} (columns found: {have})"
        )


def text_cell(path: Path, line: int, row: Mapping[str, Any], column: str, what: str) -> str:
    """The text in `row[column]`; DataError naming the line when it is absent or not text."""
    value = row.get(column)
    if value is None:
        raise DataError(f"{path}: line {line}: no value in {what} column {column!r}")
    if not isinstance(value, str):
        raise DataError(
            f"{path}: line {line}: {what} column {column!r} must be text, got {value!r}"
        )
    return value
