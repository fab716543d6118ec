"""A run on several devices: N rank processes with torch.distributed (gloo on the CPU).

The engine's scheduler has the CPU as its device (one slot, as the sample project): a run with
``gpus = 2`` is called with the devices ``cpu,cpu`` and launched as two rank processes
(`tuneboard.engine.distributed`), rank 0's records landing in this database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.engine.observer import RunObserver
from tuneboard.plugins import load_plugins
from tuneboard.sdk.scheduler import Scheduler
from tuneboard.store import Store

pytestmark = pytest.mark.slow

TIMEOUT = 300  # only catches hangs: two ranks on two loaded cores take ~30 s a run
# 40 optimizer steps (no early stop), an evaluation and a resume checkpoint every 5, no dropout.
SETTINGS = (
    "stages.0.epochs=2",
    "stages.0.patience=0",
    "stages.0.dropout=0",
    "stages.0.eval_every=5",
)


class Steps(RunObserver):
    """Sets `trained` once the run logged its first training step."""

    def __init__(self) -> None:
        self.trained = threading.Event()

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Note a training step."""
        if "train/loss" in values:
            self.trained.set()


def engine_on(project_dir: Path, observer: RunObserver | None = None) -> Engine:
    project = load_project(project_dir)
    scheduler = Scheduler(["cpu"], slots_per_device=1, cpu_slots=1)
    store = Store(project.database)
    return Engine(
        project, store, load_plugins(project.root), scheduler=scheduler, observer=observer
    )


def run(engine: Engine, *overrides: str) -> str:
    config = engine.project.experiment("tiny", engine.registry, list(overrides))
    run_id = engine.launch(engine.prepare(config))
    assert engine.wait([run_id], timeout=TIMEOUT)
    return run_id


def values(database: Path, run_id: str) -> dict[tuple[int, int, str], float]:
    """Every validation and test value of the run, by (stage, step, name)."""
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.execute(
            "SELECT stage_index, step, name, value FROM metrics WHERE run_id = ? "
            "AND (name LIKE 'val/%' OR name LIKE 'test/%')",
            [run_id],
        ).fetchall()
    return {(stage, step, name): value for stage, step, name, value in rows}


def assert_close(got: dict[tuple[int, int, str], float], want: dict[tuple[int, int, str], float]):
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key


def test_two_ranks_train_like_one_process_with_the_same_global_batch(
    sentiment_project: Path,
) -> None:
    two = engine_on(sentiment_project)
    ddp = run(two, "gpus=2", *SETTINGS)
    fsdp = run(two, "gpus=2", "parallel=fsdp", *SETTINGS)
    two.shutdown(cancel=False)
    for run_id in (ddp, fsdp):
        row = two.store.get_run(run_id)
        assert (row.status, row.error, row.device) == ("completed", None, "cpu,cpu")
    two.store.close()
    one = engine_on(sentiment_project)
    single = run(one, *SETTINGS)
    one.shutdown(cancel=False)
    one.store.close()
    database = load_project(sentiment_project).database
    # The best weights (val/accuracy's first best) are what the test split measures.
    assert_close(values(database, ddp), values(database, single))
    assert_close(values(database, fsdp), values(database, single))
    assert (load_project(sentiment_project).runs_dir / ddp / "export").is_dir()


KILLER = '''
"""`kill_rank`: the standard step, but rank 1 kills itself (SIGKILL) at step 3."""

import os
import signal

from tuneboard import NoParams, Strategy, TrainStep, hookimpl


class KillRank(Strategy[NoParams]):
    name = "kill_rank"

    def step(self, inputs: TrainStep) -> float:
        if inputs.step + 1 == 3 and os.environ.get("RANK") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        loss = inputs.forward(inputs.batch).loss
        inputs.backward(loss)
        return float(loss.detach())


@hookimpl
def register_strategies(register):
    register(KillRank)
'''


def test_a_rank_that_dies_fails_the_run_in_one_line_and_frees_its_slots(
    sentiment_project: Path,
) -> None:
    (sentiment_project / "plugins").mkdir()
    (sentiment_project / "plugins" / "kill_rank.py").write_text(KILLER, encoding="utf-8")
    engine = engine_on(sentiment_project)
    run_id = run(engine, "gpus=2", "stages.0.strategy=kill_rank", *SETTINGS)
    assert engine.scheduler.active() == []
    engine.shutdown(cancel=False)
    failed = engine.store.get_run(run_id)
    assert failed.status == "failed"
    assert failed.error is not None and "\n" not in failed.error
    assert failed.error.startswith("rank 1 exited with code -9"), failed.error


