"""Saved views of the Runs screen: a filter, a sort and a column set, as SQL over `runs`.

They live in `views.toml` in the project folder (beside `tuneboard.toml`, so they are
shared with the project), one table per view:

    [views.failed-tiny]
    where = "status = 'failed' AND experiment = 'tiny'"   # optional: all runs
    order_by = "started_at DESC"                          # optional: the screen's sort
    columns = ["status", "run", "experiment", "headline"] # optional: every column

A view shows the runs of `SELECT run_id FROM runs WHERE (where) ORDER BY order_by`, run as
user SQL (read-only, through the same guard as the SQL screen's queries). Reading the file
checks each view; a bad one is left out with a one-line error naming the file and the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuneboard.sdk.errors import QueryError, TuneboardError

VIEWS_FILE = "views.toml"
KEYS = ("where", "order_by", "columns")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEADER = (
    "# Saved views of the Runs screen (`w` lists them, `W` saves one): SQL over the runs table.\n"
    "# See docs/app.md#saved-views. Saving a view again from the app rewrites this file.\n"
)


@dataclass(frozen=True)
class View:
    """A named filter (`where`), order (`order_by`) and column set over the `runs` table."""

    name: str
    where: str = ""
    order_by: str = ""
    columns: tuple[str, ...] = ()  # empty: every column

    def sql(self) -> str:
        """The query whose `run_id`s, in order, are the runs the view shows."""
        sql = "SELECT run_id FROM runs"
        # Own lines: a `--` comment in a part cannot swallow the rest.
        if self.where.strip():
            sql += f"\nWHERE (\n{self.where}\n)"
        if self.order_by.strip():
            sql += f"\nORDER BY\n{self.order_by}\n"
        return sql


def check_name(name: str) -> str:
    """`name` if it can name a view (letters, digits, `-`, `_`); else raise TuneboardError."""
    if not _NAME.match(name):
        raise TuneboardError(
            f"a view's name is letters, digits, '-' and '_' (at most 64), got {name!r}"
        )
    return name


def _check_sql(where: str, order_by: str) -> str | None:
    """Which key's SQL is refused and why, or None (parsing only: names are checked on use)."""
    import duckdb  # not at import: the app's first paint must not wait for it

    from tuneboard.store.sql import check_read_only

    parts = (("where", View("x", where=where)), ("order_by", View("x", order_by=order_by)))
    for key, view in parts:
        if not getattr(view, key).strip():
            continue
        try:
            check_read_only(view.sql())
        except QueryError as error:
            return f"key {key!r}: {error}"
        if len(duckdb.extract_statements(view.sql())) != 1:
            return f"key {key!r}: one SQL expression, not several statements"
    return None


def parse_view(name: str, table: object, columns: Iterable[str]) -> View:
    """A view from its TOML table; raises TuneboardError naming the key at fault."""
    known = tuple(columns)
    where = f"[views.{name}]"
    if not isinstance(table, dict):
        raise TuneboardError(f"{where}: a view is a table with keys {', '.join(KEYS)}")
    if not _NAME.match(name):
        raise TuneboardError(f"{where}: a view's name is letters, digits, '-' and '_'")
    for key in table:
        if key not in KEYS:
            raise TuneboardError(f"{where}: unknown key {key!r}; known: {', '.join(KEYS)}")
    values = {}
    for key in ("where", "order_by"):
        value = table.get(key, "")
        if not isinstance(value, str):
            raise TuneboardError(f"{where}: key {key!r} must be a string of SQL")
        values[key] = value
    shown = table.get("columns", [])
    if not isinstance(shown, list) or not all(isinstance(c, str) for c in shown):
        raise TuneboardError(f"{where}: key 'columns' must be a list of column names")
    unknown = [c for c in shown if c not in known]
    if unknown:
        raise TuneboardError(
            f"{where}: key 'columns': unknown column {unknown[0]!r}; known: {', '.join(known)}"
        )
    problem = _check_sql(values["where"], values["order_by"])
    if problem:
        raise TuneboardError(f"{where}: {problem}")
    return View(name, values["where"], values["order_by"], tuple(dict.fromkeys(shown)))


def read_views(path: Path, columns: Iterable[str]) -> tuple[dict[str, View], list[str]]:
    """The file's good views by name, and a one-line error for each bad one (or the file)."""
    known = tuple(columns)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as error:
        return {}, [f"{path.name}: cannot read it: {error}"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return {}, [f"{path.name}: {error}"]
    tables = data.get("views", {})
    extra = [key for key in data if key != "views"]
    errors = [f"{path.name}: unknown key {key!r}; views go in [views.NAME]" for key in extra]
    if not isinstance(tables, dict):
        return {}, [*errors, f"{path.name}: 'views' must be a table of [views.NAME] tables"]
    views = {}
    for name, table in tables.items():
        try:
            views[name] = parse_view(name, table, known)
        except TuneboardError as error:
            errors.append(f"{path.name}: {error}")
    return views, errors


def _toml_value(value: object) -> str:
    """A TOML value for what a views file holds (strings, lists of them, numbers, booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        # A JSON string is a TOML basic string (the same escapes), on one line.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TuneboardError(f"cannot write {value!r} back; edit {VIEWS_FILE} by hand")


def _block(name: str, table: Mapping[str, object]) -> str:
    lines = [f"[views.{name}]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _table(view: View) -> dict[str, object]:
    """The view's TOML table, without the keys it leaves at their default."""
    table: dict[str, object] = {}
    if view.where:
        table["where"] = view.where
    if view.order_by:
        table["order_by"] = view.order_by
    if view.columns:
        table["columns"] = list(view.columns)
    return table


def save_view(path: Path, view: View, columns: Iterable[str]) -> None:
    """Save `view` in the file: appended when its name is new (the file stays as written),
    else the file is written afresh with the other views' tables as they were.

    Refuses (TuneboardError) when the file cannot be read as TOML: saving would lose it.
    """
    check_name(view.name)
    parse_view(view.name, _table(view), tuple(columns))
    text = ""
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise TuneboardError(f"{path.name}: {error}; fix it before saving a view") from None
        tables = data.get("views", {})
        if not isinstance(tables, dict):
            raise TuneboardError(f"{path.name}: 'views' must be a table; fix it before saving")
    else:
        tables = {}
    block = _block(view.name, _table(view))
    if view.name not in tables:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else _HEADER + "\n") + block
    else:
        tables = {**tables, view.name: _table(view)}
        blocks = [_block(name, table) for name, table in tables.items() if isinstance(table, dict)]
        text = "\n".join([_HEADER, *blocks])
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def sql_string(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# The text filter matches these (lower-cased), as the Runs screen's filter does.
TEXT_MATCH = (
    "contains(lower(concat_ws(' ', run_id, experiment, status, device, error, "
    "(SELECT max(s.name) FROM stages s WHERE s.run_id = runs.run_id "
    "AND s.status = 'running'))), {text})"
)


def filter_sql(text: str, status: str | None, experiment: str | None) -> str:
    """The Runs screen's filters as a WHERE expression over `runs` ("" when none is set)."""
    parts = []
    if status:
        parts.append(f"status = {sql_string(status)}")
    if experiment:
        parts.append(f"experiment = {sql_string(experiment)}")
    if text.strip():
        parts.append(TEXT_MATCH.format(text=sql_string(text.strip().lower())))
    return " AND ".join(parts)


def combine(*wheres: str) -> str:
    """The AND of the non-empty WHERE expressions, each in brackets when there are several."""
    present = [w.strip() for w in wheres if w.strip()]
    if len(present) == 1:
        return present[0]
    return " AND ".join(f"({w})" for w in present)
