"""The SQL screen's memory: past queries and named saved queries, as private JSON files.

Queries can reveal what a user looks at, so both files are readable by their owner only.
A missing or damaged file reads as empty; it never stops the app.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

HISTORY_FILE = "sql_history.json"
SAVED_FILE = "saved_queries.json"


def write_private(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` (mode 0600), atomically: a crash leaves the old file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, ensure_ascii=False)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class QueryHistory:
    """Past queries, newest first, without repeats, at most `limit` of them."""

    def __init__(self, folder: Path, *, limit: int = 200) -> None:
        self.path = folder / HISTORY_FILE
        self.limit = limit

    def entries(self) -> list[str]:
        """The remembered queries, newest first."""
        data = _read(self.path)
        if not isinstance(data, list):
            return []
        return [item["sql"] for item in data if isinstance(item, dict) and "sql" in item]

    def add(self, sql: str) -> None:
        """Remember `sql` as the newest query (moving it up if it was there already)."""
        sql = sql.strip()
        if not sql:
            return
        data = _read(self.path)
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
        items = [item for item in items if item.get("sql") != sql]
        items.insert(0, {"sql": sql, "at": time.time()})
        write_private(self.path, items[: self.limit])


class SavedQueries:
    """Queries saved under a name by the user."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / SAVED_FILE

    def entries(self) -> dict[str, str]:
        """Name -> query, in the order they were saved."""
        data = _read(self.path)
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, str)}

    def save(self, name: str, sql: str) -> None:
        """Save `sql` under `name`, replacing a query of the same name."""
        entries = self.entries()
        entries.pop(name, None)
        entries[name] = sql
        write_private(self.path, entries)

    def delete(self, name: str) -> None:
        """Forget the query saved under `name`."""
        entries = self.entries()
        if entries.pop(name, None) is not None:
            write_private(self.path, entries)
