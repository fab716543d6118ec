"""The SQL guard, round 2: a WITH clause that writes, several statements in one text, resource
bounds, and the database file's own bytes. User SQL runs on a connection that cannot write or
touch a file, whatever the statement check lets through; the check names what it refuses.

The property test builds SQL text from fragments (writes, WITH clauses, comments and strings
holding semicolons, PRAGMA / ATTACH / COPY / INSTALL / LOAD / SET / CALL / EXPORT) and checks
that after any query the database file is byte-identical and the runs table unchanged, and
still so when each statement runs on the user-SQL connection without the check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CliRunner
from tests.reliability.sql_cases import active_writer, fill, snapshot
from tuneboard.sdk.errors import QueryError
from tuneboard.store import QueryJob, Store, run_query
from tuneboard.store.database import query_memory_limit

CTE_DELETE = "WITH x AS (DELETE FROM runs RETURNING *) SELECT * FROM x"
CTE_REFUSED = (
    "only read statements are allowed; statement 1 is a SELECT with DELETE in a WITH clause"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / ".tuneboard" / "tuneboard.duckdb", flush_interval=0.05)
    fill(store)
    yield store
    store.close()


def test_a_with_clause_that_writes_is_refused_and_cannot_write_while_the_writer_works(
    store: Store,
) -> None:
    before = snapshot(store)
    with active_writer(store):
        for sql, what in (
            (CTE_DELETE, "DELETE"),
            ("WITH u AS (UPDATE runs SET status = 'x' RETURNING 1) SELECT * FROM u", "UPDATE"),
            ("FROM (WITH i AS (INSERT INTO runs SELECT * FROM runs RETURNING 1) FROM i)", "INSERT"),
            ("SELECT 1; WITH c AS (COPY runs TO 'runs.csv') SELECT 1", "COPY"),
        ):
            with pytest.raises(QueryError, match=f"^only read .*a SELECT with {what} in a WITH"):
                run_query(store, sql)
        # Past the check, the connection user SQL runs on cannot write at all.
        with store.database.query_cursor() as cur:
            for sql in (CTE_DELETE, "DELETE FROM runs", "CREATE TABLE t AS SELECT 1"):
                with pytest.raises(duckdb.Error, match="read-only"):
                    cur.execute(sql)
    assert snapshot(store) == before


def test_cli_refuses_a_with_clause_that_writes(cli: CliRunner, sentiment_project: Path) -> None:
    path = sentiment_project / ".tuneboard" / "tuneboard.duckdb"
    store = Store(path)
    fill(store)
    store.close()
    data = path.read_bytes()
    done = cli("sql", CTE_DELETE, cwd=sentiment_project)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, f"error: {CTE_REFUSED}", "")
    assert path.read_bytes() == data


def test_each_statement_runs_and_has_its_result(store: Store) -> None:
    job = QueryJob(store, "SELECT 1 AS one; SELECT 2 AS two, 'a;b' AS s -- ;\n; FROM runs")
    job.run()
    results = job.results()
    assert [(r.columns, r.rows) for r in results[:2]] == [
        (["one"], [(1,)]),
        (["two", "s"], [(2, "a;b")]),
    ]
    assert len(results[2].rows) == 2 and job.result() is results[2]
    with pytest.raises(QueryError, match=r"^statement 2: Catalog Error: .*no_such_table"):
        run_query(store, "SELECT 1; SELECT * FROM no_such_table; SELECT 3")


def test_cli_prints_each_result_in_turn(cli: CliRunner, sentiment_project: Path) -> None:
    store = Store(sentiment_project / ".tuneboard" / "tuneboard.duckdb")
    fill(store)
    store.close()
    done = cli(
        "sql", "SELECT 1 AS one; SELECT 'x;y' AS two", "--format", "json", cwd=sentiment_project
    )
    assert done.returncode == 0, done.stderr
    decoder, text, documents = json.JSONDecoder(), done.stdout.strip(), []
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    assert documents == [[{"one": 1}], [{"two": "x;y"}]]


def test_cli_timeout_stops_a_long_query(cli: CliRunner, sentiment_project: Path) -> None:
    Store(sentiment_project / ".tuneboard" / "tuneboard.duckdb").close()
    endless = "SELECT count(*) FROM range(10000000000) a, range(1000) b"
    done = cli("sql", endless, "--timeout", "0.5", cwd=sentiment_project, timeout=120)
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip() == "error: the query ran longer than 0.5 s (--timeout) and was stopped"
    )


def test_the_database_file_cannot_be_read_as_bytes(store: Store) -> None:
    db = store.path
    for sql in (
        f"SELECT content FROM read_blob('{db}')",
        f"SELECT content FROM read_text('{db}')",
        f"SELECT * FROM read_csv('{db}', header = false, all_varchar = true)",
        f"SELECT size FROM read_blob('{db.parent}/*')",
        f"SELECT * FROM read_blob('{db}.wal')",
    ):
        with pytest.raises(QueryError, match=r"^a query cannot reach files"):
            run_query(store, sql)


def test_settings_and_bounds_are_locked(store: Store) -> None:
    for sql in ("SET memory_limit = '100GB'", "SET enable_external_access = true"):
        with pytest.raises(QueryError, match=r"^only read statements are allowed; .* is SET$"):
            run_query(store, sql)
    with store.database.query_cursor() as cur:
        for sql in (
            "SET memory_limit = '100GB'",
            "SET enable_external_access = true",
            "RESET disabled_filesystems",
            "SET temp_directory = '/tmp'",
        ):
            with pytest.raises(duckdb.Error, match="locked"):
                cur.execute(sql)
        memory, temp = cur.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchall()[0]
    assert memory == f"{query_memory_limit() / 1024**3:.1f} GiB" and temp == ""


# --- a property over SQL text ----------------------------------------------------------------

STATEMENTS = [
    "SELECT * FROM runs",
    "FROM metrics SELECT name, max(value) GROUP BY name",
    "SELECT 'a;DELETE FROM runs;' AS s",
    "SELECT $$; DROP TABLE runs; $$ AS s",
    "SELECT content FROM read_blob('{db}')",
    "SELECT * FROM read_text('{db}.wal')",
    "DELETE FROM runs",
    "UPDATE runs SET status = 'failed'",
    "INSERT INTO runs SELECT * FROM runs",
    "DROP TABLE metrics",
    "CREATE TABLE t AS SELECT 1",
    "ALTER TABLE runs RENAME TO r",
    "TRUNCATE runs",
    "PRAGMA force_checkpoint",
    "PRAGMA enable_checkpoint_on_shutdown",
    "ATTACH '{db}' AS again",
    "ATTACH '{db}.copy' AS other",
    "DETACH tuneboard",
    "COPY runs TO '{db}'",
    "COPY runs FROM '{db}'",
    "COPY FROM DATABASE tuneboard TO memory",
    "INSTALL httpfs",
    "LOAD '{db}'",
    "SET enable_external_access = true",
    "SET memory_limit = '1TB'",
    "SET disabled_filesystems = ''",
    "CALL checkpoint()",
    "CHECKPOINT",
    "VACUUM runs",
    "EXPORT DATABASE '{db}.export'",
    "BEGIN TRANSACTION",
    "COMMIT",
    "ROLLBACK",
]
CTES = [
    "WITH x AS ({}) SELECT * FROM x",
    "WITH x AS (DELETE FROM runs RETURNING *) {}",
    "WITH x AS (UPDATE runs SET status = 'x' RETURNING *) SELECT * FROM x",
    "WITH x AS (INSERT INTO runs SELECT * FROM runs RETURNING *) SELECT count(*) FROM x",
    "WITH x AS (COPY runs TO '{db}') SELECT 1",
    "EXPLAIN ANALYZE WITH x AS (DELETE FROM runs RETURNING *) SELECT 1",
    "FROM (WITH x AS (DELETE FROM runs RETURNING *) SELECT * FROM x)",
]
NOISE = ["", " ", "\n", "-- ; DELETE FROM runs\n", "/* ; DROP TABLE runs; */ ", "\t"]


@st.composite
def sql_texts(draw: st.DrawFn, db: Path) -> str:
    """Statements and WITH clauses from the fragments, with comments, joined by semicolons."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        statement = draw(st.sampled_from(STATEMENTS))
        if draw(st.booleans()):
            statement = draw(st.sampled_from(CTES)).replace("{}", statement, 1)
        if "'" not in statement and "$" not in statement:
            statement = draw(st.sampled_from([str, str.lower, str.upper]))(statement)
        parts.append(draw(st.sampled_from(NOISE)) + statement + draw(st.sampled_from(NOISE)))
    text = ";".join(parts) + draw(st.sampled_from(["", ";", "; -- end"]))
    return text.replace("{db}", str(db))


