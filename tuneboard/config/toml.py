"""TOML in: reading a `tuneboard.toml`, and one value, with errors that say where.

`read_toml` names the file and, for a syntax error, the line and column; `parse_value` reads
the VALUE of a `--set KEY=VALUE` option as TOML, falling back to the plain text.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path
from typing import Any

from tuneboard.sdk.errors import ConfigError


def read_toml(file: Path) -> dict[str, Any]:
    """The document in `file`; ConfigError naming the file (and line) when it can't be read."""
    label = file.name
    try:
        return tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_error(label, exc)) from None
    except RecursionError:
        raise ConfigError(f"{label}: values are nested too deeply") from None


def _syntax_error(label: str, exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    found = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", text)
    if found:
        return f"{label}: line {found[2]}, column {found[3]}: {found[1]}"
    found = re.fullmatch(r"(?s)(.*) \(at end of document\)", text)
    if found:
        return f"{label}: at the end of the file: {found[1]}"
    return f"{label}: {text}"


def parse_value(literal: str) -> Any:
    """`literal` as a TOML value; the text itself when it is not one, or holds a date."""
    try:
        document = tomllib.loads(f"v = {literal}")
    except (ValueError, RecursionError):
        return literal
    value = document.get("v")
    if set(document) != {"v"} or _has_temporal(value):
        return literal
    return value


def _has_temporal(value: Any) -> bool:
    if isinstance(value, datetime.date | datetime.time):
        return True
    if isinstance(value, dict):
        return any(_has_temporal(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_temporal(item) for item in value)
    return False
