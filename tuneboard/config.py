"""`tuneboard.toml` -> frozen dataclasses, validated before anything runs.

A project file has a `[project]` table (where the database and runs live, which devices to
use) and one `[experiments.NAME]` table per experiment. `load_project` reads the file and
checks the `[project]` table; `Project.experiment` validates one experiment against the
loaded plugins, after applying `--set KEY=VALUE` overrides. Every error is a `ConfigError`
whose message names the file, the table and the key (or the override) at fault.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneboard.plugins import NAME_PATTERN, PluginRegistry
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, TASKS
from tuneboard.sdk.errors import ConfigError, PluginError
from tuneboard.sdk.params import (
    ParamSpec,
    build_params,
    check_value,
    describe_params,
    did_you_mean,
    param,
    params_to_dict,
)

CONFIG_FILE = "tuneboard.toml"
DEFAULT_CORRECTIONS = "corrections.jsonl"
DEFAULT_DATABASE = ".tuneboard/tuneboard.duckdb"
DEFAULT_RUNS_DIR = ".tuneboard/runs"
LOCAL_EXECUTOR = "local"

_DEVICE = re.compile(r"cpu|mps|cuda:[0-9]+")
_PACKAGE_SOURCE = re.compile(r"package:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(/.*)?")
_INDEX = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ModelSpec:
    """Where a run's model and tokenizer come from.

    `source` is a Hugging Face id, a local path (relative to the project), or
    ``package:MODULE/SUBPATH`` for a model folder shipped inside an installed Python package.
    `config` (a `model_type` plus config keys) builds a randomly initialised model instead;
    `tokenizer` then says where the tokenizer comes from (default: `source`).
    """

    source: str | None
    config: Mapping[str, Any] | None = None
    tokenizer: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """The dataset plugin of an experiment and its validated parameters."""

    plugin: str
    params: Any


@dataclass(frozen=True)
class StageSpec:
    """One stage of an experiment's pipeline: its position, plugin and validated parameters."""

    index: int
    plugin: str
    name: str
    params: Any


@dataclass(frozen=True)
class ExperimentConfig:
    """A fully validated experiment, with every override applied.

    `raw` is the experiment's table after overrides (plain TOML values), without its `sweep`
    table: it is what is stored in `runs.config` and what re-launching a run starts from.
    """

    name: str
    description: str
    model: ModelSpec
    task: str
    dataset: DatasetSpec
    metrics: tuple[str, ...]
    max_length: int
    seed: int
    stages: tuple[StageSpec, ...]
    headline: str
    raw: Mapping[str, Any]


# --- the keys of the tables, declared like plugin parameters ------------------------------


@dataclass(kw_only=True)
class _ProjectKeys:
    name: str | None = param(None, "display name (default: the project folder's name)")
    database: str = param(DEFAULT_DATABASE, "the DuckDB file, relative to the project folder")
    runs_dir: str = param(DEFAULT_RUNS_DIR, "folder of run outputs, relative to the project")
    devices: str | list[str] = param("auto", 'devices: "auto", or a list like ["cuda:0"]')
    slots_per_device: int = param(1, "runs at once on each GPU", min=1)
    cpu_slots: int = param(1, "runs at once on the CPU", min=1)
    corrections: str = param(
        DEFAULT_CORRECTIONS, "label corrections from reviews (JSON lines), relative to the project"
    )
    executor: str | dict[str, Any] = param(
        LOCAL_EXECUTOR,
        'where runs execute: "local", an executor plugin such as "ray", '
        'or a table with plugin = "..." and its keys',
    )


@dataclass(kw_only=True)
class _ExperimentKeys:
    description: str = param("", "one line shown in listings")
    model: str | dict[str, Any] = param(help="a model id, path, package:MODULE/PATH, or table")
    task: str = param(SEQUENCE_CLASSIFICATION, "what the model predicts", choices=TASKS)
    dataset: dict[str, Any] = param(help='the data: a table with plugin = "..." and its keys')
    metrics: list[str] = param(["accuracy"], "metric plugins to compute")
    max_length: int = param(128, "longest input in tokens", min=8, max=8192)
    seed: int = param(42, "seed of every random choice", min=0, max=2**32 - 1)
    headline: str | None = param(None, "the metric that ranks runs (default: test/<metric>)")
    stages: Any = param(help="the pipeline: [[experiments.NAME.stages]] tables")
    sweep: dict[str, Any] | None = param(None, "a search: [experiments.NAME.sweep] (sweeps.py)")


