"""User SQL: the read-only guard, row limits, and cancellation from another thread."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.sdk.errors import QueryError
from tuneboard.store import Store, check_read_only, run_query, start_query

READS = [
    "SELECT * FROM runs",
    "select 1; select 2",
    "WITH x AS (SELECT run_id FROM runs) SELECT * FROM x",
    "DESCRIBE runs",
    "SHOW TABLES",
    "SUMMARIZE metrics",
    "FROM runs",
    "EXPLAIN SELECT * FROM metrics",
    "EXPLAIN ANALYZE SELECT count(*) FROM metrics",
    "-- a comment\nSELECT 1",
]

WRITES = [
    ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT"),
    ("UPDATE runs SET status = 'failed'", "UPDATE"),
    ("DELETE FROM runs", "DELETE"),
    ("DROP TABLE runs", "DROP"),
    ("CREATE TABLE t (a INTEGER)", "CREATE"),
    ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
    ("COPY runs TO '/tmp/runs.csv'", "COPY"),
    ("INSTALL httpfs", "LOAD"),
    ("LOAD httpfs", "LOAD"),
    ("SET threads = 1", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL pragma_version()", "CALL"),
    ("EXPORT DATABASE '/tmp/export'", "EXPORT"),
    ("EXPLAIN ANALYZE DELETE FROM runs", "EXPLAIN of DELETE"),
    ("CHECKPOINT", "CALL"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "tuneboard.duckdb", flush_interval=0.05)
    store.create_run("r1", "exp", {"lr": 0.1}, status="running")
    for step in range(50):
        store.log_metrics("r1", 0, step, {"loss": 1.0 / (step + 1)})
    store.flush()
    yield store
    store.close()


@pytest.mark.parametrize("sql", READS)
def test_reads_are_accepted(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize(("sql", "kind"), WRITES)
def test_writes_are_refused(sql: str, kind: str) -> None:
    with pytest.raises(
        QueryError, match=f"^only read statements are allowed; statement 1 is {kind}$"
    ):
        check_read_only(sql)


def test_a_write_hidden_after_a_read_is_refused(store: Store) -> None:
    with pytest.raises(QueryError, match="statement 2 is DELETE"):
        run_query(store, "SELECT 1; DELETE FROM runs")
    assert run_query(store, "SELECT count(*) FROM runs").rows == [(1,)]


def test_parse_errors_are_one_line() -> None:
    with pytest.raises(QueryError) as caught:
        check_read_only("SELEC 1")
    assert "\n" not in str(caught.value)
    assert "syntax error" in str(caught.value)


def test_files_cannot_be_read(store: Store) -> None:
    with pytest.raises(QueryError) as caught:
        run_query(store, "SELECT * FROM read_csv('/etc/passwd')")
    assert "\n" not in str(caught.value)


def test_result_columns_types_and_rows(store: Store) -> None:
    result = run_query(store, "SELECT run_id, status, created_at, 1.5 AS x FROM runs")
    assert result.columns == ["run_id", "status", "created_at", "x"]
    assert result.types[0] == "VARCHAR"
    assert result.types[2] == "TIMESTAMP WITH TIME ZONE"
    assert result.rows[0][:2] == ("r1", "running")
    assert not result.truncated
    assert result.elapsed >= 0


def test_truncation(store: Store) -> None:
    result = run_query(store, "SELECT * FROM metrics ORDER BY step", limit=10)
    assert len(result.rows) == 10
    assert result.truncated
    assert [row[2] for row in result.rows] == list(range(10))
    exact = run_query(store, "SELECT * FROM metrics", limit=50)
    assert len(exact.rows) == 50
    assert not exact.truncated


def test_runtime_errors_are_query_errors(store: Store) -> None:
    with pytest.raises(QueryError, match="no_such_table"):
        run_query(store, "SELECT * FROM no_such_table")


def test_cancel_a_long_query(store: Store) -> None:
    job = start_query(
        store,
        "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range < b.range",
    )
    time.sleep(0.3)
    assert not job.done
    started = time.monotonic()
    threading.Thread(target=job.cancel).start()
    with pytest.raises(QueryError, match="cancelled"):
        job.result(timeout=10)
    assert time.monotonic() - started < 2
    # The store is still usable, and lets go of the file afterwards.
    assert run_query(store, "SELECT count(*) FROM metrics").rows == [(50,)]
    assert not store.database.is_open


def test_cancel_before_start(store: Store) -> None:
    job = start_query(store, "SELECT 1")
    job.cancel()
    try:
        result = job.result(timeout=5)
    except QueryError as error:
        assert "cancelled" in str(error)
    else:
        assert result.rows == [(1,)]


EXIT_WITH_A_QUERY_RUNNING = """
import sys
import time
from pathlib import Path
from tuneboard.store import Store, start_query

job = start_query(
    Store(Path(sys.argv[1])),
    "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range < b.range",
)
while job._cursor is None and not job.done:  # until DuckDB runs it
    time.sleep(0.01)
if sys.argv[2] == "cancel":
    job.cancel()  # the query thread comes back from DuckDB while Python exits
print("exiting")
"""


@pytest.mark.parametrize("how", ["cancel", "leave"])
def test_python_exits_cleanly_with_a_query_running(tmp_path: Path, how: str) -> None:
    """A query still running (or just cancelled) when the process ends: an exit, not SIGABRT."""
    script = [sys.executable, "-c", EXIT_WITH_A_QUERY_RUNNING, str(tmp_path / "db.duckdb"), how]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "exiting"), done.stderr
