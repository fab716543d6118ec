"""`--set KEY=VALUE` overrides: applied to an experiment's table, checked where they can be.

KEY is a dotted path in the experiment; VALUE is read as TOML. With the loaded plugins at hand,
keys and values meant for a plugin are checked against its `Params`, so the error names the
override rather than the file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuneboard.config.experiment import EXPERIMENT_SPECS, SCALAR_KEYS, STAGE_KEYS
from tuneboard.config.toml import parse_value
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError, PluginError
from tuneboard.sdk.params import ParamSpec, check_value, describe_params, did_you_mean

_INDEX = re.compile(r"[0-9]+")


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


def _apply(table: dict[str, Any], text: str) -> _Override:
    key, equals, literal = text.partition("=")
    where = f"--set {text}"
    if not equals:
        raise ConfigError(f"{where}: expected KEY=VALUE, e.g. --set stages.1.lr=3e-5")
    segments = key.strip().split(".")
    if not all(segments):
        raise ConfigError(f"{where}: {key.strip()!r} is not a dotted key like stages.1.lr")
    literal = literal.strip()
    value = parse_value(literal)
    top = segments[0]
    if top not in EXPERIMENT_SPECS:
        hint = did_you_mean(top, EXPERIMENT_SPECS)
        accepted = ", ".join(sorted(EXPERIMENT_SPECS))
        raise ConfigError(f"{where}: unknown key {top!r}{hint}; accepted keys: {accepted}")
    path: list[str | int] = list(segments)
    if len(segments) > 1:
        if top in SCALAR_KEYS:
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
        elif top == "task":
            if isinstance(table.get("task"), str):
                table["task"] = {"plugin": table["task"]}
            if len(segments) > 2:
                raise ConfigError(f"{where}: task.{segments[1]} is a value, not a table")
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
    if len(path) == 1 and key in SCALAR_KEYS:
        specs = EXPERIMENT_SPECS
    elif path == ["dataset", "plugin"]:
        _check_plugin(registry.dataset, value, where)
    elif path[0] == "dataset" and len(path) == 2:
        plugin = _get(table, ["dataset", "plugin"])
        if isinstance(plugin, str) and plugin in registry.datasets:
            specs, extra = _specs(registry.datasets[plugin].Params), ("plugin",)
            where = f"{where} (dataset plugin {plugin!r})"
    elif path[0] == "task" and len(path) == 2 and key != "plugin":
        plugin = _get(table, ["task", "plugin"])
        if isinstance(plugin, str) and plugin in registry.tasks:
            specs, extra = _specs(registry.tasks[plugin].Params), ("plugin",)
            where = f"{where} (task plugin {plugin!r})"
    elif path[0] == "stages" and len(path) == 3 and key == "plugin":
        _check_plugin(registry.stage, value, where)
    elif path[0] == "stages" and len(path) in (3, 4) and key != "name":
        plugin = _get(table, ["stages", path[1], "plugin"])
        known = isinstance(plugin, str) and plugin in registry.stages
        stage_specs = _specs(registry.stages[plugin].Params) if known else {}
        declares_strategy = {"strategy", "strategy_params"} <= stage_specs.keys()
        if len(path) == 3 and stage_specs:
            specs, extra = stage_specs, STAGE_KEYS
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