@dataclass(kw_only=True)
class _ModelKeys:
    source: str | None = param(None, "a model id, local path or package:MODULE/PATH")
    config: dict[str, Any] | None = param(None, "model_type and settings of a new model")
    tokenizer: str | None = param(None, "where the tokenizer comes from (default: source)")


_EXPERIMENT_SPECS = {spec.name: spec for spec in describe_params(_ExperimentKeys)}
_SCALAR_KEYS = ("description", "task", "metrics", "max_length", "seed", "headline")
_STAGE_KEYS = ("plugin", "name")


# --- the project ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a project's runs execute: an executor's name and the other keys of its table.

    `settings` are checked against the executor's `Params` when the executor is built
    (`tuneboard.executors.build_executor`); `where` names their origin in error messages.
    """

    plugin: str = LOCAL_EXECUTOR
    settings: Mapping[str, Any] = field(default_factory=dict)
    where: str = field(default=f"{CONFIG_FILE}: [project.executor]", compare=False)

    def override(self, plugin: str | None, settings: Mapping[str, Any]) -> ExecutorSpec:
        """This spec with command-line options: another executor starts from no settings."""
        where = f"{self.where} with the command line's executor options"
        if plugin is not None and plugin != self.plugin:
            _check_name(plugin, "--executor", "executor names")
            return ExecutorSpec(plugin, dict(settings), f"--executor {plugin}")
        if not settings:
            return self
        return ExecutorSpec(self.plugin, {**self.settings, **settings}, where)


@dataclass(frozen=True)
class Project:
    """A loaded `tuneboard.toml`: the `[project]` settings and the experiments' raw tables.

    `devices` is ``"auto"`` or a tuple like ``("cuda:0", "cuda:1")``; paths are absolute.
    Experiments are validated only when asked for, against the loaded plugins.
    `corrections` is the file reviews write label corrections to (None: the default,
    ``corrections.jsonl`` in the project folder; see `corrections_file`).
    """

    root: Path
    file: Path
    name: str
    database: Path
    runs_dir: Path
    devices: str | tuple[str, ...] = "auto"
    slots_per_device: int = 1
    cpu_slots: int = 1
    corrections: Path | None = None
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    experiment_tables: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def corrections_file(self) -> Path:
        """The project's corrections file (it may not exist yet)."""
        return self.corrections or self.root / DEFAULT_CORRECTIONS

    @property
    def experiment_names(self) -> tuple[str, ...]:
        """The experiments' names in file order."""
        return tuple(self.experiment_tables)

    def raw_experiment(self, name: str) -> dict[str, Any]:
        """A copy of the experiment's table as written in the file; ConfigError if unknown."""
        if name not in self.experiment_tables:
            available = ", ".join(self.experiment_tables) or "none (add an [experiments.NAME])"
            hint = did_you_mean(name, self.experiment_names)
            raise ConfigError(
                f"{self.file.name}: no experiment {name!r}{hint}; available: {available}"
            )
        return copy.deepcopy(dict(self.experiment_tables[name]))

    def experiment(
        self, name: str, registry: PluginRegistry, overrides: Sequence[str] = ()
    ) -> ExperimentConfig:
        """The experiment `name` with `--set KEY=VALUE` `overrides` applied, fully validated."""
        table = apply_overrides(self.raw_experiment(name), overrides, registry)
        return experiment_from_raw(self, name, table, registry)


