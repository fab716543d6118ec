"""`tuneboard export` and `tuneboard import`: a seeded project's runs into a second project."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import SAMPLES, CliRunner
from tests.tui.seed import COMPLETED_TINY, FAILED_TINY, RUNNING_TINY, seed_database
from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import RunLink, Store
from tuneboard.store.store import hash_path
from tuneboard.store.transfer import COLUMNS, TABLES, import_runs

FORMATS = ("parquet", "csv", "jsonl")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with five made-up runs (one still running), an artifact, a NaN point, and a
    run started from another's export (lineage).

    Shared by the tests of this module, which only read it.
    """
    folder = tmp_path_factory.mktemp("source") / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", folder, ignore=shutil.ignore_patterns(".tuneboard"))
    seed_database(folder)
    weights = folder / ".tuneboard" / "runs" / COMPLETED_TINY / "model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"not really weights")
    with Store(folder / ".tuneboard" / "tuneboard.duckdb") as store:
        store.add_artifact(COMPLETED_TINY, 2, "model", weights)
        store.log_metrics(COMPLETED_TINY, 0, 21, {"train/grad_norm": math.nan})
        _, digest = hash_path(weights.resolve())
        store.record_parent(
            RunLink(FAILED_TINY, COMPLETED_TINY, 2, "model", str(weights), digest, "run:2026")
        )
    return folder


@pytest.fixture(scope="module")
def exports(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`tuneboard export --all` of the source in each format, and one of two chosen runs."""
    folder = tmp_path_factory.mktemp("exports")
    made = {}
    for file_format in FORMATS:
        out = made[file_format] = folder / file_format
        done = tuneboard("export", "--all", "--format", file_format, "--out", str(out), cwd=source)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            f"exported 5 runs (13 stages, 337 metrics, 42 events, 1 artifacts, 0 generations, 0 logs, 1 run_parents) as {file_format}"
        )
    # Runs named by id and by a unique prefix.
    out = made["two"] = folder / "two"
    done = tuneboard("export", COMPLETED_TINY[:-2], FAILED_TINY, "--out", str(out), cwd=source)
    assert done.returncode == 0, done.stderr
    return made


def tuneboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS...` in a subprocess, as the `cli` fixture runs it (for module fixtures)."""
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A second, empty project."""
    folder = tmp_path / "other"
    shutil.copytree(SAMPLES / "sentiment", folder, ignore=shutil.ignore_patterns(".tuneboard"))
    return folder


def copy_of(export: Path, tmp_path: Path) -> Path:
    """A copy of an export to damage."""
    return Path(shutil.copytree(export, tmp_path / export.name))


def import_here(target: Path, export: Path) -> None:
    """Import through the API, in this process (set-up, where the CLI is not under test)."""
    with Store(target / ".tuneboard" / "tuneboard.duckdb") as store:
        import_runs(store, export)


def rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` over the project's database (opened read-only, then closed)."""
    conn = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        # Arrow, not fetchall(): DuckDB's own conversion of TIMESTAMPTZ needs pytz.
        table = conn.sql(sql).to_arrow_table()
        return [tuple(_comparable(v) for v in row.values()) for row in table.to_pylist()]
    finally:
        conn.close()


def _comparable(value: Any) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def table_rows(project: Path, table: str, where: str = "") -> list[tuple[Any, ...]]:
    columns = ", ".join(COLUMNS[table])
    return rows(project, f"SELECT {columns} FROM {table} {where} ORDER BY ALL")


def counts(project: Path) -> dict[str, int]:
    return {table: rows(project, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


@pytest.mark.parametrize("file_format", FORMATS)
def test_export_then_import_into_another_project(
    source: Path, exports: dict[str, Path], target: Path, cli: CliRunner, file_format: str
) -> None:
    out = exports[file_format]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 4 and manifest["source_project"] == "sentiment"
    assert manifest["file_format"] == file_format and len(manifest["run_ids"]) == 5
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(f"{t}.{file_format}" for t in TABLES)]
    )

    imported = cli("import", str(out), cwd=target)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(
        "imported 5 runs (13 stages, 337 metrics, 42 events, 1 artifacts, 0 generations,"
        " 0 logs, 1 run_parents)"
    )
    assert counts(target) == counts(source)
    for table in ("metrics", "events", "artifacts", "run_parents"):
        assert table_rows(target, table) == table_rows(source, table), table
    finished = f"WHERE run_id <> '{RUNNING_TINY}'"
    for table in ("runs", "stages"):
        assert table_rows(target, table, finished) == table_rows(source, table, finished), table
    # A run still running when exported can never finish here.
    [(status, error)] = rows(
        target, f"SELECT status, error FROM runs WHERE run_id = '{RUNNING_TINY}'"
    )
    assert status == "interrupted" and error == "still running when exported from 'sentiment'"
    assert rows(target, f"SELECT status FROM stages WHERE run_id = '{RUNNING_TINY}'") == [
        ("interrupted",)
    ]

    again = cli("import", str(out), cwd=target)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "imported 0 runs (0 stages, 0 metrics, 0 events, 0 artifacts, 0 generations,"
        f" 0 logs, 0 run_parents) from {out}"
        " (project 'sentiment')",
        "skipped 5 runs already here (identical)",
    ]
    assert counts(target) == counts(source)


