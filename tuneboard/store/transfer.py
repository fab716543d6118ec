"""Open data: export runs to Parquet, CSV or JSON-lines files, and import such an export.

An export is a folder with one file per table (`runs`, `stages`, `metrics`, `events`,
`artifacts`, `generations`, `logs`, `run_parents`), each written by DuckDB's `COPY` from an Arrow
table (columnar, no Python loop over rows), and a `manifest.json`: format version, tuneboard
version, source project, file format, run ids and each table's file and row count.

Importing reads and checks every file before the project's database is touched, then inserts
the runs it does not hold yet, with all their rows, in one transaction. A run whose id is
already there is never replaced: it is skipped and counted as *identical* (same `runs` row,
same number of rows in every table) or as a *conflict* (this project's version is kept).
Runs that were still queued or running when exported arrive as `interrupted`: nothing in the
importing project will ever finish them. Exports of format version 1 predate `generations`:
their runs arrive without any; those before version 3 predate `run_parents` (lineage), and
those before version 4 predate `logs`.

The files are read and written by a private in-memory DuckDB connection; the project's
database is reached only through the store's connection (short-lived, with lock back-off).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store.database import first_line
from tuneboard.store.privacy import private_files
from tuneboard.store.schema import ACTIVE_STATUSES, STATUSES

if TYPE_CHECKING:
    from tuneboard.store.store import Store

FORMAT_NAME = "tuneboard-export"
FORMAT_VERSION = 4
MANIFEST = "manifest.json"
FILE_FORMATS: dict[str, str] = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}

# The columns of each table in the current format and their types. JSON columns travel as text.
# `runs.cancel_requested` is left out: it is a request to a live process, not history.
COLUMNS: dict[str, dict[str, str]] = {
    "runs": {
        "run_id": "VARCHAR",
        "experiment": "VARCHAR",
        "status": "VARCHAR",
        "config": "JSON",
        "created_at": "TIMESTAMPTZ",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "device": "VARCHAR",
        "error": "VARCHAR",
        "headline": "VARCHAR",
        "headline_value": "DOUBLE",
        "sweep_id": "VARCHAR",
        "owner_host": "VARCHAR",
        "owner_pid": "INTEGER",
        "owner_started": "DOUBLE",
        "provenance": "JSON",
    },
    "stages": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "name": "VARCHAR",
        "plugin": "VARCHAR",
        "params": "JSON",
        "status": "VARCHAR",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "steps": "BIGINT",
        "total_steps": "BIGINT",
        "best_metric": "VARCHAR",
        "best_step": "BIGINT",
        "best_value": "DOUBLE",
    },
    "metrics": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "step": "BIGINT",
        "name": "VARCHAR",
        "value": "DOUBLE",
        "wall_time": "TIMESTAMPTZ",
    },
    "events": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "time": "TIMESTAMPTZ",
        "level": "VARCHAR",
        "message": "VARCHAR",
    },
    "artifacts": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "kind": "VARCHAR",
        "path": "VARCHAR",
        "bytes": "BIGINT",
        "sha256": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
    },
    "generations": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "step": "BIGINT",
        "split": "VARCHAR",
        "idx": "BIGINT",
        "prompt": "VARCHAR",
        "output": "VARCHAR",
        "reference": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
    },
    "logs": {
        "run_id": "VARCHAR",
        "stage_index": "INTEGER",
        "line": "BIGINT",
        "time": "TIMESTAMPTZ",
        "stream": "VARCHAR",
        "level": "VARCHAR",
        "source": "VARCHAR",
        "message": "VARCHAR",
    },
    "run_parents": {
        "run_id": "VARCHAR",
        "parent_run_id": "VARCHAR",
        "parent_stage_index": "INTEGER",
        "kind": "VARCHAR",
        "artifact_path": "VARCHAR",
        "artifact_sha256": "VARCHAR",
        "source": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
    },
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
CHILD_TABLES: tuple[str, ...] = TABLES[1:]
# Tables added after format version 1, with the version that added them: an older export has
# no file for them and imports as if the file were empty.
SINCE_VERSION: dict[str, int] = {"generations": 2, "run_parents": 3, "logs": 4}

# Rows in a stable order, so the same runs always export to the same files.
_ORDER = {
    "runs": "created_at, run_id",
    "stages": "run_id, stage_index",
    "metrics": "run_id, stage_index, step, name, wall_time",
    "events": "run_id, time, stage_index, level, message",
    "artifacts": "run_id, created_at, stage_index, path",
    "generations": "run_id, stage_index, step NULLS LAST, split, idx, created_at",
    "logs": "run_id, time, line",
    "run_parents": "run_id, created_at, parent_run_id",
}
_COPY_OPTIONS = {
    "parquet": "FORMAT parquet, COMPRESSION zstd",
    "csv": "FORMAT csv, HEADER true",
    "jsonl": "FORMAT json",
}


@dataclass(frozen=True)
class ExportResult:
    """What `export_runs` wrote: the folder, the runs, and the rows of each table."""

    folder: Path
    file_format: str
    run_ids: list[str]
    rows: dict[str, int]


@dataclass(frozen=True)
class ImportResult:
    """What `import_runs` did: runs added, runs skipped (identical or conflicting), rows added."""

    folder: Path
    source_project: str
    imported: list[str]
    identical: list[str]
    conflicting: list[str]
    rows: dict[str, int] = field(default_factory=dict)


# --- export -------------------------------------------------------------------------------


def export_runs(
    store: Store,
    run_ids: Sequence[str],
    out: Path,
    file_format: str,
    *,
    source_project: str,
) -> ExportResult:
    """Write the rows of `run_ids` (full ids) to a new folder `out` in `file_format`.

    `out` must not exist yet, or be an empty folder. The files are written to a hidden
    folder beside it first and moved into place at the end: an export that fails leaves
    nothing behind.
    """
    if file_format not in FILE_FORMATS:
        raise TuneboardError(
            f"unknown export format {file_format!r}; choose one of {', '.join(FILE_FORMATS)}"
        )
    if not run_ids:
        raise TuneboardError("there are no runs to export")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuneboardError(f"{out} already exists and is not an empty folder")
    tables = _read_runs(store, list(dict.fromkeys(run_ids)))
    exported: list[str] = tables["runs"].column("run_id").to_pylist()
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(3)}"
    try:
        with private_files():
            partial.mkdir(mode=0o700, parents=True)
            _write_tables(tables, partial, file_format)
            manifest = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "tuneboard_version": _tuneboard_version(),
                "source_project": source_project,
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "file_format": file_format,
                "run_ids": exported,
                "tables": {
                    name: {"file": name + FILE_FORMATS[file_format], "rows": table.num_rows}
                    for name, table in tables.items()
                },
            }
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            if out.exists():
                out.rmdir()
            partial.rename(out)
    except OSError as error:
        raise TuneboardError(
            f"cannot write the export to {out}: {error.strerror or error}"
        ) from None
    except duckdb.Error as error:  # a full disk while COPY writes, for instance
        raise TuneboardError(f"cannot write the export to {out}: {first_line(error)}") from None
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return ExportResult(
        folder=out,
        file_format=file_format,
        run_ids=exported,
        rows={name: table.num_rows for name, table in tables.items()},
    )


def _read_runs(store: Store, run_ids: list[str]) -> dict[str, pa.Table]:
    """Every table's rows of the runs, read in one transaction (a consistent snapshot)."""
    tables: dict[str, pa.Table] = {}
    with store.database.cursor(lock_timeout=store.lock_timeout) as cur:
        cur.begin()
        try:
            # A database last written by an older tuneboard may lack newer columns: NULL.
            present = set(
                cur.execute(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns"
                    " WHERE table_catalog = current_database() AND table_schema = 'main'"
                ).fetchall()
            )
            held = {entry.split(".")[0] for (entry,) in present}
            for name, columns in COLUMNS.items():
                select = ", ".join(
                    _export_column(column, kind, (f"{name}.{column}",) in present)
                    for column, kind in columns.items()
                )
                # ... or a newer table (a file opened read-only is not migrated): no rows.
                source = name if name in held else "(SELECT NULL::VARCHAR AS run_id LIMIT 0)"
                tables[name] = cur.sql(
                    f"SELECT {select} FROM {source} WHERE list_contains($ids, run_id)"
                    f" ORDER BY {_ORDER[name]}",
                    params={"ids": run_ids},
                ).to_arrow_table()
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.rollback()
    missing = set(run_ids) - set(tables["runs"].column("run_id").to_pylist())
    if missing:
        raise TuneboardError(f"no run {sorted(missing)[0]!r} in {store.path}")
    return tables


