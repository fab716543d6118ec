"""Checks of a run's model and devices that need no training, made before a run is written.

`prepare_run` calls them, so `tuneboard run`, sweeps, `--set` overrides and the app's launch
all refuse the same inputs, each in one line naming the file and key: a model or tokenizer
that is neither a local folder nor in the local Hugging Face cache (nor on a reachable Hub),
a model `config` transformers refuses, `top_k` above the model's layers, and devices that
torch does not see. The model is built on torch's meta device: no weights, no memory.
transformers and torch are imported here, never at CLI start-up.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneboard.config import LOCAL_EXECUTOR, ExperimentConfig, ModelSpec, Project
from tuneboard.engine.models import (
    MODEL_LOAD_LOCK,
    check_safe_weights,
    hub_cache_folder,
    label_kwargs,
    load_local,
    model_class,
    quiet_transformers,
    resolve_model_source,
)
from tuneboard.engine.tasks import build_task
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError, TuneboardError, one_line

HUB_TIMEOUT_S = 10.0
"""How long asking the Hub about a model missing from the local cache may take (once, no retry)."""

# Keys of a model config that count things or size them: zero or less builds no sane model.
_POSITIVE_SUFFIXES = ("_size", "_layers", "_heads", "_dim", "_embd", "_positions", "_ctx")


@dataclass(frozen=True)
class _Keys:
    """Where the model's keys are in the project file, for error messages."""

    where: str
    source: str
    tokenizer: str = "tokenizer"
    config: str = "config"


def check_devices(project: Project) -> None:
    """Refuse a `devices` entry that torch on this machine does not see (local executor only:
    a remote executor's runs use the devices of the machine that runs them)."""
    if project.executor.plugin != LOCAL_EXECUTOR or isinstance(project.devices, str):
        return
    import torch

    where = f"{project.file.name}: [project]: key 'devices'"
    for device in project.devices:
        kind, _, index = device.partition(":")
        if kind == "cuda":
            count = torch.cuda.device_count()
            if int(index) >= count:
                seen = (
                    "this machine has no CUDA GPU"
                    if count == 0
                    else f"torch sees {count} CUDA GPU(s): cuda:0 to cuda:{count - 1}"
                )
                raise ConfigError(f"{where}: {device!r} is not available ({seen})")
        elif kind == "mps" and not torch.backends.mps.is_available():
            raise ConfigError(f"{where}: 'mps' is not available on this machine")


def check_ranks(project: Project, experiment: ExperimentConfig) -> None:
    """Refuse a stage whose global `batch_size` does not split evenly across `gpus` ranks."""
    if experiment.gpus <= 1:
        return
    for spec in experiment.stages:
        size = getattr(spec.params, "batch_size", None)
        if isinstance(size, int) and size % experiment.gpus:
            where = f"{project.file.name}: [experiments.{experiment.name}.stages.{spec.index}]"
            raise ConfigError(
                f"{where} ({spec.name}): key 'batch_size': {size} does not split evenly across "
                f"gpus = {experiment.gpus} (batch_size is the global batch; use a multiple of "
                f"{experiment.gpus})"
            )


def check_model(
    project: Project, experiment: ExperimentConfig, registry: PluginRegistry, labels: list[str]
) -> None:
    """Refuse a model whose source, tokenizer or config cannot work, and `top_k` stages that
    ask for more layers than the model has; each error names the file, table and key."""
    keys = _keys(project, experiment)
    spec = experiment.model
    local = project.executor.plugin == LOCAL_EXECUTOR
    source = _locate(spec.source, keys.source, project, keys, local=local)
    tokenizer = _locate(spec.tokenizer, keys.tokenizer, project, keys, local=local)
    if spec.source and spec.config is None:
        try:
            check_safe_weights(spec.source, project.root)
        except ConfigError as error:
            raise ConfigError(f"{keys.where}: key {keys.source!r}: {error}") from None
    top_k = _top_k_stages(project, experiment)
    if spec.config is None and not top_k:
        return  # a pretrained model: its own config is checked when it loads
    layers = _layers(
        project,
        experiment,
        registry,
        labels,
        source,
        tokenizer or source,
        keys,
        need_layers=bool(top_k),
    )
    for where, wanted in top_k:
        if layers is not None and wanted > layers:
            raise ConfigError(
                f"{where}: key 'top_k' must be at most the model's {layers} layers, got {wanted}"
            )


def _keys(project: Project, experiment: ExperimentConfig) -> _Keys:
    experiment_where = f"{project.file.name}: [experiments.{experiment.name}"
    if isinstance(experiment.raw.get("model"), str):
        return _Keys(f"{experiment_where}]", "model")
    return _Keys(f"{experiment_where}.model]", "source")


def _locate(
    value: str | None, key: str, project: Project, keys: _Keys, *, local: bool
) -> str | None:
    """Where `value` is on this machine: a folder, or a Hugging Face id that is in the cache
    or (asked once) on the Hub; None when the value is unset or a remote executor loads it."""
    if not value:
        return None
    try:
        location = resolve_model_source(value, project.root)
        if Path(location).is_absolute():
            return location
        if not local:
            return None  # a remote executor's machine has its own cache
        return _hub_location(location)
    except ConfigError as error:
        raise ConfigError(f"{keys.where}: key {key!r}: {error}") from None


