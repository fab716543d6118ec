"""Other projects' databases for a query: `[ALIAS=]PATH` specs turned into aliases and paths.

The files are attached read-only by `Database.cursor(attach=...)`, never by user SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tuneboard.sdk.errors import TuneboardError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]+")
_DEFAULT_FOLDER = ".tuneboard"
_DEFAULT_STEM = "tuneboard"


def default_alias(path: Path) -> str:
    """The alias of a file attached without one: its name without the extension.

    A project's database keeps the default name (`PROJECT/.tuneboard/tuneboard.duckdb`), so
    such a file is named after its project folder instead. Characters other than letters,
    digits and `_` become `_`; a name starting with a digit gets a `db_` prefix.
    """
    stem = path.stem
    if stem == _DEFAULT_STEM and path.parent.name == _DEFAULT_FOLDER and path.parent.parent.name:
        stem = path.parent.parent.name
    alias = _NOT_IDENTIFIER.sub("_", stem).strip("_") or "db"
    return alias if not alias[0].isdigit() else f"db_{alias}"


def parse_attachment(spec: str) -> tuple[str, Path]:
    """`ALIAS=PATH` or `PATH` as `(alias, path)`; the path is expanded, not yet checked."""
    alias, sep, rest = spec.partition("=")
    if sep and _IDENTIFIER.fullmatch(alias) and rest and not Path(spec).expanduser().exists():
        return alias, Path(rest).expanduser()
    if not spec.strip():
        raise TuneboardError("--attach needs a path: [ALIAS=]PATH")
    path = Path(spec).expanduser()
    return default_alias(path), path


def parse_attachments(specs: Iterable[str]) -> dict[str, Path]:
    """Aliases and paths of several specs; two specs may not share an alias."""
    attached: dict[str, Path] = {}
    for spec in specs:
        alias, path = parse_attachment(spec)
        taken = {name.lower(): name for name in attached}  # SQL names ignore case
        if alias.lower() in taken:
            raise TuneboardError(
                f"both {attached[taken[alias.lower()]]} and {path} would be attached as "
                f"{alias!r}; name one with ALIAS=PATH"
            )
        attached[alias] = path
    return attached