def find_project(start: Path) -> Path:
    """The nearest folder from `start` upwards that holds a `tuneboard.toml`."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(f"no {CONFIG_FILE} in {start} or any parent folder")


def load_project(root_or_file: Path) -> Project:
    """Read and check a project's `tuneboard.toml` (given its folder or the file itself)."""
    path = Path(root_or_file).resolve()
    file = path / CONFIG_FILE if path.is_dir() else path
    label = file.name
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_error(label, exc)) from None
    except RecursionError:
        raise ConfigError(f"{label}: values are nested too deeply") from None

    unknown = [key for key in data if key not in ("project", "experiments")]
    if unknown:
        key = unknown[0]
        hint = did_you_mean(key, ["project", "experiments"])
        raise ConfigError(
            f"{label}: unknown top-level key {key!r}{hint}; "
            "a tuneboard.toml holds only [project] and [experiments.NAME] tables"
        )
    root = file.parent
    settings = _table(data.get("project", {}), f"{label}: key 'project'", "[project]")
    keys = build_params(_ProjectKeys, settings, f"{label}: [project]")
    return Project(
        root=root,
        file=file,
        name=keys.name or root.name,
        database=_inside(root, keys.database, f"{label}: [project]", "database"),
        runs_dir=_inside(root, keys.runs_dir, f"{label}: [project]", "runs_dir"),
        devices=_devices(keys.devices, f"{label}: [project]"),
        slots_per_device=keys.slots_per_device,
        cpu_slots=keys.cpu_slots,
        corrections=_inside(root, keys.corrections, f"{label}: [project]", "corrections"),
        executor=_executor(keys.executor, f"{label}: [project.executor]"),
        experiment_tables=_experiment_tables(data.get("experiments", {}), label),
    )


