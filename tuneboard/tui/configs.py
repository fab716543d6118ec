"""Run configs as flat `dotted.key -> value` tables, their differences, and TOML literals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuneboard.ui.render import toml_literal

__all__ = ["config_differences", "flatten_config", "split_values", "toml_literal"]

MISSING = "—"


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"stages": [{"lr": 1}]}` -> `{"stages.0.lr": 1}`; lists of plain values stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{path}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                flat.update(flatten_config(item, f"{path}.{index}."))
        else:
            flat[path] = value
    return flat


def config_differences(configs: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """The keys whose values differ between configs, each with one shown value per config.

    A key missing from a config shows as `—`; keys come in the order they first appear.
    """
    flats = [flatten_config(config) for config in configs]
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    differences = []
    for key in keys:
        values = [flat.get(key, _Missing) for flat in flats]
        if any(value != values[0] for value in values[1:]):
            differences.append((key, [_show(value) for value in values]))
    return differences


class _Missing:
    pass


def _show(value: Any) -> str:
    if value is _Missing:
        return MISSING
    return toml_literal(value)


def split_values(text: str) -> list[str]:
    """Comma-separated values, where commas inside brackets, braces or quotes don't split."""
    values: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return [value for value in values if value]
