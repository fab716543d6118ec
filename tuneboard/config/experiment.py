"""Experiments: an `[experiments.NAME]` table -> a validated `ExperimentConfig`.

The model, dataset and stage tables are checked against the loaded plugins' `Params`, so
every error names the file, the table and the key at fault.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneboard.config.checks import check_name, check_plain
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.contracts import CLASSIFICATION_TASKS, SEQUENCE_CLASSIFICATION
from tuneboard.sdk.errors import ConfigError, PluginError
from tuneboard.sdk.params import build_params, describe_params, did_you_mean, param, params_to_dict

if TYPE_CHECKING:
    from tuneboard.config.project import Project

LOSS_VALUES = ("loss", "perplexity")
"""Values that tasks other than classification log at every evaluation, named like metrics."""

_PACKAGE_SOURCE = re.compile(r"package:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(/.*)?")

PARALLEL_MODES = ("ddp", "fsdp")
"""How the ranks of a run with ``gpus > 1`` share the model (the `parallel` key)."""

RUN_PREFIX = "run:"
"""A model source naming another run's model: ``run:RUN_ID`` or ``run:RUN_ID/STAGE``."""

_RUN_SOURCE = re.compile(r"run:(?P<run>[A-Za-z0-9][A-Za-z0-9._-]*)(?:/(?P<stage>[^/]+))?")


def parse_run_source(value: str) -> tuple[str, str | None] | None:
    """``(run id or prefix, stage or None)`` of a ``run:RUN_ID[/STAGE]`` source; None when
    `value` is not one (or is malformed: `_source` refuses those)."""
    match = _RUN_SOURCE.fullmatch(value)
    if match is None:
        return None
    return match["run"], match["stage"]


@dataclass(frozen=True)
class ModelSpec:
    """Where a run's model and tokenizer come from.

    `source` is a Hugging Face id, a local path (relative to the project),
    ``package:MODULE/SUBPATH`` for a model folder shipped inside an installed Python package,
    or ``run:RUN_ID[/STAGE]`` for another run's exported model or a stage's best checkpoint
    (found in the project's database when the run is prepared).
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
    task_params: Any = None
    """The validated keys of the task plugin's table (None for the classification tasks)."""
    memory_gb: float | None = None
    """GPU memory a run needs, in GB (its own key, else the project's): a queued run waits
    until a GPU has that much free. None: no estimate, no wait."""
    gpus: int = 1
    """Devices one run trains on, data-parallel (one rank process each, when above 1)."""
    parallel: str = "ddp"
    """How the ranks of a run share the model: ``ddp`` (a whole copy each) or ``fsdp``
    (each rank holds a shard of the weights, gradients and optimizer state)."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass in every training stage (less memory)."""


# --- the keys of an experiment's tables, declared like plugin parameters -----------------


@dataclass(kw_only=True)
class _ExperimentKeys:
    description: str = param("", "one line shown in listings")
    model: str | dict[str, Any] = param(
        help="a model id, path, package:MODULE/PATH, run:RUN_ID[/STAGE], or table"
    )
    task: str | dict[str, Any] = param(
        SEQUENCE_CLASSIFICATION,
        "what the model learns: sequence-classification, token-classification, causal-lm, "
        'seq2seq or a task plugin; a table (plugin = "causal-lm" and its keys) sets its keys',
    )
    dataset: dict[str, Any] = param(help='the data: a table with plugin = "..." and its keys')
    metrics: list[str] | None = param(
        None, "metric plugins to compute (default: accuracy, or the task's default metrics)"
    )
    max_length: int = param(128, "longest input in tokens", min=8, max=8192)
    seed: int = param(42, "seed of every random choice", min=0, max=2**32 - 1)
    headline: str | None = param(None, "the metric that ranks runs (default: test/<metric>)")
    stages: Any = param(help="the pipeline: [[experiments.NAME.stages]] tables")
    sweep: dict[str, Any] | None = param(None, "a search: [experiments.NAME.sweep] (sweeps.py)")
    memory_gb: float | None = param(
        None,
        "GPU memory a run needs, in GB: queued runs wait until a GPU has that much free "
        "(default: the project's; no check on the CPU)",
        min=0.0,
        max=1e6,
    )
    gpus: int = param(
        1,
        "devices one run trains on, data-parallel: N rank processes, each with 1/N of every "
        "batch (batch_size is the global batch; on a machine without GPUs, N CPU ranks)",
        min=1,
        max=1024,
    )
    parallel: str = param(
        "ddp",
        "with gpus > 1: ddp (each rank a whole copy of the model) or fsdp (the weights, "
        "gradients and optimizer state sharded across the ranks)",
        choices=PARALLEL_MODES,
    )
    activation_checkpointing: bool = param(
        False,
        "recompute activations in the backward pass in every training stage (as each stage's "
        "gradient_checkpointing = true): less memory, slower steps",
    )


