"""Reading the project's UTF-8 text files (corrections, preferences) with errors that name the
file. Standard library only."""

from __future__ import annotations

from pathlib import Path

from tuneboard.sdk.errors import DataError


def read_utf8(path: Path) -> str:
    """The text of `path` (a leading BOM dropped); DataError naming the file when it cannot be
    read or is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid utf-8 ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or exc}") from None
