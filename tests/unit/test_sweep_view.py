"""A sweep read as one: trials in order, objective per trial, best so far, parameters against the
objective; from rows, and from a real DuckDB file through the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store import RunRow, Store, SweepRun
from tuneboard.ui.sweeps import (
    Objective,
    SweepReader,
    build_sweep,
    load_sweep,
    method_of,
    name_higher_is_better,
    param_labels,
    resolve_objective,
    short_id,
    sweep_table,
    validation_metric,
)

PRUNED = "pruned by optuna at step 4 of stage 0: val/loss 0.9 at evaluation 2 is worse"


def run(
    run_id: str, status: str = "completed", error: str | None = None, headline: str = "test/f1"
) -> RunRow:
    return RunRow(
        run_id, "exp", status, {}, 0.0, 0.0, None, None, error, headline, None, "sw",
        None, None, None, None, None,
    )  # fmt: skip


def sweep_of(
    statuses: list[tuple[str, str | None]], objective: Objective, bounds: list[Any]
) -> Any:
    runs = [
        SweepRun(run(f"r{i}", status, error), {"values": {"lr": i, "optuna_trial": i - 1}})
        for i, (status, error) in enumerate(statuses, start=1)
    ]
    known = {f"r{i}": b for i, b in enumerate(bounds, start=1) if b is not None}
    return build_sweep("sweep-20261203-075300-a3f9", runs, known, objective)


HIGHER = Objective("val/f1", higher=True)
LOWER = Objective("val/loss", higher=False)


def test_the_objective_is_each_runs_best_value_in_the_direction() -> None:
    bounds = [(0.2, 0.6), (0.1, 0.9), (0.3, 0.4)]
    done = [("completed", None)] * 3
    up = sweep_of(done, HIGHER, bounds)
    assert [t.objective for t in up.trials] == [0.6, 0.9, 0.4]
    assert up.best is not None and up.best.number == 2
    assert up.best_so_far() == [0.6, 0.9, 0.9]
    down = sweep_of(done, LOWER, bounds)
    assert [t.objective for t in down.trials] == [0.2, 0.1, 0.3]
    assert down.best is not None and down.best.number == 2
    assert down.best_so_far() == [0.2, 0.1, 0.1]
    assert down.best_text() == "best val/loss 0.1"


def test_pruned_failed_and_running_trials_are_never_best() -> None:
    statuses = [
        ("completed", None),
        ("cancelled", PRUNED),
        ("failed", "boom"),
        ("running", None),
        ("cancelled", "cancelled by the user"),
    ]
    sweep = sweep_of(statuses, HIGHER, [(0.1, 0.5), (0.1, 0.99), (0.1, 0.98), (0.1, 0.97), None])
    assert [t.pruned for t in sweep.trials] == [False, True, False, False, False]
    assert sweep.trials[1].objective == 0.99  # shown, though not best
    assert sweep.best is not None and sweep.best.number == 1
    assert sweep.best_so_far() == [0.5] * 5
    assert sweep.counts() == "5 trials (1 running, 1 pruned)"
    assert sweep.status == "running"
    assert sweep.trials[4].objective is None  # never logged the metric


def test_queued_trials_are_counted_apart_from_running_ones() -> None:
    statuses = [("running", None)] + [("queued", None)] * 11
    sweep = sweep_of(statuses, HIGHER, [None] * 12)
    assert sweep.counts() == "12 trials (1 running, 11 queued)"
    assert sweep.active == 12 and sweep.running == 1
    assert sweep.status == "running"
    waiting = sweep_of([("queued", None)], HIGHER, [None])
    assert waiting.counts() == "1 trial (1 queued)" and waiting.status == "queued"


def test_no_best_before_a_trial_completes_with_a_value() -> None:
    sweep = sweep_of([("completed", None), ("running", None)], HIGHER, [None, (0.1, 0.2)])
    assert sweep.best is None and sweep.best_text() == ""
    assert sweep.best_so_far() == [None, None]
    assert sweep.status == "running"


def test_equal_objectives_keep_the_first_trial() -> None:
    sweep = sweep_of([("completed", None)] * 2, HIGHER, [(0.5, 0.7), (0.6, 0.7)])
    assert sweep.best is not None and sweep.best.number == 1


def test_params_leave_out_optunas_trial_number() -> None:
    sweep = sweep_of([("completed", None)], HIGHER, [(0.1, 0.2)])
    assert sweep.params == ("lr",) and sweep.trials[0].values == {"lr": 1}


def test_numeric_and_categorical_params_against_the_objective() -> None:
    runs = [
        SweepRun(run("a"), {"values": {"lr": 0.1, "schedule": "cosine", "ema": True}}),
        SweepRun(run("b"), {"values": {"lr": 0.01, "schedule": "linear", "ema": False}}),
        SweepRun(run("c"), {"values": {"lr": 0.001, "schedule": "cosine", "ema": True}}),
        SweepRun(run("d", "running"), {"values": {"lr": 1.0, "schedule": "constant"}}),
    ]
    bounds = {"a": (0.0, 0.5), "b": (0.0, 0.7), "c": (0.0, 0.6)}
    sweep = build_sweep("s", runs, bounds, HIGHER)
    lr = sweep.param_points("lr")
    assert not lr.categorical and lr.xs == (0.1, 0.01, 0.001) and lr.ys == (0.5, 0.7, 0.6)
    schedule = sweep.param_points("schedule")
    assert schedule.categories == ("cosine", "linear")
    assert schedule.xs == (0.0, 1.0, 0.0)
    ema = sweep.param_points("ema")  # booleans are categories, not 0 and 1
    assert ema.categorical and ema.categories == ("true", "false")


def test_objective_from_the_record_then_the_table_then_the_headline() -> None:
    recorded = [SweepRun(run("a"), {"metric": "val/loss", "direction": "minimize"})]
    assert resolve_objective(recorded, {"metric": "val/f1"}, lambda m: True) == LOWER
    bare = [SweepRun(run("a"), {"values": {"lr": 1}})]
    table = {"metric": "val/loss", "direction": "auto"}
    assert resolve_objective(bare, table, name_higher_is_better) == LOWER
    assert resolve_objective(bare, {"direction": "minimize"}, lambda m: True) == Objective(
        "val/f1", higher=False
    )
    assert resolve_objective(bare, None, lambda m: m == "val/f1") == HIGHER
    assert method_of(bare, {"method": "random"}) == "random"
    optuna = [SweepRun(run("a"), {"values": {"optuna_trial": 0}})]
    assert method_of(optuna, None) == "optuna" and method_of(bare, None) is None
    tables = {"tuned": {"seed": 1, "sweep": {"metric": "val/loss"}}, "plain": {"seed": 1}}
    assert sweep_table(tables, "tuned") == {"metric": "val/loss"}
    assert sweep_table(tables, "plain") is None and sweep_table(tables, "gone") is None


def test_names_and_labels() -> None:
    assert validation_metric("test/accuracy") == "val/accuracy"
    assert validation_metric("val/loss") == "val/loss"
    assert not name_higher_is_better("val/loss") and name_higher_is_better("val/accuracy")
    assert short_id("sweep-20261203-075300-a3f9") == "075300-a3f9"
    assert short_id("sweep-custom") == "custom"
    assert param_labels(["stages.0.lr", "seed"]) == {"stages.0.lr": "lr", "seed": "seed"}
    assert param_labels(["stages.0.lr", "stages.1.lr"]) == {
        "stages.0.lr": "stages.0.lr",
        "stages.1.lr": "stages.1.lr",
    }


# --- through the store ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "tuneboard.duckdb", flush_interval=0.05)
    yield store
    store.close()


def record(values: dict[str, Any]) -> dict[str, Any]:
    sweep = {"id": "sweep-1", "values": values, "metric": "val/loss", "direction": "minimize"}
    return {"seed": 1, "sweep": sweep}


def add_trial(
    store: Store, run_id: str, at: float, losses: list[float], status: str = "completed"
) -> None:
    store.create_run(
        run_id, "exp", {}, sweep_id="sweep-1", at=at, provenance=record({"lr": at / 10})
    )
    for step, loss in enumerate(losses, start=1):
        store.log_metrics(run_id, 0, step, {"val/loss": loss, "val/acc": 1 - loss})
    store.set_run_status(run_id, status)


def test_a_sweep_through_the_store(store: Store) -> None:
    add_trial(store, "b", 2.0, [0.9, 0.4, float("nan")])
    add_trial(store, "a", 1.0, [0.8, 0.6])
    add_trial(store, "c", 3.0, [], status="failed")
    store.create_run("other", "exp", {}, at=4.0)
    store.flush()
    runs = store.sweep_runs("sweep-1")
    assert [r.run.run_id for r in runs] == ["a", "b", "c"]  # launch order
    assert runs[0].record["values"] == {"lr": 0.1}
    assert store.metric_bounds({"a": "val/loss", "b": "val/acc", "c": "val/loss"}) == {
        "a": (0.6, 0.8),
        "b": (0.09999999999999998, 0.6),  # NaN left out
    }
    sweep = load_sweep(store, "sweep-1", lambda name: None, lambda m: True)
    assert sweep.objective == LOWER
    assert [t.objective for t in sweep.trials] == [0.6, 0.4, None]
    assert sweep.best is not None and sweep.best.run_id == "b"
    assert store.find_sweep("sweep-1") == "sweep-1" and store.find_sweep("p-1") == "sweep-1"
    with pytest.raises(TuneboardError, match="no sweep matches 'zzz'"):
        store.find_sweep("zzz")
    assert store.sweep_records(["a", "other", "missing"]) == {"a": runs[0].record}
    store.create_run("d", "exp", {}, sweep_id="sweep-12")
    store.flush()
    with pytest.raises(TuneboardError, match="'1' matches several sweeps: sweep-1, sweep-12"):
        store.find_sweep("1")
    assert store.find_sweep("sweep-1") == "sweep-1"  # an exact id wins


def test_the_reader_reads_finished_runs_once(store: Store) -> None:
    add_trial(store, "a", 1.0, [0.8, 0.6])
    add_trial(store, "b", 2.0, [0.9], status="running")
    store.flush()
    reader = SweepReader()
    sweeps = reader.read(store, store.list_runs(), lambda name: None, lambda m: True)
    assert [t.objective for t in sweeps["sweep-1"].trials] == [0.6, 0.9]
    # New points: the running run's are read again, the finished run's are kept.
    store.log_metrics("a", 0, 3, {"val/loss": 0.1})
    store.log_metrics("b", 0, 2, {"val/loss": 0.2})
    store.flush()
    sweeps = reader.read(store, store.list_runs(), lambda name: None, lambda m: True)
    assert [t.objective for t in sweeps["sweep-1"].trials] == [0.6, 0.2]
    assert reader.read(store, [], lambda name: None, lambda m: True) == {}