def _hub_location(repo_id: str) -> str | None:
    """The cached folder of a Hugging Face id; None when the Hub has it but the cache not."""
    folder = hub_cache_folder(repo_id)
    if folder is not None:
        return folder
    from huggingface_hub import constants, model_info
    from huggingface_hub.errors import RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        raise ConfigError(
            f"{repo_id!r} is not a local folder nor in the local Hugging Face cache, and "
            "HF_HUB_OFFLINE is set (download it first: huggingface-cli download ID)"
        )
    try:
        model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise ConfigError(
            f"{repo_id!r} is not a local folder, nor in the local Hugging Face cache, "
            "nor a model on the Hugging Face Hub"
        ) from None
    except Exception as error:  # no network, a bad id, a gated model: one line, no retries
        raise ConfigError(
            f"{repo_id!r} is not a local folder nor in the local Hugging Face cache, and "
            f"the Hugging Face Hub cannot tell: {one_line(error)}"
        ) from None
    return None


def _top_k_stages(project: Project, experiment: ExperimentConfig) -> list[tuple[str, int]]:
    """``(where, top_k)`` of each stage that trains its top k layers."""
    from tuneboard.engine.quantization import train_mode

    stages = []
    for spec in experiment.stages:
        if train_mode(spec.params) == "top_k":
            where = f"{project.file.name}: [experiments.{experiment.name}.stages.{spec.index}]"
            stages.append((f"{where} ({spec.name})", int(spec.params.top_k)))
    return stages


_LAYERS: dict[tuple[Any, ...], int | None] = {}
"""`_layers` of the models already checked in this process (sweeps prepare many runs)."""


def _layers(
    project: Project,
    experiment: ExperimentConfig,
    registry: PluginRegistry,
    labels: list[str],
    source: str | None,
    tokenizer: str | None,
    keys: _Keys,
    *,
    need_layers: bool,
) -> int | None:
    """Build the model's config (and the model, on the meta device) as the run will; return
    its number of encoder layers when `need_layers`, or None when it cannot be known here."""
    spec = experiment.model
    task_plugin = build_task(experiment, registry)
    config_json = json.dumps(spec.config, sort_keys=True) if spec.config is not None else None
    key = (
        project.root,
        experiment.task,
        type(task_plugin),
        repr(experiment.task_params),
        tuple(labels),
        source,
        tokenizer,
        config_json,
        need_layers,
    )
    if key in _LAYERS:
        return _LAYERS[key]
    try:
        with MODEL_LOAD_LOCK:
            layers = _build(experiment.task, task_plugin, labels, source, tokenizer, spec)
            layers = layers if need_layers else None
    except ConfigError as error:
        raise ConfigError(f"{keys.where}: {error}") from None
    if len(_LAYERS) >= 64:
        _LAYERS.clear()
    _LAYERS[key] = layers
    return layers


def _build(
    task: str,
    task_plugin: Any,
    labels: list[str],
    source: str | None,
    tokenizer: str | None,
    spec: ModelSpec,
) -> int | None:
    """The number of encoder layers of the model built on the meta device; None when its
    config is not on this machine (a Hub id a remote executor loads) or it has no layer list."""
    quiet_transformers()
    model_cls = task_plugin.model_class() if task_plugin is not None else model_class(task)
    kwargs = label_kwargs(task, labels) if task_plugin is None else {}
    if spec.config is not None:
        values = dict(spec.config)
        _check_sizes(values)
        if tokenizer is not None:
            _prepare_config(values, tokenizer, task_plugin)
        config = _config_for_model(values, kwargs)
    elif source is not None:
        config = _pretrained_config(source)
        if config is None:
            return None
    else:
        return None
    model = _meta_model(model_cls, config, "config" if spec.config is not None else "source")
    from tuneboard.engine.trainable import encoder_layers

    try:
        return encoder_layers(model)[1]
    except ConfigError:
        return None  # only `top_k` needs layers, and `freeze_except` says so when it runs


def _check_sizes(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        counts = key.endswith(_POSITIVE_SUFFIXES) or key.startswith(("num_", "n_"))
        if counts and isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ConfigError(f"key 'config': {key} must be at least 1, got {value}")


def _prepare_config(values: dict[str, Any], tokenizer_location: str, task_plugin: Any) -> None:
    """Fill in what the run takes from the tokenizer: its vocabulary, padding and the task's
    own keys (as `load_model_and_tokenizer` does)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = load_local(AutoTokenizer, tokenizer_location)
    except Exception as error:  # transformers raises many kinds for a folder it cannot read
        raise ConfigError(f"key 'tokenizer': cannot load it: {one_line(error)}") from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if task_plugin is not None:
        task_plugin.prepare(tokenizer, values)
    values.setdefault("vocab_size", len(tokenizer))
    values.setdefault("pad_token_id", tokenizer.pad_token_id)


def _config_for_model(values: dict[str, Any], kwargs: Mapping[str, Any]) -> Any:
    from transformers import AutoConfig

    model_type = values.pop("model_type", None)
    try:
        return AutoConfig.for_model(model_type, **values, **kwargs)
    except Exception as error:  # ValueError for an unknown model_type, TypeError, KeyError...
        raise ConfigError(f"key 'config': {one_line(error)}") from None


def _pretrained_config(location: str) -> Any:
    """The config of a local or cached model (None for a folder without one, e.g. a kept
    adapter: its own load reports on it)."""
    from transformers import AutoConfig

    if not (Path(location) / "config.json").is_file():
        return None
    try:
        return load_local(AutoConfig, location)
    except Exception as error:
        raise ConfigError(f"key 'source': cannot read its config: {one_line(error)}") from None


def _meta_model(model_cls: Any, config: Any, key: str) -> Any:
    """The model built from `config` on the meta device: every size checked, no weights."""
    import torch

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            return model_cls.from_config(config)
    except TuneboardError:
        raise
    except Exception as error:  # what the model's constructor refuses: sizes, heads, ...
        raise ConfigError(f"key {key!r}: transformers refuses it: {one_line(error)}") from None
