"""The speed-ups the benchmarks led to: length-grouped batches, columnar metric batches, the
writer's read of cancel requests, CPU threads shared between slots, OpenMP's spin capped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import RecordingContext, one_torch_thread, toy_state

from tuneboard import Features
from tuneboard.builtin.strategies import StandardStrategy
from tuneboard.engine.data import GROUP_BATCHES, batch_order
from tuneboard.engine.training import TrainParams, fit
from tuneboard.sdk.contracts import NoParams
from tuneboard.store import Store
from tuneboard.store.writer import METRICS, metrics_table

RUN = "20260101-000000-abcd"


def features(lengths: list[int]) -> Features:
    width = max(lengths)
    n = len(lengths)
    return Features(
        input_ids=np.zeros((n, width), np.int64),
        lengths=np.array(lengths, np.int64),
        labels=np.zeros(n, np.int64),
        token_type_ids=None,
        pad_id=0,
    )


# --- batch order ---------------------------------------------------------------------------


def test_grouped_order_is_a_permutation_whose_batches_pad_little() -> None:
    rng = np.random.default_rng(0)
    data = features(rng.integers(1, 200, size=1003).tolist())
    size = 8
    order = batch_order(data, shuffle=True, seed=5, group_batch_size=size)
    assert sorted(order.tolist()) == list(range(len(data)))

    def padding(order: np.ndarray) -> int:
        total = 0
        for i in range(0, len(order), size):
            batch = data.lengths[order[i : i + size]]
            total += int((batch.max() - batch).sum())
        return total

    plain = batch_order(data, shuffle=True, seed=5)
    assert padding(order) < padding(plain) / 4
    # The short last batch (1003 = 125 x 8 + 3) stays last.
    assert len(order) % size == 3


def test_grouped_order_is_seeded_and_batches_come_in_random_order() -> None:
    data = features([i % 97 + 1 for i in range(GROUP_BATCHES * 8 * 3)])
    one = batch_order(data, shuffle=True, seed=1, group_batch_size=8)
    again = batch_order(data, shuffle=True, seed=1, group_batch_size=8)
    other = batch_order(data, shuffle=True, seed=2, group_batch_size=8)
    assert one.tolist() == again.tolist()
    assert one.tolist() != other.tolist()
    firsts = data.lengths[one.reshape(-1, 8)[:, 0]]
    # Not longest-first overall: batches are shuffled after grouping.
    assert not np.all(np.diff(firsts) <= 0)


def test_without_grouping_the_order_is_the_seeded_permutation() -> None:
    data = features([3, 1, 4, 1, 5, 9, 2, 6])
    expected = np.random.default_rng(4).permutation(8)
    assert batch_order(data, shuffle=True, seed=4).tolist() == expected.tolist()
    assert batch_order(data, shuffle=True, seed=4, group_batch_size=0).tolist() == (
        expected.tolist()
    )


@pytest.fixture
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.mark.usefixtures("_one_thread")
def test_training_with_group_by_length_sees_every_row(tmp_path: Path) -> None:
    ctx = RecordingContext(tmp_path)
    settings = TrainParams(
        epochs=1, batch_size=8, lr=5e-3, dropout=0.0, warmup_ratio=0.0, group_by_length=True
    )
    result = fit(ctx, toy_state(n_train=44), settings, StandardStrategy(NoParams()))
    assert result.steps == 6  # 44 rows / 8 per batch, rounded up
    losses = [value for _, value in ctx.series("train/loss")]
    assert losses and all(np.isfinite(losses))


# --- metric batches ------------------------------------------------------------------------


def test_metrics_table_repeats_each_calls_fields_for_its_values() -> None:
    ops = [
        (METRICS, "a", 0, 1, {"x": 1.0, "y": 2}, 10.0),
        (METRICS, "b", 1, 2, {}, 11.0),
        (METRICS, "c", 2, 3, {"z": np.float32(0.5)}, 12.0),
    ]
    table = metrics_table(ops).to_pydict()
    assert table == {
        "run_id": ["a", "a", "c"],
        "stage_index": [0, 0, 2],
        "step": [1, 1, 3],
        "wall_time": [10.0, 10.0, 12.0],
        "name": ["x", "y", "z"],
        "value": [1.0, 2.0, 0.5],
    }


def test_a_value_that_is_not_a_number_fails_the_whole_table() -> None:
    ops = [
        (METRICS, "a", 0, 1, {"x": 1.0}, 10.0),
        (METRICS, "a", 0, 2, {"x": "not a number"}, 11.0),
    ]
    with pytest.raises(ValueError):
        metrics_table(ops)


def test_the_writer_drops_only_the_bad_call(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    store.create_run(RUN, "exp", {})
    for step in range(100):
        store.log_metrics(RUN, 0, step, {"loss": 1.0 / (step + 1), "lr": 0.1})
    store.log_metrics(RUN, 0, 100, {"loss": object()})  # type: ignore[dict-item]
    store.log_metrics(RUN, 0, 101, {"loss": 0.0})
    store.flush()
    assert store.writer is not None and store.writer.dropped == 1
    assert store.series(RUN, "loss", max_points=1000).xs[-2:] == [99, 101]
    assert len(store.series(RUN, "lr", max_points=1000).xs) == 100
    store.close()


# --- cancel requests -----------------------------------------------------------------------


def test_cancel_requests_are_answered_from_the_writers_read(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    store = Store(path)
    store.create_run(RUN, "exp", {})  # queued
    store.flush()
    opens = store.database.opens
    assert store.cancel_requests([RUN]) == []
    store.request_cancel(RUN)
    store.flush()
    assert store.cancel_requests([RUN, "20260101-000000-zzzz"]) == [RUN]
    assert store.database.opens == opens + 1  # the request's batch; no open to poll

    # A request made by another process is seen once the writer has written again.
    other = Store(tmp_path / "other.duckdb")
    other.create_run(RUN, "exp", {})
    other.flush()
    other.close()
    writer_store = Store(tmp_path / "other.duckdb")
    writer_store.log_metrics(RUN, 0, 1, {"loss": 1.0})
    writer_store.flush()
    assert writer_store.cancel_requests([RUN]) == []
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tuneboard.store import Store; s = Store(sys.argv[1]); "
            "s.request_cancel(sys.argv[2]); s.close()",
            str(tmp_path / "other.duckdb"),
            RUN,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    writer_store.log_metrics(RUN, 0, 2, {"loss": 1.0})
    writer_store.flush()
    assert writer_store.cancel_requests([RUN]) == [RUN]
    writer_store.close()
    store.close()


# --- threads -------------------------------------------------------------------------------


def _child(code: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_importing_the_engine_caps_openmp_spinning_unless_the_environment_chose() -> None:
    code = (
        "import json, os, tuneboard.engine; "
        "print(json.dumps({k: os.environ.get(k) for k in ('GOMP_SPINCOUNT', 'OMP_WAIT_POLICY')}))"
    )
    assert _child(code) == {"GOMP_SPINCOUNT": "10000", "OMP_WAIT_POLICY": None}
    assert _child(code, OMP_WAIT_POLICY="PASSIVE") == {
        "GOMP_SPINCOUNT": None,
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def test_cpu_slots_share_the_cores_without_importing_torch() -> None:
    code = (
        "import json, os, sys; from tuneboard.sdk.scheduler import share_cpu_threads; "
        "n = share_cpu_threads(2); "
        "print(json.dumps({'n': n, 'env': os.environ.get('OMP_NUM_THREADS'), "
        "'torch': 'torch' in sys.modules}))"
    )
    cores = os.cpu_count() or 1
    seen = _child(code)
    assert seen["n"] == max(1, cores // 2)
    assert seen["torch"] is False
    assert seen["env"] == (str(max(1, cores // 2)) if cores // 2 != cores else None)


# --- the README ----------------------------------------------------------------------------


def test_readme_group_by_length_example_validates(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import SAMPLES
    from tests.integration.test_readme import code_block
    from tuneboard.config import load_project
    from tuneboard.plugins import load_plugins

    project_dir = tmp_path / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", project_dir, ignore=shutil.ignore_patterns(".tuneboard"))
    block = code_block("toml", "# Faster fine-tuning on short texts")
    (project_dir / "tuneboard.toml").write_text(f'[project]\nname = "sentiment"\n\n{block}')
    project = load_project(project_dir)
    config = project.experiment("grouped", load_plugins(project.root))
    assert config.stages[0].params.group_by_length is True