@dataclass(kw_only=True)
class _ModelKeys:
    source: str | None = param(
        None, "a model id, local path, package:MODULE/PATH or run:RUN_ID[/STAGE]"
    )
    config: dict[str, Any] | None = param(None, "model_type and settings of a new model")
    tokenizer: str | None = param(None, "where the tokenizer comes from (default: source)")


# What `--set` may set at the top of an experiment (tuneboard.config.overrides checks it).
EXPERIMENT_SPECS = {spec.name: spec for spec in describe_params(_ExperimentKeys)}
SCALAR_KEYS = (
    "description",
    "metrics",
    "max_length",
    "seed",
    "headline",
    "memory_gb",
    "gpus",
    "parallel",
    "activation_checkpointing",
)
STAGE_KEYS = ("plugin", "name")


# --- validation ----------------------------------------------------------------------------


def experiment_from_raw(
    project: Project, name: str, raw: Mapping[str, Any], registry: PluginRegistry
) -> ExperimentConfig:
    """Validate an experiment's already-resolved table (e.g. a stored run's, to re-launch it)."""
    table = f"{project.file.name}: [experiments.{name}"
    where = f"{table}]"
    check_name(name, where, "experiment names")
    check_plain(raw, where, "")
    keys = build_params(_ExperimentKeys, raw, where)
    task, task_params, default_metrics = _task(keys.task, registry, where, f"{table}.task]")
    metrics = _metrics(
        default_metrics if keys.metrics is None else keys.metrics, task, registry, where
    )
    return ExperimentConfig(
        name=name,
        description=keys.description,
        model=_model(keys.model, where, f"{table}.model]"),
        task=task,
        task_params=task_params,
        dataset=_dataset(keys.dataset, registry, f"{table}.dataset]"),
        metrics=metrics,
        max_length=keys.max_length,
        seed=keys.seed,
        stages=_checkpointed(_stages(keys.stages, registry, table), keys.activation_checkpointing),
        headline=keys.headline or f"test/{metrics[0]}",
        # A run is one point: the sweep table that made it is not part of its config.
        raw={key: copy.deepcopy(value) for key, value in raw.items() if key != "sweep"},
        memory_gb=keys.memory_gb if keys.memory_gb is not None else project.memory_gb,
        gpus=keys.gpus,
        parallel=keys.parallel,
        activation_checkpointing=keys.activation_checkpointing,
    )


def _checkpointed(stages: tuple[StageSpec, ...], on: bool) -> tuple[StageSpec, ...]:
    """With `activation_checkpointing`, every stage that has `gradient_checkpointing` on."""
    if not on:
        return stages
    changed = []
    for spec in stages:
        if "gradient_checkpointing" in {f.name for f in dataclasses.fields(spec.params)}:
            params = dataclasses.replace(spec.params, gradient_checkpointing=True)
            spec = dataclasses.replace(spec, params=params)
        changed.append(spec)
    return tuple(changed)


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
    if value.startswith(RUN_PREFIX) and parse_run_source(value) is None:
        raise ConfigError(
            f"{where}: key {key!r} must look like run:RUN_ID or run:RUN_ID/STAGE "
            f"(another run's model), got {value!r}"
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


def _task(
    value: str | dict[str, Any], registry: PluginRegistry, experiment_where: str, where: str
) -> tuple[str, Any, list[str]]:
    """The task's name, its validated parameters (None for classification) and the metrics
    an experiment gets by default."""
    if isinstance(value, str):
        name, table, where = value, {}, experiment_where
    else:
        name, table = _plugin_name(value, "task", list(registry.tasks), where), value
    if name in CLASSIFICATION_TASKS:
        if table and set(table) != {"plugin"}:
            raise ConfigError(f"{where}: task {name!r} takes no keys besides 'plugin'")
        return name, None, ["accuracy" if name == SEQUENCE_CLASSIFICATION else "entity_f1"]
    if name not in registry.tasks:
        choices = [*CLASSIFICATION_TASKS, *sorted(registry.tasks)]
        raise ConfigError(
            f"{where}: key 'task': unknown task {name!r}{did_you_mean(name, choices)}; "
            f"tasks: {', '.join(choices)}"
        )
    task_cls = registry.task(name)
    params = _build(task_cls.Params, table, ("plugin",), f"{where} ({name})")
    return name, params, list(task_cls.default_metrics)


def _metrics(names: list[str], task: str, registry: PluginRegistry, where: str) -> tuple[str, ...]:
    if not names:
        raise ConfigError(f"{where}: key 'metrics' must name at least one metric")
    for name in names:
        if name in LOSS_VALUES and task not in CLASSIFICATION_TASKS:
            continue  # every evaluation of a generation task logs them
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
        check_name(name, f"{where}: key 'name'", "stage names")
        where = f"{where} ({name})"
        params = _build(stage_cls.Params, table, STAGE_KEYS, where)
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