def _syntax_error(label: str, exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    found = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", text)
    if found:
        return f"{label}: line {found[2]}, column {found[3]}: {found[1]}"
    found = re.fullmatch(r"(?s)(.*) \(at end of document\)", text)
    if found:
        return f"{label}: at the end of the file: {found[1]}"
    return f"{label}: {text}"


def _table(value: Any, where: str, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table ({example}), got {value!r}")
    return value


def _inside(root: Path, value: str, where: str, key: str) -> Path:
    """`value` as an absolute path, which must lie inside the project folder `root`."""
    path = Path(os.path.normpath(root / value)) if value.strip() else root
    if path == root or not path.is_relative_to(root):
        raise ConfigError(
            f"{where}: key {key!r} must be a path inside the project folder, got {value!r}"
        )
    return path


def _devices(value: str | list[str], where: str) -> str | tuple[str, ...]:
    if value == "auto":
        return "auto"
    example = 'must be "auto" or a list like ["cpu"] or ["cuda:0", "cuda:1"]'
    if isinstance(value, str) or not value:
        raise ConfigError(f"{where}: key 'devices' {example}, got {value!r}")
    for device in value:
        if not _DEVICE.fullmatch(device):
            raise ConfigError(
                f"{where}: key 'devices': unknown device {device!r} (use cpu, mps or cuda:N)"
            )
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: key 'devices' lists a device twice: {value!r}")
    return tuple(value)


def _executor(value: str | dict[str, Any], where: str) -> ExecutorSpec:
    if isinstance(value, str):
        name = _check_name(value, f"{where}: key 'executor'", "executor names")
        return ExecutorSpec(name, {}, where)
    plugin = value.get("plugin")
    if not isinstance(plugin, str):
        raise ConfigError(
            f"{where}: key 'plugin' must name the executor, e.g. plugin = \"ray\", got {plugin!r}"
        )
    _check_name(plugin, f"{where}: key 'plugin'", "executor names")
    _check_plain(value, where, "")
    settings = {key: item for key, item in value.items() if key != "plugin"}
    return ExecutorSpec(plugin, settings, where)


def parse_executor_settings(texts: Sequence[str]) -> dict[str, Any]:
    """`--executor-set KEY=VALUE` options as a table (VALUE read as TOML, else as text)."""
    settings: dict[str, Any] = {}
    for text in texts:
        key, equals, literal = text.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(
                f"--executor-set {text}: expected KEY=VALUE, e.g. --executor-set gpus_per_run=1"
            )
        settings[key] = _parse_value(literal.strip())
    return settings


def _experiment_tables(value: Any, label: str) -> dict[str, dict[str, Any]]:
    experiments = _table(value, f"{label}: key 'experiments'", "[experiments.NAME]")
    for name, table in experiments.items():
        # The table is named by the error's repr of `name`: a raw name may hold newlines.
        _check_name(name, f"{label}: [experiments]", "experiment names")
        _table(table, f"{label}: experiments.{name}", f"[experiments.{name}]")
    return experiments


def _check_name(name: Any, where: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{where}: {what} may use only letters, digits, '_', '.' and '-' and must start "
            f"with a letter, digit or '_' (they name folders), got {name!r}"
        )
    return name


# --- experiments --------------------------------------------------------------------------


def experiment_from_raw(
    project: Project, name: str, raw: Mapping[str, Any], registry: PluginRegistry
) -> ExperimentConfig:
    """Validate an experiment's already-resolved table (e.g. a stored run's, to re-launch it)."""
    table = f"{project.file.name}: [experiments.{name}"
    where = f"{table}]"
    _check_name(name, where, "experiment names")
    _check_plain(raw, where, "")
    keys = build_params(_ExperimentKeys, raw, where)
    metrics = _metrics(keys.metrics, keys.task, registry, where)
    return ExperimentConfig(
        name=name,
        description=keys.description,
        model=_model(keys.model, where, f"{table}.model]"),
        task=keys.task,
        dataset=_dataset(keys.dataset, registry, f"{table}.dataset]"),
        metrics=metrics,
        max_length=keys.max_length,
        seed=keys.seed,
        stages=_stages(keys.stages, registry, table),
        headline=keys.headline or f"test/{metrics[0]}",
        # A run is one point: the sweep table that made it is not part of its config.
        raw={key: copy.deepcopy(value) for key, value in raw.items() if key != "sweep"},
    )


def _check_plain(value: Any, where: str, path: str) -> None:
    """Refuse the TOML values that JSON can't store or that make no sense as settings."""
    if isinstance(value, datetime.date | datetime.time):
        raise ConfigError(f"{where}: key {path!r}: dates and times are not supported; quote it")
    if isinstance(value, float) and math.isnan(value):
        raise ConfigError(f"{where}: key {path!r}: nan is not a valid value")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, where, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, where, f"{path}.{index}")


def _model(value: str | dict[str, Any], experiment_where: str, where: str) -> ModelSpec:
    if isinstance(value, str):
        return ModelSpec(source=_source(value, experiment_where, "model"))
    keys = build_params(_ModelKeys, value, where)
    source = _source(keys.source, where, "source") if keys.source is not None else None
    tokenizer = _source(keys.tokenizer, where, "tokenizer") if keys.tokenizer is not None else None
    if keys.config is not None:
        model_type = keys.config.get("model_type")
        if not isinstance(model_type, str) or not model_type:
            raise ConfigError(
                f"{where}: key 'config' needs a 'model_type' string, e.g. model_type = \"bert\""
            )
        if source is None and tokenizer is None:
            raise ConfigError(
                f"{where}: a model built from 'config' needs a 'tokenizer' (or a 'source')"
            )
    elif source is None:
        raise ConfigError(
            f"{where}: needs 'source' (a model to start from) or 'config' "
            "(a model_type and its settings, for a new randomly initialised model)"
        )
    return ModelSpec(source=source, config=keys.config, tokenizer=tokenizer)


def _source(value: str, where: str, key: str) -> str:
    if not value.strip():
        raise ConfigError(f"{where}: key {key!r} must not be empty")
    if value.startswith("package:"):
        subpath = value.partition("/")[2]
        if not _PACKAGE_SOURCE.fullmatch(value) or ".." in subpath.split("/"):
            raise ConfigError(
                f"{where}: key {key!r} must look like package:MODULE/SUBPATH "
                f"(a folder inside an installed package), got {value!r}"
            )
    return value


def _plugin_name(table: Mapping[str, Any], kind: str, available: Sequence[str], where: str) -> str:
    plugin = table.get("plugin")
    if plugin is None:
        names = ", ".join(sorted(available)) or "(none)"
        raise ConfigError(f"{where}: missing required key 'plugin' (the {kind} plugin: {names})")
    if not isinstance(plugin, str):
        raise ConfigError(f"{where}: key 'plugin' must be a string, got {plugin!r}")
    return plugin


def _build(params_cls: type, table: Mapping[str, Any], extra: Sequence[str], where: str) -> Any:
    """Validate a plugin table whose `extra` keys (plugin, name) are handled by the caller."""
    specs = {spec.name: spec for spec in describe_params(params_cls)}
    accepted = sorted([*specs, *extra])
    for key in table:
        if key not in specs and key not in extra:
            hint = did_you_mean(key, accepted)
            raise ConfigError(
                f"{where}: unknown key {key!r}{hint}; accepted keys: {', '.join(accepted)}"
            )
    values = {key: value for key, value in table.items() if key not in extra}
    return build_params(params_cls, values, where)


def _dataset(table: dict[str, Any], registry: PluginRegistry, where: str) -> DatasetSpec:
    plugin = _plugin_name(table, "dataset", list(registry.datasets), where)
    try:
        dataset_cls = registry.dataset(plugin)
    except PluginError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    params = _build(dataset_cls.Params, table, ("plugin",), f"{where} ({plugin})")
    return DatasetSpec(plugin=plugin, params=params)


def _metrics(names: list[str], task: str, registry: PluginRegistry, where: str) -> tuple[str, ...]:
    if not names:
        raise ConfigError(f"{where}: key 'metrics' must name at least one metric")
    for name in names:
        try:
            metric_cls = registry.metric(name)
        except PluginError as exc:
            raise ConfigError(f"{where}: key 'metrics': {exc}") from None
        if task not in metric_cls.tasks:
            raise ConfigError(
                f"{where}: key 'metrics': metric {name!r} does not support task {task!r} "
                f"(it supports {', '.join(metric_cls.tasks)})"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: key 'metrics' names a metric twice: {names!r}")
    return tuple(names)


def _stages(value: Any, registry: PluginRegistry, experiment: str) -> tuple[StageSpec, ...]:
    """The stages of `value`; `experiment` is the start of a where, ``FILE: [experiments.X``."""
    if not isinstance(value, list) or not value:
        array = experiment.partition("[")[2] + ".stages"
        raise ConfigError(
            f"{experiment}]: key 'stages' must be a non-empty array of tables "
            f"([[{array}]]), got {value!r}"
        )
    specs = []
    for index, table in enumerate(value):
        where = f"{experiment}.stages.{index}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: each stage must be a table, got {table!r}")
        plugin = _plugin_name(table, "stage", list(registry.stages), where)
        try:
            stage_cls = registry.stage(plugin)
        except PluginError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        name = table.get("name", plugin)
        _check_name(name, f"{where}: key 'name'", "stage names")
        where = f"{where} ({name})"
        params = _build(stage_cls.Params, table, _STAGE_KEYS, where)
        strategy_where = f"{experiment}.stages.{index}.strategy_params]"
        params = _strategy(params, registry, where, strategy_where)
        specs.append(StageSpec(index=index, plugin=plugin, name=name, params=params))
    return tuple(specs)


def _strategy(params: Any, registry: PluginRegistry, stage_where: str, where: str) -> Any:
    """Check a stage's `strategy` and `strategy_params`, when its Params declares them.

    `strategy_params` is stored back as the plain dict of validated values (defaults
    included), from which the stage rebuilds the strategy.
    """
    fields = {f.name for f in dataclasses.fields(params) if f.init}
    strategy = getattr(params, "strategy", None)
    if not {"strategy", "strategy_params"} <= fields or not isinstance(strategy, str):
        return params
    try:
        strategy_cls = registry.strategy(strategy)
    except PluginError as exc:
        raise ConfigError(f"{stage_where}: key 'strategy': {exc}") from None
    values = params.strategy_params or {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{stage_where}: key 'strategy_params' must be a table")
    built: Any = build_params(strategy_cls.Params, values, f"{where} ({strategy})")
    return dataclasses.replace(params, strategy_params=params_to_dict(built))


# --- overrides ----------------------------------------------------------------------------


@dataclass
class _Override:
    text: str
    path: list[str | int]
    value: Any
    literal: str


def apply_overrides(
    table: Mapping[str, Any], overrides: Sequence[str], registry: PluginRegistry | None = None
) -> dict[str, Any]:
    """A copy of an experiment's `table` with `--set KEY=VALUE` overrides applied.

    KEY is a dotted path in the experiment (``seed``, ``dataset.train``, ``stages.1.lr`` with a
    0-based index or ``stages.finetune.lr`` with a stage's unique name, ``model.config.X``);
    VALUE is read as a TOML value, or taken as a plain string when it is not one. With a
    `registry`, keys and values meant for a plugin are checked here, so errors name the
    override.
    """
    result = copy.deepcopy(dict(table))
    applied = [_apply(result, text) for text in overrides]
    if registry is not None:
        for override in applied:
            _check_override(result, override, registry)
    return result


def _parse_value(literal: str) -> Any:
    try:
        document = tomllib.loads(f"v = {literal}")
    except (ValueError, RecursionError):
        return literal
    value = document.get("v")
    if set(document) != {"v"} or _has_temporal(value):
        return literal
    return value


def _has_temporal(value: Any) -> bool:
    if isinstance(value, datetime.date | datetime.time):
        return True
    if isinstance(value, dict):
        return any(_has_temporal(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_temporal(item) for item in value)
    return False


def _apply(table: dict[str, Any], text: str) -> _Override:
    key, equals, literal = text.partition("=")
    where = f"--set {text}"
    if not equals:
        raise ConfigError(f"{where}: expected KEY=VALUE, e.g. --set stages.1.lr=3e-5")
    segments = key.strip().split(".")
    if not all(segments):
        raise ConfigError(f"{where}: {key.strip()!r} is not a dotted key like stages.1.lr")
    literal = literal.strip()
    value = _parse_value(literal)
    top = segments[0]
    if top not in _EXPERIMENT_SPECS:
        hint = did_you_mean(top, _EXPERIMENT_SPECS)
        accepted = ", ".join(sorted(_EXPERIMENT_SPECS))
        raise ConfigError(f"{where}: unknown key {top!r}{hint}; accepted keys: {accepted}")
    path: list[str | int] = list(segments)
    if len(segments) > 1:
        if top in _SCALAR_KEYS:
            raise ConfigError(f"{where}: {top!r} is a value, not a table")
        if top == "stages":
            index, rest = _select_stage(table.get("stages"), segments[1:], where)
            path = ["stages", index, *rest]
        elif top == "model":
            if isinstance(table.get("model"), str):
                table["model"] = {"source": table["model"]}
            field_name = segments[1]
            if field_name not in ("source", "config", "tokenizer"):
                hint = did_you_mean(field_name, ["source", "config", "tokenizer"])
                raise ConfigError(
                    f"{where}: unknown key {field_name!r} in model{hint}; "
                    "accepted keys: config, source, tokenizer"
                )
            if field_name != "config" and len(segments) > 2:
                raise ConfigError(f"{where}: model.{field_name} is a value, not a table")
    _set(table, path, value, where)
    return _Override(text, path, value, literal)


def _stage_name(table: Any) -> str | None:
    if not isinstance(table, dict):
        return None
    name = table.get("name", table.get("plugin"))
    return name if isinstance(name, str) else None


def _select_stage(stages: Any, segments: list[str], where: str) -> tuple[int, list[str]]:
    """The stage index and the rest of the path, from `1.lr` or `finetune.lr`."""
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{where}: the experiment has no stages")
    count = len(stages)
    if _INDEX.fullmatch(segments[0]):
        index = int(segments[0])
        if index >= count:
            span = "0" if count == 1 else f"0-{count - 1}"
            plural = "stage" if count == 1 else "stages"
            raise ConfigError(f"{where}: the experiment has {count} {plural} ({span})")
        rest = segments[1:]
    else:
        names = [_stage_name(stage) for stage in stages]
        joined = ".".join(segments)
        # Stage names may contain dots: the longest name that prefixes the path wins.
        found = [n for n in set(names) if n and (joined == n or joined.startswith(n + "."))]
        if not found:
            listing = ", ".join(f"{i} ({n})" for i, n in enumerate(names))
            hint = did_you_mean(segments[0], [n for n in names if n])
            raise ConfigError(
                f"{where}: no stage is named {segments[0]!r}{hint}; stages: {listing}"
            )
        name = max(found, key=len)
        indices = [i for i, n in enumerate(names) if n == name]
        if len(indices) > 1:
            listed = ", ".join(str(i) for i in indices)
            raise ConfigError(
                f"{where}: {len(indices)} stages are named {name!r} ({listed}); use the index"
            )
        index = indices[0]
        rest = joined[len(name) + 1 :].split(".") if joined != name else []
    if not rest:
        raise ConfigError(f"{where}: name a key of the stage, e.g. stages.{index}.lr=3e-5")
    if not isinstance(stages[index], dict):
        raise ConfigError(f"{where}: stage {index} is not a table")
    return index, rest


def _set(table: dict[str, Any], path: Sequence[str | int], value: Any, where: str) -> None:
    """Set `value` at `path`, creating missing tables; an int in `path` is a stage index."""
    node: Any = table
    for depth, key in enumerate(path):
        if isinstance(key, int):
            node = node[key]  # checked by _select_stage
            continue
        if not isinstance(node, dict):
            dotted = ".".join(str(k) for k in path[:depth])
            raise ConfigError(f"{where}: {dotted} is a value, not a table")
        if depth == len(path) - 1:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def _check_override(table: dict[str, Any], override: _Override, registry: PluginRegistry) -> None:
    """Check an override's key and value against the declaration of what it sets.

    Keys and values of plugin tables are checked against the plugin's `Params`, and plugin
    names against the registry, so that the error names the override; anything else is
    left to the validation of the whole experiment.
    """
    path, value = override.path, override.value
    where = f"--set {override.text}"
    key = path[-1]
    specs: Mapping[str, ParamSpec] | None = None
    extra: tuple[str, ...] = ()
    if len(path) == 1 and key in _SCALAR_KEYS:
        specs = _EXPERIMENT_SPECS
    elif path == ["dataset", "plugin"]:
        _check_plugin(registry.dataset, value, where)
    elif path[0] == "dataset" and len(path) == 2:
        plugin = _get(table, ["dataset", "plugin"])
        if isinstance(plugin, str) and plugin in registry.datasets:
            specs, extra = _specs(registry.datasets[plugin].Params), ("plugin",)
            where = f"{where} (dataset plugin {plugin!r})"
    elif path[0] == "stages" and len(path) == 3 and key == "plugin":
        _check_plugin(registry.stage, value, where)
    elif path[0] == "stages" and len(path) in (3, 4) and key != "name":
        plugin = _get(table, ["stages", path[1], "plugin"])
        known = isinstance(plugin, str) and plugin in registry.stages
        stage_specs = _specs(registry.stages[plugin].Params) if known else {}
        declares_strategy = {"strategy", "strategy_params"} <= stage_specs.keys()
        if len(path) == 3 and stage_specs:
            specs, extra = stage_specs, _STAGE_KEYS
            where = f"{where} (stage plugin {plugin!r})"
        elif path[2] == "strategy_params" and declares_strategy:
            strategy = _get(table, ["stages", path[1], "strategy"])
            if strategy is None:
                strategy = stage_specs["strategy"].default
            if isinstance(strategy, str) and strategy in registry.strategies:
                specs = _specs(registry.strategies[strategy].Params)
                where = f"{where} (strategy plugin {strategy!r})"
        if len(path) == 3 and key == "strategy" and declares_strategy:
            _check_plugin(registry.strategy, value, f"--set {override.text}")
    if specs is None or not isinstance(key, str):
        return
    if key not in specs:
        accepted = sorted([*specs, *extra])
        hint = did_you_mean(key, accepted)
        raise ConfigError(
            f"{where}: unknown key {key!r}{hint}; accepted keys: {', '.join(accepted)}"
        )
    try:
        check_value(specs[key], value, where)
    except ConfigError as error:
        # `--set description=2024` means the text "2024" when only a string fits.
        if value == override.literal:
            raise
        try:
            check_value(specs[key], override.literal, where)
        except ConfigError:
            raise error from None
        _set(table, path, override.literal, where)
    if path == ["metrics"] and isinstance(value, list):
        for name in value:
            _check_plugin(registry.metric, name, where)


def _check_plugin(lookup: Callable[[str], object], name: Any, where: str) -> None:
    if isinstance(name, str):
        try:
            lookup(name)
        except PluginError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _get(table: Mapping[str, Any], path: Sequence[str | int]) -> Any:
    """The value at `path`, or None where the path does not lead anywhere."""
    node: Any = table
    for key in path:
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
        elif isinstance(key, str) and isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def _specs(params_cls: type) -> dict[str, ParamSpec]:
    return {spec.name: spec for spec in describe_params(params_cls)}
