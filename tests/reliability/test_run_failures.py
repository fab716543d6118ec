"""A run's failures stay in that run: a stage raising, data that fails when the run starts,
CUDA out of memory, a NaN loss, a full disk while checkpointing. Each such run ends `failed`
with a one-line reason and the traceback in its events, while a run beside it (two CPU slots)
goes on, and the process launches and completes runs afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import ProjectFactory, experiment
from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store

pytestmark = pytest.mark.slow

SHORT = {"plugin": "finetune", "epochs": 1, "max_steps": 4, "batch_size": 8, "lr": 1e-3}

# experiment name -> (its stage table, a fragment of the one-line reason)
FAILURES = {
    "raises": ({"plugin": "fail", "kind": "error"}, "ValueError: the stage blew up on purpose"),
    "cuda_oom": (
        {"plugin": "fail", "kind": "cuda_oom"},
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ),
    "cuda_oom_text": (
        {"plugin": "fail", "kind": "cuda_oom_runtime"},
        "RuntimeError: CUDA out of memory",
    ),
    "disk_full": (
        {**SHORT, "plugin": "disk_full"},
        "OSError: [Errno 28] No space left on device",
    ),
    "nan_stop": (
        {**SHORT, "strategy": "nan_at", "strategy_params": {"call": 2}},
        'NonFiniteLoss: the training loss is nan at step 2; stopped (nan_policy = "stop"',
    ),
    "nan_forever": (
        {**SHORT, "max_steps": 40, "strategy": "nan_at", "nan_policy": "skip"}
        | {"strategy_params": {"call": 1, "calls": 1000}},
        "for 10 steps in a row",
    ),
}
LATE_DATA = '{ plugin = "late_tokens" }'


def test_failing_runs_fail_alone(
    make_project: ProjectFactory, tmp_path: Path, one_thread: None
) -> None:
    stop = tmp_path / "stop"
    steady = {"plugin": "ticker", "points": 100_000, "interval": 0.02, "stop_file": str(stop)}
    root = make_project(
        experiment("steady", steady),
        experiment("late_data", SHORT, dataset=LATE_DATA),
        experiment("nan_skip", {**SHORT, "strategy": "nan_at", "nan_policy": "skip"}),
        *(experiment(name, stage) for name, (stage, _) in FAILURES.items()),
        cpu_slots=2,
    )
    project = load_project(root)
    registry = load_plugins(root)
    store = Store(project.database)
    engine = Engine(project, store, registry)

    def launch(name: str) -> str:
        return engine.launch(engine.prepare(project.experiment(name, registry)))

    try:
        steady_id = launch("steady")
        failing = {name: launch(name) for name in [*FAILURES, "late_data"]}
        skipped = launch("nan_skip")
        assert engine.wait([*failing.values(), skipped], timeout=300)
        store.flush()
        # The steady run kept going on the other slot while all of these failed.
        assert store.get_run(steady_id).status == "running"
        stop.touch()
        assert engine.wait([steady_id], timeout=60)
        # The process is fine: it runs (and completes) another run afterwards.
        again = launch("nan_skip")
        assert engine.wait([again], timeout=120)
    finally:
        stop.touch()
        engine.shutdown(cancel=True)
        store.flush()

    assert store.get_run(steady_id).status == "completed"
    assert store.get_run(again).status == "completed"
    expected = {name: fragment for name, (_, fragment) in FAILURES.items()}
    expected["late_data"] = "example 0 is not a text example"
    for name, run_id in failing.items():
        run = store.get_run(run_id)
        assert run.status == "failed", (name, run)
        assert run.error is not None and "\n" not in run.error, (name, run.error)
        assert expected[name] in run.error, (name, run.error)
        errors = [e.message for e in store.events(run_id) if e.level == "error"]
        assert len(errors) == 1 and errors[0].startswith("Traceback"), (name, errors)
        assert [s.status for s in store.stages(run_id)] == ["failed"], name
    # nan_policy = "skip": the poisoned step is dropped with a warning, the run completes.
    assert store.get_run(skipped).status == "completed"
    warnings = [e.message for e in store.events(skipped) if e.level == "warning"]
    assert any(m.startswith("skipped step 2: the training loss is nan") for m in warnings)
    # The reason names the stage, and the out-of-memory run says what ran out.
    assert store.get_run(failing["raises"]).error == (
        "stage 0 fail (fail from plugin 'faults'): ValueError: the stage blew up on purpose"
    )
    store.close()
