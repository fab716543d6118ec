"""Reading data files as text, with errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path

from tuneboard.errors import DataError


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