def test_imported_runs_are_listed(exports: dict[str, Path], target: Path, cli: CliRunner) -> None:
    import_here(target, exports["two"])
    listed = cli("runs", "--format", "json", cwd=target)
    assert sorted(row["run_id"] for row in json.loads(listed.stdout)) == [
        COMPLETED_TINY,
        FAILED_TINY,
    ]


def test_conflicting_ids_keep_this_projects_version(
    exports: dict[str, Path], target: Path, cli: CliRunner
) -> None:
    out = exports["two"]
    assert json.loads((out / "manifest.json").read_text())["run_ids"] == [
        COMPLETED_TINY,
        FAILED_TINY,
    ]
    import_here(target, out)
    # The target's copy of one run changes; importing again keeps it and says so.
    with Store(target / ".tuneboard" / "tuneboard.duckdb") as store:
        store.set_headline_value(COMPLETED_TINY, 0.99)
    before = counts(target)
    again = cli("import", str(out), cwd=target)
    assert again.returncode == 0
    assert "skipped 1 runs already here (identical)" in again.stdout
    assert again.stderr.strip() == (
        "skipped 1 runs whose id is here with different data (this project's version kept): "
        + COMPLETED_TINY
    )
    assert counts(target) == before
    assert rows(target, f"SELECT headline_value FROM runs WHERE run_id = '{COMPLETED_TINY}'") == [
        (0.99,)
    ]


def corrupt_truncated_parquet(out: Path) -> str:
    data = (out / "metrics.parquet").read_bytes()
    (out / "metrics.parquet").write_bytes(data[: len(data) // 2])
    return "metrics.parquet"


def corrupt_missing_file(out: Path) -> str:
    (out / "events.parquet").unlink()
    return "events.parquet"


def corrupt_manifest(out: Path) -> str:
    (out / "manifest.json").write_text("{ not json")
    return "manifest.json"


def corrupt_row_count(out: Path) -> str:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["tables"]["stages"]["rows"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    return "stages.parquet"


@pytest.mark.parametrize(
    "corrupt",
    [corrupt_truncated_parquet, corrupt_missing_file, corrupt_manifest, corrupt_row_count],
)
def test_a_corrupt_export_is_refused_and_changes_nothing(
    exports: dict[str, Path], target: Path, tmp_path: Path, cli: CliRunner, corrupt: Any
) -> None:
    import_here(target, exports["two"])
    before = {table: table_rows(target, table) for table in TABLES}
    out = copy_of(exports["parquet"], tmp_path)
    named = corrupt(out)

    done = cli("import", str(out), cwd=target)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and named in line
    assert {table: table_rows(target, table) for table in TABLES} == before


def test_bad_csv_values_name_the_file(
    exports: dict[str, Path], target: Path, tmp_path: Path, cli: CliRunner
) -> None:
    out = copy_of(exports["csv"], tmp_path)
    stages = (out / "stages.csv").read_text().splitlines()
    stages[2] = stages[2].replace(",1,", ",one,", 1)  # the stage_index of a row
    (out / "stages.csv").write_text("\n".join(stages) + "\n")
    done = cli("import", str(out), cwd=target)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "stages.csv" in line and '"one"' in line
    assert not (target / ".tuneboard").exists()  # checked before the database was touched


def test_a_failure_inside_the_transaction_rolls_everything_back(
    exports: dict[str, Path], target: Path
) -> None:
    # A stray stage row of a run the target does not hold: the runs insert succeeds, the
    # stages insert breaks the key, and the whole import must roll back.
    with Store(target / ".tuneboard" / "tuneboard.duckdb") as store:
        store.stage_started(FAILED_TINY, 0, name="stray", plugin="finetune", params={})
    before = counts(target)
    with (
        Store(target / ".tuneboard" / "tuneboard.duckdb") as store,
        pytest.raises(TuneboardError, match="nothing was imported"),
    ):
        import_runs(store, exports["parquet"])
    assert counts(target) == before == {**dict.fromkeys(TABLES, 0), "stages": 1}


def test_export_refuses_bad_requests(source: Path, tmp_path: Path, cli: CliRunner) -> None:
    nothing = cli("export", cwd=source)
    assert nothing.returncode == 2 and "--all" in nothing.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    taken = cli("export", "nosuchrun", "--all", "--out", str(busy), cwd=source)
    assert taken.returncode == 2 and "nosuchrun" in taken.stderr
    with Store(source / ".tuneboard" / "tuneboard.duckdb", read_only=True) as store:
        from tuneboard.store.transfer import export_runs

        with pytest.raises(TuneboardError, match="not an empty folder"):
            export_runs(store, [COMPLETED_TINY], busy, "csv", source_project="sentiment")
        with pytest.raises(TuneboardError, match="unknown export format"):
            export_runs(store, [COMPLETED_TINY], tmp_path / "x", "xlsx", source_project="s")
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # no partial folder left


def test_export_columns_match_the_database_schema(source: Path) -> None:
    for table, columns in COLUMNS.items():
        schema = dict(
            rows(
                source,
                "SELECT column_name, data_type FROM information_schema.columns"
                f" WHERE table_name = '{table}'",
            )
        )
        for column, kind in columns.items():
            expected = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(kind, kind)
            assert schema[column] == expected, (table, column)