def test_cancel_stops_every_rank(sentiment_project: Path) -> None:
    steps = Steps()
    engine = engine_on(sentiment_project, observer=steps)
    config = engine.project.experiment("tiny", engine.registry, ["gpus=2", "stages.0.epochs=50"])
    run_id = engine.launch(engine.prepare(config))
    assert steps.trained.wait(TIMEOUT)
    assert engine.cancel(run_id)
    assert engine.wait([run_id], timeout=TIMEOUT)  # every rank ended: the job returned
    engine.shutdown(cancel=False)
    cancelled = engine.store.get_run(run_id)
    assert (cancelled.status, cancelled.error) == ("cancelled", "cancelled by the user")


LAUNCHER = """
import sys
from pathlib import Path

from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.engine.observer import RunObserver
from tuneboard.plugins import load_plugins
from tuneboard.sdk.scheduler import Scheduler
from tuneboard.store import Store


class Say(RunObserver):
    def metrics(self, run_id, stage_index, step, values):
        if "train/loss" in values:
            print("step", stage_index, step, flush=True)


project = load_project(Path(sys.argv[1]))
registry = load_plugins(project.root)
engine = Engine(
    project,
    Store(project.database),
    registry,
    scheduler=Scheduler(["cpu"], slots_per_device=1, cpu_slots=1),
    observer=Say(),
)
config = project.experiment("tiny", registry, sys.argv[2:])
run_id = engine.launch(engine.prepare(config))
print("run", run_id, flush=True)
engine.wait([run_id])
engine.shutdown(cancel=False)
"""


def kill_and_resume(project: Path, tmp_path: Path, kill_at: int, *overrides: str) -> str:
    """Launch a run in a process of its own, SIGKILL it once it logged step `kill_at`, resume
    it here to its end; its id."""
    script = tmp_path / "launcher.py"
    script.write_text(textwrap.dedent(LAUNCHER), encoding="utf-8")
    launcher = subprocess.Popen(
        [sys.executable, str(script), str(project), *overrides],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert launcher.stdout is not None
    run_id, killed = None, False
    try:
        for line in launcher.stdout:
            words = line.split()
            if words[:1] == ["run"]:
                run_id = words[1]
            if words[:2] == ["step", "0"] and int(words[2]) >= kill_at:
                launcher.send_signal(signal.SIGKILL)  # its ranks end with it
                killed = True
                break
    finally:
        launcher.kill()
        launcher.wait(TIMEOUT)
    assert run_id is not None and killed, f"the run ended before step {kill_at}"

    engine = engine_on(project)
    engine.resume(run_id)
    assert engine.wait([run_id], timeout=TIMEOUT)
    engine.shutdown(cancel=False)
    resumed = engine.store.get_run(run_id)
    assert (resumed.status, resumed.error, resumed.device) == ("completed", None, "cpu,cpu")
    engine.store.close()
    return run_id


def test_a_two_rank_run_killed_at_a_random_step_resumes_to_the_uninterrupted_result(
    sentiment_project: Path, tmp_path: Path
) -> None:
    database = load_project(sentiment_project).database
    engine = engine_on(sentiment_project)
    whole = run(engine, "gpus=2", *SETTINGS)
    engine.shutdown(cancel=False)
    engine.store.close()
    expected = values(database, whole)

    kill_at = random.randint(2, 30)  # of its 40 steps: killed well before its end
    run_id = kill_and_resume(sentiment_project, tmp_path, kill_at, "gpus=2", *SETTINGS)
    assert_close(values(database, run_id), expected)


def test_an_fsdp_run_killed_after_a_checkpoint_resumes_from_it_to_the_uninterrupted_result(
    sentiment_project: Path, tmp_path: Path
) -> None:
    database = load_project(sentiment_project).database
    fsdp = ("gpus=2", "parallel=fsdp", *SETTINGS)
    engine = engine_on(sentiment_project)
    whole = run(engine, *fsdp)
    engine.shutdown(cancel=False)
    engine.store.close()
    expected = values(database, whole)

    kill_at = random.randint(7, 30)  # after the first checkpoint (step 5), well before step 40
    run_id = kill_and_resume(sentiment_project, tmp_path, kill_at, *fsdp)
    with duckdb.connect(str(database), read_only=True) as db:
        messages = [
            m
            for (m,) in db.execute(
                "SELECT message FROM events WHERE run_id = ?", [run_id]
            ).fetchall()
        ]
    resumed = [m for m in messages if m.startswith("resumed training at step ")]
    assert resumed and int(resumed[0].split()[4]) >= 5, messages  # not started over
    assert not [m for m in messages if "no resume checkpoints" in m]
    assert_close(values(database, run_id), expected)