def _export_column(column: str, kind: str, present: bool) -> str:
    """The SELECT item of one exported column (JSON as text; NULL when the table lacks it)."""
    text = "VARCHAR" if kind == "JSON" else kind
    if not present:
        return f"NULL::{text} AS {column}"
    return f"{column}::VARCHAR AS {column}" if kind == "JSON" else column


def _write_tables(tables: Mapping[str, pa.Table], folder: Path, file_format: str) -> None:
    with _converter() as conn:
        for name, table in tables.items():
            target = folder / (name + FILE_FORMATS[file_format])
            conn.register("_tuneboard_export", table)
            try:
                conn.execute(
                    f"COPY (SELECT * FROM _tuneboard_export) TO '{_literal(target)}'"
                    f" ({_COPY_OPTIONS[file_format]})"
                )
            finally:
                conn.unregister("_tuneboard_export")


# --- import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedExport:
    """An export read into memory and checked: where from, and one Arrow table per table."""

    folder: Path
    source_project: str
    tables: dict[str, pa.Table]


def read_export(folder: Path) -> LoadedExport:
    """Read and check every file of the export in `folder`; `TuneboardError` names the file."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise TuneboardError(f"{folder}: no such folder (give the folder `tuneboard export` wrote)")
    manifest_path = folder / MANIFEST
    manifest = _read_manifest(manifest_path)
    file_format = manifest["file_format"]
    held = _tables_of(manifest["format_version"])
    files = {
        name: folder / (manifest["tables"][name]["file"] if name in held else name)
        for name in TABLES
    }
    with _converter() as conn:
        for name in TABLES:
            if name not in held:  # an older export, made before the table existed
                conn.execute(f"CREATE TABLE {name} ({_declared(COLUMNS[name])})")
                continue
            _load_table(conn, name, files[name], file_format)
            rows = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            expected = manifest["tables"][name]["rows"]
            if rows is None or rows[0] != expected:
                count = rows[0] if rows else 0
                raise TuneboardError(
                    f"{files[name]}: holds {count} rows but {MANIFEST} says {expected}"
                    " (is the export complete?)"
                )
        _check_rows(conn, files, manifest)
        _mark_unfinished(conn, manifest["source_project"])
        tables = {name: conn.sql(f"SELECT * FROM {name}").to_arrow_table() for name in TABLES}
    return LoadedExport(folder=folder, source_project=manifest["source_project"], tables=tables)


def import_runs(store: Store, export: LoadedExport | Path) -> ImportResult:
    """Add the runs of an export (a folder, or one `read_export` read) that `store` lacks.

    All in one transaction. Runs already present are skipped (see the module docstring). On
    any error nothing is imported and `TuneboardError` says why, naming the file at fault
    where there is one.
    """
    if store.read_only:
        raise TuneboardError(f"{store.path} was opened read-only; cannot import into it")
    if not isinstance(export, LoadedExport):
        export = read_export(export)
    incoming: list[str] = export.tables["runs"].column("run_id").to_pylist()
    store.flush()
    try:
        with (
            store.database.cursor(write=True, lock_timeout=store.lock_timeout) as cur,
            _registered(cur, export.tables),
        ):
            cur.begin()
            try:
                present = _present_runs(cur, incoming)
                identical = [run_id for run_id in present if _identical(cur, run_id)]
                new = [run_id for run_id in incoming if run_id not in present]
                rows = _insert(cur, new)
                cur.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.rollback()
                raise
    except duckdb.Error as error:
        raise TuneboardError(
            f"importing {export.folder} into {store.path} failed, nothing was imported:"
            f" {first_line(error)}"
        ) from None
    return ImportResult(
        folder=export.folder,
        source_project=export.source_project,
        imported=new,
        identical=identical,
        conflicting=[run_id for run_id in present if run_id not in identical],
        rows=rows,
    )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuneboardError(
            f"{path}: missing (is {path.parent} a folder written by `tuneboard export`?)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TuneboardError(f"{path}: not a readable JSON manifest ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise TuneboardError(f"{path}: not a tuneboard export manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise TuneboardError(f"{path}: 'format_version' must be a positive integer")
    if version > FORMAT_VERSION:
        raise TuneboardError(
            f"{path}: written by a newer tuneboard (export format {version}; this one reads"
            f" format {FORMAT_VERSION}); upgrade tuneboard to import it"
        )
    if manifest.get("file_format") not in FILE_FORMATS:
        raise TuneboardError(
            f"{path}: 'file_format' must be one of {', '.join(FILE_FORMATS)},"
            f" got {manifest.get('file_format')!r}"
        )
    if not isinstance(manifest.get("source_project"), str):
        raise TuneboardError(f"{path}: 'source_project' must be a string")
    run_ids = manifest.get("run_ids")
    if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
        raise TuneboardError(f"{path}: 'run_ids' must be a list of run ids")
    tables = manifest.get("tables")
    for name in _tables_of(version):
        entry = tables.get(name) if isinstance(tables, dict) else None
        if not isinstance(entry, dict):
            raise TuneboardError(f"{path}: 'tables' has no entry for table {name!r}")
        file = entry.get("file")
        if not isinstance(file, str) or not file or Path(file).name != file:
            raise TuneboardError(f"{path}: tables.{name}.file must be a file name in the folder")
        rows = entry.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise TuneboardError(f"{path}: tables.{name}.rows must be a row count")
    return manifest


def _tables_of(version: int) -> list[str]:
    """The tables an export of format `version` holds."""
    return [name for name in TABLES if SINCE_VERSION.get(name, 1) <= version]


def _declared(columns: Mapping[str, str]) -> str:
    """Column definitions for CREATE TABLE (JSON kept as text, as the converter holds it)."""
    return ", ".join(
        f"{column} {'VARCHAR' if kind == 'JSON' else kind}" for column, kind in columns.items()
    )


def _load_table(conn: duckdb.DuckDBPyConnection, name: str, file: Path, file_format: str) -> None:
    """Create table `name` in the converter from `file`, checking its columns and types."""
    columns = COLUMNS[name]
    if not file.is_file():
        raise TuneboardError(f"{file}: missing from the export")
    path = _literal(file)
    if file_format == "parquet":
        source = f"read_parquet('{path}')"
    elif file_format == "csv":
        source = (
            f"read_csv('{path}', header = true, all_varchar = true, allow_quoted_nulls = false,"
            " delim = ',', quote = '\"', escape = '\"')"
        )
    else:
        # Explicit columns: JSON lines carry names, and types must not depend on a sample.
        declared = ", ".join(
            f"'{column}': '{'VARCHAR' if kind == 'JSON' else kind}'"
            for column, kind in columns.items()
        )
        source = f"read_json('{path}', format = 'newline_delimited', columns = {{{declared}}})"
    try:
        found = [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        absent = [column for column in columns if column not in found]
        if absent:
            raise TuneboardError(
                f"{file}: no column {absent[0]!r} (table {name} needs {', '.join(columns)})"
            )
        select = ", ".join(
            # JSON is checked by parsing it, and kept as text.
            f"CAST(CAST({column} AS JSON) AS VARCHAR) AS {column}"
            if kind == "JSON"
            else f"CAST({column} AS {kind}) AS {column}"
            for column, kind in columns.items()
        )
        conn.execute(f"CREATE TABLE {name} AS SELECT {select} FROM {source}")
    except duckdb.Error as error:
        raise TuneboardError(
            f"{file}: not a readable {file_format} file of table {name} ({_reason(error)})"
        ) from None


def _check_rows(
    conn: duckdb.DuckDBPyConnection, files: Mapping[str, Path], manifest: Mapping[str, Any]
) -> None:
    """Keys present and unique, statuses known, every row's run in `runs` and the manifest."""
    runs_file = files["runs"]
    first = conn.execute(
        "SELECT run_id FROM runs GROUP BY run_id HAVING run_id IS NULL OR count(*) > 1 LIMIT 1"
    ).fetchone()
    if first is not None:
        problem = "a row without a run_id" if first[0] is None else f"run {first[0]!r} twice"
        raise TuneboardError(f"{runs_file}: holds {problem}")
    listed = set(manifest["run_ids"])
    held = {run_id for (run_id,) in conn.execute("SELECT run_id FROM runs").fetchall()}
    if held != listed:
        odd = sorted(held ^ listed)[0]
        raise TuneboardError(
            f"{runs_file}: its runs differ from those {MANIFEST} lists (run {odd!r})"
        )
    for table, column in (("runs", "status"), ("stages", "status")):
        bad = conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} IS NULL"
            f" OR NOT list_contains($known, {column}) LIMIT 1",
            {"known": sorted(STATUSES)},
        ).fetchone()
        if bad is not None:
            raise TuneboardError(f"{files[table]}: unknown {column} {bad[0]!r}")
    for table in CHILD_TABLES:
        if conn.execute(f"SELECT 1 FROM {table} WHERE run_id IS NULL LIMIT 1").fetchone():
            raise TuneboardError(f"{files[table]}: holds a row without a run_id")
        orphan = conn.execute(
            f"SELECT t.run_id FROM {table} t ANTI JOIN runs r USING (run_id) LIMIT 1"
        ).fetchone()
        if orphan is not None:
            raise TuneboardError(
                f"{files[table]}: holds rows of run {orphan[0]!r}, which {runs_file.name} does not"
            )
    twice = conn.execute(
        "SELECT run_id, stage_index FROM stages GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if twice is not None:
        raise TuneboardError(f"{files['stages']}: stage {twice[1]} of run {twice[0]!r} twice")


def _mark_unfinished(conn: duckdb.DuckDBPyConnection, source: str) -> None:
    """Runs still active when exported arrive as interrupted: nothing here will end them."""
    active = sorted(ACTIVE_STATUSES)
    conn.execute(
        "UPDATE runs SET error = coalesce(error, 'still ' || status || ' when exported from '"
        " || $source), status = 'interrupted' WHERE list_contains($active, status)",
        {"source": repr(source), "active": active},
    )
    conn.execute(
        "UPDATE stages SET status = 'interrupted' WHERE list_contains($active, status)",
        {"active": active},
    )


@contextlib.contextmanager
def _registered(cur: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    for name, table in tables.items():
        cur.register(f"_tuneboard_import_{name}", table)
    try:
        yield
    finally:
        for name in tables:
            with contextlib.suppress(duckdb.Error):
                cur.unregister(f"_tuneboard_import_{name}")


def _present_runs(cur: duckdb.DuckDBPyConnection, incoming: list[str]) -> list[str]:
    rows = cur.execute(
        "SELECT run_id FROM runs WHERE list_contains($ids, run_id) ORDER BY run_id",
        {"ids": incoming},
    ).fetchall()
    return [run_id for (run_id,) in rows]


def _identical(cur: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """True when this project's run has the same `runs` row and row counts as the export's."""
    same = " AND ".join(
        f"i.{column} IS NOT DISTINCT FROM r.{column}" + ("::VARCHAR" if kind == "JSON" else "")
        for column, kind in COLUMNS["runs"].items()
    )
    row = cur.execute(
        f"SELECT {same} FROM _tuneboard_import_runs i JOIN runs r USING (run_id)"
        " WHERE run_id = $id",
        {"id": run_id},
    ).fetchone()
    if row is None or not row[0]:
        return False
    for table in CHILD_TABLES:
        counts = cur.execute(
            f"SELECT (SELECT count(*) FROM {table} WHERE run_id = $id),"
            f" (SELECT count(*) FROM _tuneboard_import_{table} WHERE run_id = $id)",
            {"id": run_id},
        ).fetchone()
        if counts is None or counts[0] != counts[1]:
            return False
    return True


def _insert(cur: duckdb.DuckDBPyConnection, new: list[str]) -> dict[str, int]:
    """Insert the rows of the `new` runs into every table; the rows added per table."""
    rows: dict[str, int] = {}
    for table, columns in COLUMNS.items():
        names = ", ".join(columns)
        result = cur.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM _tuneboard_import_{table}"
            " WHERE list_contains($ids, run_id)",
            {"ids": new},
        ).fetchone()
        rows[table] = int(result[0]) if result else 0
    return rows


# --- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _converter() -> Iterator[duckdb.DuckDBPyConnection]:
    """A private in-memory DuckDB connection that reads and writes the export's files.

    It holds no project data of its own and runs no user SQL; UTC keeps timestamps written
    as text the same on every machine.
    """
    conn = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
        },
    )
    try:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn
    finally:
        conn.close()


def _reason(error: BaseException) -> str:
    """DuckDB's first line, with the line naming the bad value when there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines[1:] if "Could not convert" in line), None)
    return first_line(error) + (f": {detail}" if detail else "")


def _literal(path: Path) -> str:
    """`path` (absolute) for a single-quoted SQL string literal."""
    return str(path.resolve()).replace("'", "''")


def _tuneboard_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tuneboard")
    except PackageNotFoundError:
        return "unknown"
