"""Querying several projects' databases together: attached read-only by tuneboard, never by SQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import CliRunner
from tuneboard.sdk.errors import QueryError, TuneboardError
from tuneboard.store import Store, run_query, start_query
from tuneboard.store.attach import default_alias, parse_attachments


def project_db(folder: Path, runs: dict[str, float]) -> Path:
    """A database in `folder/.tuneboard/` with one completed run per id (headline value)."""
    path = folder / ".tuneboard" / "tuneboard.duckdb"
    with Store(path) as store:
        for run_id, value in runs.items():
            store.create_run(run_id, "tiny", {"lr": value}, headline="test/accuracy")
            store.log_metrics(run_id, 0, 1, {"test/accuracy": value})
            store.set_headline_value(run_id, value)
            store.set_run_status(run_id, "completed")
    return path


@pytest.fixture
def here(tmp_path: Path) -> Store:
    """This project's store (read-only, as `tuneboard sql` opens it)."""
    return Store(project_db(tmp_path / "here", {"h1": 0.7, "h2": 0.8}), read_only=True)


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    """Another project's database file, copied from another machine."""
    return project_db(tmp_path / "laptop", {"l1": 0.9})


def test_a_query_joins_two_projects(here: Store, laptop: Path) -> None:
    result = run_query(
        here,
        "SELECT 'here' AS project, run_id, headline_value FROM runs"
        " UNION ALL SELECT 'laptop', run_id, headline_value FROM laptop.runs"
        " ORDER BY headline_value DESC",
        attach={"laptop": laptop},
    )
    assert result.rows == [("laptop", "l1", 0.9), ("here", "h2", 0.8), ("here", "h1", 0.7)]
    joined = run_query(
        here,
        "SELECT m.name, count(*) FROM laptop.metrics m JOIN laptop.runs r USING (run_id)"
        " GROUP BY ALL",
        attach={"laptop": laptop},
    )
    assert joined.rows == [("test/accuracy", 1)]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM laptop.runs",
        "UPDATE laptop.runs SET status = 'failed'",
        "INSERT INTO runs SELECT * FROM laptop.runs",
        "CREATE TABLE laptop.x AS SELECT 1",
        "ATTACH '{other}' AS again",
        "DETACH laptop",
        "COPY laptop.runs TO '{out}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SELECT * FROM read_csv('{other}')",
        "SELECT * FROM read_parquet('{out}')",
    ],
)
def test_writes_and_file_access_are_still_refused(
    here: Store, laptop: Path, tmp_path: Path, sql: str
) -> None:
    out = tmp_path / "leak.parquet"
    with pytest.raises(QueryError):
        run_query(here, sql.format(other=laptop, out=out), attach={"laptop": laptop})
    assert not out.exists()
    rows = run_query(here, "SELECT run_id, status FROM laptop.runs", attach={"laptop": laptop})
    assert rows.rows == [("l1", "completed")]
    assert len(run_query(here, "SELECT * FROM runs").rows) == 2


def test_attachments_last_one_query(here: Store, laptop: Path) -> None:
    run_query(here, "SELECT 1", attach={"laptop": laptop})
    later = run_query(
        here, "SELECT count(*) FROM duckdb_databases() WHERE database_name = 'laptop'"
    )
    assert later.rows == [(0,)]
    with pytest.raises(QueryError, match="laptop"):
        run_query(here, "SELECT * FROM laptop.runs")


def test_an_attach_waits_for_a_connection_opened_without_it(here: Store, laptop: Path) -> None:
    # This thread holds the connection, opened without the attachment: the query must wait
    # for it to close and reopen with the file attached, not fail or see the wrong catalogs.
    opened = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with here.database.cursor():
            opened.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    opened.wait(30)
    opens = here.database.opens
    job = start_query(here, "SELECT count(*) FROM laptop.runs", attach={"laptop": laptop})
    release.set()
    holder.join()
    assert job.result(timeout=30).rows == [(1,)]
    assert here.database.opens == opens + 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.duckdb", "no such file"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: _write(tmp / "notes.duckdb", "just text"), "not a DuckDB database file"),
    ],
)
def test_a_bad_file_is_named(here: Store, tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(QueryError) as error:
        run_query(here, "SELECT 1", attach={"other": path})
    assert f"cannot attach {path}" in str(error.value) and message in str(error.value)


def test_aliases_that_cannot_be_used(here: Store, laptop: Path) -> None:
    with pytest.raises(QueryError, match="name of this database"):
        run_query(here, "SELECT 1", attach={"tuneboard": laptop})
    with pytest.raises(QueryError, match="plain name"):
        run_query(here, "SELECT 1", attach={"system": laptop})
    with pytest.raises(QueryError, match="this database itself"):
        run_query(here, "SELECT 1", attach={"me": here.path})


def test_attachment_specs(tmp_path: Path) -> None:
    assert default_alias(Path("/x/laptop-2/.tuneboard/tuneboard.duckdb")) == "laptop_2"
    assert default_alias(Path("old runs.duckdb")) == "old_runs"
    assert default_alias(Path("2024.duckdb")) == "db_2024"
    specs = parse_attachments(["a=/data/x.duckdb", "~/y.duckdb"])
    assert specs == {"a": Path("/data/x.duckdb"), "y": Path("~/y.duckdb").expanduser()}
    with pytest.raises(TuneboardError, match="ALIAS=PATH"):
        parse_attachments(["one/runs.duckdb", "two/Runs.duckdb"])


def test_cli_sql_attach(tmp_path: Path, here: Store, laptop: Path, cli: CliRunner) -> None:
    project = tmp_path / "here"
    (project / "tuneboard.toml").write_text("[project]\n")
    done = cli(
        "sql",
        "--format",
        "csv",
        "--attach",
        str(laptop),
        "--attach",
        f"again={laptop}",
        "SELECT r.run_id, a.run_id FROM laptop.runs r JOIN again.runs a USING (run_id)",
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["run_id,run_id", "l1,l1"]
    missing = tmp_path / "nowhere.duckdb"
    refused = cli("sql", "--attach", str(missing), "SELECT 1", cwd=project)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: cannot attach {missing}: no such file"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
