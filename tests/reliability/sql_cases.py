"""Statements for the user-SQL tests: reads that must run, writes and escapes that must not."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.reliability.conftest import wait_for
from tuneboard.sdk.tasks import Generation
from tuneboard.store import Store

BACKGROUND_RUN = "bg"

# Reads: each runs on the test database and returns rows.
READS = [
    "SELECT * FROM runs",
    "select run_id, status from runs order by run_id",
    "WITH x AS (SELECT run_id FROM runs) SELECT * FROM x",
    "FROM metrics SELECT name, max(value) GROUP BY name",
    "DESCRIBE runs",
    "SHOW TABLES",
    "SUMMARIZE metrics",
    "EXPLAIN SELECT * FROM metrics",
    "EXPLAIN ANALYZE SELECT count(*) FROM metrics",
    "-- a note\n/* and a block */ EXPLAIN SELECT count(*) FROM generations",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT 1 UNION ALL SELECT 2",
    "(SELECT count(*) FROM events)",
    "SELECT split, idx, step, output FROM generations ORDER BY ALL",
    "UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b",
    "SELECT * FROM pragma_table_info('runs')",
    "SELECT * FROM duckdb_tables()",
    "SELECT current_setting('enable_external_access') AS external",
    "-- a comment\nSELECT 1 /* and another */",
]

# Statements that change something (or try to): refused before anything runs.
WRITES = [
    "INSERT INTO runs (run_id, experiment, status, config) VALUES ('x', 'e', 'queued', '{}')",
    "INSERT OR REPLACE INTO runs SELECT * FROM runs",
    "UPDATE runs SET status = 'failed'",
    "DELETE FROM metrics",
    "UPDATE generations SET output = 'edited'",
    "TRUNCATE events",
    "WITH d AS (SELECT 1) DELETE FROM runs",
    "MERGE INTO runs USING (SELECT 1 AS x) s ON false WHEN NOT MATCHED THEN DO NOTHING",
    "DROP TABLE runs",
    "ALTER TABLE runs ADD COLUMN z INTEGER",
    "COMMENT ON TABLE runs IS 'x'",
    "CREATE TABLE t (a INTEGER)",
    "CREATE OR REPLACE TEMP TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(a) AS a",
    "CREATE SEQUENCE s",
    "CREATE INDEX i ON runs (run_id)",
    "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')",
    "ATTACH '/tmp/tuneboard-attack.duckdb' AS other",
    "ATTACH ':memory:' AS m",
    "DETACH other",
    "USE memory",
    "COPY runs TO '/tmp/tuneboard-attack.csv'",
    "COPY (SELECT * FROM metrics) TO '/tmp/tuneboard-attack.parquet' (FORMAT parquet)",
    "COPY runs FROM '/etc/passwd'",
    "COPY FROM DATABASE memory TO memory",
    "EXPORT DATABASE '/tmp/tuneboard-attack-export'",
    "IMPORT DATABASE '/tmp/tuneboard-attack-export'",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '/tmp/evil.duckdb_extension'",
    "UPDATE EXTENSIONS",
    "SET enable_external_access = true",
    "SET GLOBAL threads = 1",
    "RESET threads",
    "SET VARIABLE x = 1",
    "PRAGMA enable_profiling",
    "PRAGMA table_info('runs')",
    "CALL pragma_version()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    "BEGIN TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "PREPARE p AS DELETE FROM runs",
    "EXECUTE p",
    "DEALLOCATE p",
    "EXPLAIN ANALYZE DELETE FROM runs",
    "explain analyse update runs set status = 'x'",
    "EXPLAIN (ANALYZE true, FORMAT json) DELETE FROM runs",
    "EXPLAIN ANALYZE /* ) */ INSERT INTO runs SELECT * FROM runs",
]

# Reads in form, escapes in intent: they must fail (files, network, extensions).
ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/hostname')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('../*')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT * FROM parquet_metadata('/etc/passwd')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "SELECT * FROM read_csv('s3://bucket/x.csv')",
    "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
    "SELECT * FROM read_xlsx('/tmp/x.xlsx')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM query('DELETE FROM runs')",
    "SELECT getenv('HOME')",
]


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a statement could change: every table's rows (but those of the background
    run, see `active_writer`), the catalog, key settings."""
    tables = ("runs", "stages", "metrics", "events", "artifacts", "generations")
    with store.database.cursor() as cur:
        state: dict[str, Any] = {
            table: cur.execute(
                f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {table}"
                " WHERE run_id IS DISTINCT FROM ? ORDER BY ALL",
                [BACKGROUND_RUN],
            ).fetchall()
            for table in tables
        }
        state["catalog"] = cur.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables()"
            " UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views()"
            " WHERE NOT internal"
            " UNION ALL SELECT database_name, schema_name, sequence_name FROM duckdb_sequences()"
            " ORDER BY ALL"
        ).fetchall()
        state["settings"] = cur.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN"
            " ('enable_external_access', 'threads', 'lock_configuration',"
            "  'autoinstall_known_extensions', 'autoload_known_extensions') ORDER BY name"
        ).fetchall()
    return state


def fill(store: Store) -> None:
    """Two runs with stages, metric points, events and generations."""
    for run in ("r1", "r2"):
        store.create_run(run, "exp", {"lr": 0.1}, status="completed")
        store.stage_started(run, 0, name="finetune", plugin="finetune", params={"lr": 0.1})
        for step in range(30):
            store.log_metrics(run, 0, step, {"train/loss": 1.0 / (step + 1), "val/acc": step})
        store.log_event(run, "hello")
        store.log_generations(
            run, 0, [Generation("validation", i, f"q{i}", f"a{i}", step=29) for i in range(3)]
        )
        store.stage_finished(run, 0, "completed")
    store.flush()


@contextmanager
def active_writer(store: Store) -> Iterator[None]:
    """Keep the store's writer busy for the block: a thread logs a metric point of the run
    `BACKGROUND_RUN` every few milliseconds, as a training run does in the app's process."""
    store.create_run(BACKGROUND_RUN, "exp", {}, status="running")
    stop = threading.Event()
    logged = [0]

    def log() -> None:
        while not stop.is_set():
            store.log_metrics(BACKGROUND_RUN, 0, logged[0], {"train/loss": 1.0})
            logged[0] += 1
            stop.wait(0.005)

    thread = threading.Thread(target=log, name="background-run")
    thread.start()
    try:
        wait_for(lambda: _points(store) > 0, 60, "the background run's first metric point")
        yield
    finally:
        stop.set()
        thread.join()
    store.flush()
    assert _points(store) == logged[0]  # nothing the writer had was lost


def _points(store: Store) -> int:
    with store.database.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM metrics WHERE run_id = ?", [BACKGROUND_RUN])
        return int(row.fetchall()[0][0])
