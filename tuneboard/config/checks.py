"""Checks shared by the tables of a `tuneboard.toml`: tables, names and plain values."""

from __future__ import annotations

import datetime
import math
from typing import Any

from tuneboard.plugins import NAME_PATTERN
from tuneboard.sdk.errors import ConfigError


def check_table(value: Any, where: str, example: str) -> dict[str, Any]:
    """`value` if it is a table; ConfigError at `where` showing an `example` otherwise."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table ({example}), got {value!r}")
    return value


def check_name(name: Any, where: str, what: str) -> str:
    """`name` if it may name a folder; ConfigError at `where` about `what` otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: {what} may use only letters, digits, '_', '.' and '-' and must start "
            f"with a letter, digit or '_' (they name folders), got {name!r}"
        )
    return name


def check_plain(value: Any, where: str, path: str) -> None:
    """Refuse the TOML values that JSON can't store or that make no sense as settings."""
    if isinstance(value, datetime.date | datetime.time):
        raise ConfigError(f"{where}: key {path!r}: dates and times are not supported; quote it")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: key {path!r}: {value!r} is not a valid value (not finite)")
    if isinstance(value, dict):
        for key, item in value.items():
            check_plain(item, where, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_plain(item, where, f"{path}.{index}")