def fingerprint(store: Store) -> tuple[str, list[str], list[tuple[Any, ...]]]:
    """The database file's hash, the files beside it, and the runs table."""
    digest = hashlib.sha256(store.path.read_bytes()).hexdigest()
    files = sorted(path.name for path in store.path.parent.iterdir())
    with store.database.cursor() as cur:
        runs = cur.execute("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM runs ORDER BY ALL").fetchall()
    return digest, files, runs


@pytest.fixture(scope="module")
def quiet_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(tmp_path_factory.mktemp("sql") / "tuneboard.duckdb", flush_interval=0.05)
    fill(store)
    yield store
    store.close()


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_no_query_changes_the_database(quiet_store: Store, data: st.DataObject) -> None:
    before = fingerprint(quiet_store)
    sql = data.draw(sql_texts(quiet_store.path))
    with contextlib.suppress(QueryError):
        run_query(quiet_store, sql, limit=5)
    assert fingerprint(quiet_store) == before, sql
    # And had the check let every statement through, the connection would still refuse it.
    with contextlib.suppress(duckdb.Error):
        statements = [statement.query for statement in duckdb.extract_statements(sql)]
        with quiet_store.database.query_cursor() as cur:
            for statement in statements:
                with contextlib.suppress(duckdb.Error):
                    cur.execute(statement).fetchall()
    assert fingerprint(quiet_store) == before, sql
