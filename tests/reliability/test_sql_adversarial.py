"""User SQL, attacked: writes, file and network access, extensions, settings, multi-statement
tricks. Everything is refused with a one-line error and changes nothing, also while the
process's writer is busy (as in the app while a run trains). Queries can be cancelled;
results are limited and paginated."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CliRunner
from tests.reliability.sql_cases import ESCAPES, READS, WRITES, active_writer, fill, snapshot
from tuneboard.sdk.errors import QueryError
from tuneboard.store import Store, run_query, start_query

ATTACK_FILES = [
    Path("/tmp/tuneboard-attack.duckdb"),
    Path("/tmp/tuneboard-attack.csv"),
    Path("/tmp/tuneboard-attack.parquet"),
    Path("/tmp/tuneboard-attack-export"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / ".tuneboard" / "tuneboard.duckdb", flush_interval=0.05)
    fill(store)
    yield store
    store.close()


@pytest.fixture(params=["idle", "writing"])
def connection(request: pytest.FixtureRequest, store: Store) -> Iterator[str]:
    """Run the test with the writer idle, then (as in the app while a run trains) busy."""
    if request.param == "idle":
        yield request.param
        return
    with active_writer(store):
        yield request.param


def refusal(store: Store, sql: str) -> str | None:
    """The one-line error a query is refused with (None when it ran)."""
    try:
        run_query(store, sql)
    except QueryError as error:
        message = str(error)
        assert message and "\n" not in message, message
        return message
    return None


def test_writes_are_refused_before_anything_runs(store: Store, connection: str) -> None:
    before = snapshot(store)
    wrong = {}
    for sql in WRITES:
        # As is, hidden behind a read, after a comment and in lower case, or as a second line.
        for text in (
            sql,
            f"SELECT 1; {sql}",
            f"/* hi */ {sql.lower()} -- bye",
            f"SELECT 1;\n{sql};",
        ):
            message = refusal(store, text)
            if message is None or not message.startswith("only read statements are allowed"):
                wrong[text] = message
    assert wrong == {}
    assert snapshot(store) == before
    assert not any(path.exists() for path in ATTACK_FILES)


def test_files_network_and_extensions_are_out_of_reach(store: Store, connection: str) -> None:
    before = snapshot(store)
    messages = {sql: refusal(store, sql) for sql in ESCAPES}
    # duckdb_secrets() runs, and shows nothing: persistent secrets are not loaded.
    ran = [sql for sql, message in messages.items() if message is None]
    assert ran == ["SELECT * FROM duckdb_secrets()"]
    assert run_query(store, ran[0]).rows == []
    assert not any("root:" in str(message) for message in messages.values())  # no file leaks
    assert snapshot(store) == before


def test_reads_run_and_change_nothing(store: Store, connection: str) -> None:
    before = snapshot(store)
    for sql in READS:
        assert run_query(store, sql).rows, sql
    assert snapshot(store) == before


def test_settings_stay_locked_even_for_tuneboard_itself(store: Store) -> None:
    with store.database.cursor(write=True) as cur:
        for statement in (
            "SET enable_external_access = true",
            "SET autoinstall_known_extensions = true",
            "SET lock_configuration = false",
        ):
            with pytest.raises(duckdb.Error, match="locked"):
                cur.execute(statement)
        [(external,)] = cur.execute("SELECT current_setting('enable_external_access')").fetchall()
    assert external is False


def test_a_long_query_is_cancelled_and_the_writer_goes_on(store: Store) -> None:
    job = start_query(store, "SELECT count(*) FROM range(10000000000) a, range(1000) b")
    time.sleep(0.3)
    assert not job.done
    started = time.monotonic()
    threading.Thread(target=job.cancel).start()
    with pytest.raises(QueryError, match=r"^the query was cancelled$"):
        job.result(timeout=10)
    assert time.monotonic() - started < 3
    store.log_metrics("r1", 0, 999, {"late": 1.0})
    store.flush(timeout=10)
    assert run_query(store, "SELECT value FROM metrics WHERE name = 'late'").rows == [(1.0,)]


def test_results_are_limited_and_paginated(store: Store) -> None:
    sql = "SELECT step, name FROM metrics WHERE run_id = 'r1' ORDER BY step, name"
    everything = run_query(store, sql, limit=10_000).rows
    assert len(everything) == 60
    pages, offset = [], 0
    while True:
        page = run_query(store, sql, limit=25, offset=offset)
        pages.extend(page.rows)
        offset += 25
        if not page.truncated:
            break
    assert pages == everything and offset == 75
    assert run_query(store, sql, limit=25, offset=50).rows == everything[50:]
    assert run_query(store, sql, limit=25, offset=1000).rows == []
    huge = run_query(store, "SELECT * FROM range(1000000000000)", limit=5)
    assert huge.truncated and [row[0] for row in huge.rows] == [0, 1, 2, 3, 4]
    for limit, offset in ((-1, 0), (10, -1)):
        with pytest.raises(QueryError, match="must not be negative"):
            run_query(store, sql, limit=limit, offset=offset)


def test_cli_sql_refusals_are_one_line_and_offset_pages(
    cli: CliRunner, sentiment_project: Path
) -> None:
    store = Store(sentiment_project / ".tuneboard" / "tuneboard.duckdb")
    fill(store)
    store.close()
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        "UPDATE EXTENSIONS",
        "SELECT 1; DROP TABLE runs",
    ):
        done = cli("sql", sql, cwd=sentiment_project)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ")
    page = cli(
        "sql",
        "SELECT step FROM metrics WHERE run_id = 'r2' AND name = 'val/acc' ORDER BY step",
        "--limit",
        "5",
        "--offset",
        "10",
        "--format",
        "json",
        cwd=sentiment_project,
    )
    assert page.returncode == 0, page.stderr
    assert [row["step"] for row in json.loads(page.stdout)] == [10, 11, 12, 13, 14]
