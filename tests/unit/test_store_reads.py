"""The store's read API, dead-owner detection and artifacts, on real DuckDB files."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    INTERRUPTED_ERROR,
    RunStatus,
    Store,
)
from tuneboard.store.store import hash_path

REPO = Path(__file__).resolve().parents[2]

DEAD_OWNER = """
import sys
from pathlib import Path
from tuneboard.store import Store
store = Store(Path(sys.argv[1]))
store.create_run("dead", "exp", {}, status="running")
store.stage_started("dead", 0, name="train", plugin="finetune", params={})
store.create_run("dead-queued", "exp", {})
store.close()
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "tuneboard.duckdb", flush_interval=0.05)
    yield store
    store.close()


def test_statuses() -> None:
    assert RunStatus.RUNNING == "running"
    assert "queued" in ACTIVE_STATUSES
    assert sorted(FINISHED_STATUSES) == ["cancelled", "completed", "failed", "interrupted"]


def test_list_runs_newest_first_with_filters(store: Store) -> None:
    store.create_run("a", "exp1", {"lr": 0.1, "nan": math.nan}, headline="acc", at=1.0)
    store.create_run("b", "exp2", {}, sweep_id="s1", at=2.0)
    store.create_run("c", "exp1", {}, at=3.0)
    store.set_run_status("a", "running", device="cuda:0", at=4.0)
    store.set_headline_value("a", 0.75)
    store.set_run_status("b", "failed", error="boom", at=5.0)
    store.flush()
    assert [r.run_id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["c", "b"]
    assert [r.run_id for r in store.list_runs(experiment="exp1")] == ["c", "a"]
    assert [r.run_id for r in store.list_runs(status="failed")] == ["b"]
    a = store.get_run("a")
    assert a.config == {"lr": 0.1, "nan": "nan"}
    assert (a.status, a.device, a.started_at, a.finished_at) == ("running", "cuda:0", 4.0, None)
    assert (a.headline, a.headline_value) == ("acc", 0.75)
    assert a.owner_pid == os.getpid() and a.owner_host and a.owner_started
    b = store.get_run("b")
    assert (b.error, b.finished_at, b.sweep_id) == ("boom", 5.0, "s1")


def test_get_run_by_prefix(store: Store) -> None:
    for run_id in ("abc", "abcd", "abe", "xyz"):
        store.create_run(run_id, "exp", {})
    store.flush()
    assert store.get_run("abc").run_id == "abc"  # exact wins over longer ids
    assert store.get_run("abcd").run_id == "abcd"
    assert store.get_run("x").run_id == "xyz"
    with pytest.raises(TuneboardError, match=r"^no run matches 'q'$"):
        store.get_run("q")
    with pytest.raises(TuneboardError, match=r"^'ab' matches several runs: abc, abcd, abe$"):
        store.get_run("ab")
    with pytest.raises(TuneboardError, match="no run matches '%'"):
        store.get_run("%")


def test_get_run_by_the_short_id_the_app_shows(store: Store) -> None:
    # The Runs table shows the last characters of an id (`a3f9`) where it is narrow.
    for run_id in ("20261203-091400-5d68", "20261203-091404-1b7c", "20261203-091406-0b7c"):
        store.create_run(run_id, "exp", {})
    store.flush()
    assert store.get_run("5d68").run_id == "20261203-091400-5d68"
    assert store.get_run("1b7c").run_id == "20261203-091404-1b7c"
    with pytest.raises(TuneboardError, match=r"^'b7c' matches several runs: "):
        store.get_run("b7c")


def test_stages_and_progress(store: Store) -> None:
    store.create_run("r", "exp", {}, status="running")
    store.stage_started("r", 0, name="warmup", plugin="head", params={"epochs": 1}, at=10.0)
    store.stage_finished(
        "r", 0, "completed", best_metric="acc", best_step=5, best_value=0.8, at=11.0
    )
    store.stage_started("r", 1, name="train", plugin="finetune", params={}, at=12.0)
    store.set_progress("r", 1, 25, 100)
    store.flush()
    first, second = store.stages("r")
    assert (first.name, first.plugin, first.params, first.status) == (
        "warmup",
        "head",
        {"epochs": 1},
        "completed",
    )
    assert (first.best_metric, first.best_step, first.best_value) == ("acc", 5, 0.8)
    assert (first.started_at, first.finished_at) == (10.0, 11.0)
    assert (second.status, second.steps, second.total_steps) == ("running", 25, 100)
    run = store.get_run("r")
    assert (run.current_stage, run.progress) == ("train", 0.25)
    with pytest.raises(ValueError, match="unknown status"):
        store.stage_finished("r", 1, "done")


def test_last_and_best_metrics(store: Store) -> None:
    store.create_run("r", "exp", {})
    store.log_metrics("r", 0, 1, {"loss": 0.9, "acc": 0.5}, wall_time=1.0)
    store.log_metrics("r", 0, 3, {"loss": 0.2}, wall_time=2.0)
    store.log_metrics("r", 0, 3, {"loss": 0.4}, wall_time=3.0)  # same step, later
    store.log_metrics("r", 0, 2, {"loss": math.nan, "acc": 0.7}, wall_time=4.0)
    store.log_metrics("other", 0, 9, {"loss": 0.0})
    store.flush()
    assert store.metric_names("r") == ["acc", "loss"]
    assert store.last_metrics("r") == {"acc": 0.7, "loss": 0.4}
    assert store.best_metrics("r", lambda name: name == "acc") == {"acc": 0.7, "loss": 0.2}
    assert store.last_metrics("nobody") == {}


def test_series_small_is_exact(store: Store) -> None:
    store.create_run("r", "exp", {})
    for step in range(10):
        store.log_metrics("r", step // 5, step, {"loss": float(10 - step)}, wall_time=100.0 + step)
    store.flush()
    series = store.series("r", "loss")
    assert series.xs == [float(s) for s in range(10)]
    assert series.ys == [float(10 - s) for s in range(10)]
    assert store.series("r", "loss", x="time").xs == [100.0 + s for s in range(10)]
    assert store.series("r", "loss", stage_index=1).xs == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert store.series("r", "missing").xs == []


def test_series_downsampling_keeps_extremes(store: Store) -> None:
    store.create_run("r", "exp", {})
    n = 100_000
    for step in range(n):
        value = math.sin(step / 1000)
        if step == 12_345:
            value = 100.0
        elif step == 54_321:
            value = -100.0
        store.log_metrics("r", 0, step, {"loss": value})
    store.flush()
    series = store.series("r", "loss", max_points=400)
    assert 100 < len(series.xs) <= 400 * 2
    assert series.xs == sorted(series.xs)
    points = set(zip(series.xs, series.ys, strict=True))
    assert (12_345.0, 100.0) in points
    assert (54_321.0, -100.0) in points
    assert max(series.ys) == 100.0 and min(series.ys) == -100.0
    assert series.xs[0] >= 0 and series.xs[-1] <= n - 1


def _pipeline(store: Store) -> None:
    """A warm-up of 40 steps, a fine-tune that stopped at 60 (best at 50), a test evaluation."""
    store.create_run("r", "exp", {})
    for index, (name, steps, best) in enumerate([("warmup", 40, 30), ("full", 60, 50)]):
        store.stage_started("r", index, name=name, plugin="finetune", params={})
        for step in range(1, steps + 1):
            values = {"train/loss": 1.0 / step}
            if step % 20 == 0:
                values["train/epoch"] = step / 20
            store.log_metrics("r", index, step, values, wall_time=float(100 * index + step))
        store.stage_finished(
            "r",
            index,
            "completed",
            best_metric="val/acc",
            best_step=best,
            best_value=0.5 + index / 4,
        )
    store.stage_started("r", 2, name="evaluate", plugin="evaluate", params={})
    store.log_metrics("r", 2, 0, {"test/acc": 0.8})
    store.stage_finished("r", 2, "completed")
    store.stage_started("r", 3, name="export", plugin="export", params={})
    store.stage_finished("r", 3, "completed")
    store.flush()


def test_stage_spans_place_stages_end_to_end(store: Store) -> None:
    _pipeline(store)
    spans = store.stage_spans("r")
    assert [(s.name, s.first_step, s.last_step) for s in spans] == [
        ("warmup", 0, 40),
        ("full", 40, 100),
        ("evaluate", 100, 100),
        ("export", 100, 100),
    ]
    assert [(s.first_epoch, s.last_epoch) for s in spans] == [
        (0.0, 2.0),
        (2.0, 5.0),
        (5.0, 5.0),
        (5.0, 5.0),
    ]
    assert [(s.best_step, s.best_value) for s in spans[:2]] == [(30, 0.5), (90, 0.75)]
    assert spans[2].best_step is None and spans[2].epochs_per_step is None
    assert store.stage_spans("nobody") == []


def test_series_on_the_run_wide_axes(store: Store) -> None:
    _pipeline(store)
    loss = store.series("r", "train/loss", x="run_step")
    assert loss.xs == [float(s) for s in range(1, 101)]
    assert loss.ys[39:41] == [1.0 / 40, 1.0]  # the fine-tune starts at run-wide step 41
    assert max(store.series("r", "train/loss", x="step").xs) == 60.0  # within its stage
    assert store.series("r", "test/acc", x="run_step").xs == [100.0]
    epochs = store.series("r", "train/loss", x="epoch")
    assert epochs.xs[39] == 2.0 and epochs.xs[-1] == 5.0
    only_full = store.series("r", "train/loss", x="run_step", stage_index=1)
    assert only_full.xs[0] == 41.0
    with pytest.raises(ValueError, match="x must be one of"):
        store.series("r", "train/loss", x="steps")  # type: ignore[arg-type]


def test_the_views_give_the_same_axis_in_sql(store: Store) -> None:
    _pipeline(store)
    with store.database.cursor() as cur:
        rows = cur.execute(
            "SELECT stage, step, run_step, run_epoch FROM run_metrics"
            " WHERE run_id = 'r' AND name = 'train/loss' AND step IN (1, 40) ORDER BY run_step"
        ).fetchall()
    assert rows == [
        ("warmup", 1, 1, 0.05),
        ("warmup", 40, 40, 2.0),
        ("full", 1, 41, 2.05),
        ("full", 40, 80, 4.0),
    ]


def test_downsampling_keeps_each_stages_extremes(store: Store) -> None:
    # Each stage's lowest point is its last one, next to a lower one of the next stage:
    # one bucket holds both, and each stage keeps its own.
    store.create_run("r", "exp", {})
    for index in range(3):
        for step in range(1, 2001):
            value = -5.0 * (index + 1) if step in (1, 2000) else math.sin(step / 50)
            store.log_metrics("r", index, step, {"loss": value})
    store.flush()
    series = store.series("r", "loss", x="run_step", max_points=40)
    points = set(zip(series.xs, series.ys, strict=True))
    for index in range(3):
        assert (2000.0 * index + 2000, -5.0 * (index + 1)) in points, index
    assert len(series.xs) <= 40 + 2 * 3


def test_events_and_artifacts(store: Store, tmp_path: Path) -> None:
    store.create_run("r", "exp", {})
    store.log_event("r", "run started", at=1.0)
    store.log_event("r", "stage 0 started", level="warning", stage_index=0, at=2.0)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    folder = tmp_path / "checkpoint"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("bb")
    store.add_artifact("r", 0, "model", model, at=3.0)
    store.add_artifact("r", 0, "checkpoint", folder, at=4.0)
    store.flush()
    events = store.events("r")
    assert [(e.stage_index, e.level, e.message, e.time) for e in events] == [
        (None, "info", "run started", 1.0),
        (0, "warning", "stage 0 started", 2.0),
    ]
    file_artifact, folder_artifact = store.artifacts("r")
    assert (file_artifact.kind, file_artifact.path, file_artifact.bytes) == (
        "model",
        str(model),
        7,
    )
    assert file_artifact.sha256 == hash_path(model)[1]
    assert len(file_artifact.sha256) == 64
    assert (folder_artifact.bytes, folder_artifact.created_at) == (3, 4.0)
    (folder / "a.txt").write_text("A")
    assert hash_path(folder)[1] != folder_artifact.sha256
    with pytest.raises(TuneboardError, match="does not exist"):
        store.add_artifact("r", 0, "x", tmp_path / "missing")


def test_delete_run_removes_every_row(store: Store, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for run_id in ("gone", "kept"):
        store.create_run(run_id, "exp", {})
        store.stage_started(run_id, 0, name="s", plugin="p", params={})
        store.log_metrics(run_id, 0, 0, {"loss": 1.0})
        store.log_event(run_id, "hi")
        store.add_artifact(run_id, 0, "file", tmp_path / "f")
    store.delete_run("gone")
    store.flush()
    with pytest.raises(TuneboardError):
        store.get_run("gone")
    assert (store.stages("gone"), store.events("gone"), store.artifacts("gone")) == ([], [], [])
    assert store.metric_names("gone") == []
    assert store.metric_names("kept") == ["loss"]
    assert len(store.stages("kept")) == 1


def test_runs_of_a_dead_owner_are_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "tuneboard.duckdb"
    subprocess.run(
        [sys.executable, "-c", DEAD_OWNER, str(path)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    store = Store(path)
    try:
        for run_id in ("dead", "dead-queued"):
            run = store.get_run(run_id)
            assert (run.status, run.error) == ("interrupted", INTERRUPTED_ERROR)
            assert run.finished_at is not None
        [stage] = store.stages("dead")
        assert stage.status == "interrupted"

        store.create_run("alive", "exp", {}, status="running")
        store.flush()
        assert store.mark_interrupted() == []
        assert store.get_run("alive").status == "running"
    finally:
        store.close()


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "tuneboard.duckdb")
    store.close()
    store.close()
    with pytest.raises(TuneboardError, match="closed"):
        store.log_metrics("r", 0, 0, {"x": 1.0})
    assert store.list_runs() == []


def test_a_file_not_yet_migrated_reads_the_run_wide_axis(tmp_path: Path) -> None:
    # A project last written before m005, opened read-only (never migrated): no views, yet
    # the store places its stages the same way.
    import duckdb

    from tuneboard.store.migrations import MIGRATIONS

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        for _, sql in MIGRATIONS[:4]:
            conn.execute(sql)
        conn.execute(
            "INSERT INTO stages (run_id, stage_index, name, plugin, status)"
            " VALUES ('r', 0, 'a', 'finetune', 'completed'), ('r', 1, 'b', 'finetune', 'running')"
        )
        conn.execute(
            "INSERT INTO metrics SELECT 'r', s, st, 'train/loss', 1.0, now()"
            " FROM range(2) t(s), range(1, 11) u(st)"
        )
    store = Store(path, read_only=True)
    assert [(s.first_step, s.last_step) for s in store.stage_spans("r")] == [(0, 10), (10, 20)]
    assert store.series("r", "train/loss", x="run_step").xs == [float(s) for s in range(1, 21)]
    store.close()
