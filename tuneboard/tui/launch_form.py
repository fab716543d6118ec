"""The launch form's model: which fields an experiment has, and the `--set` overrides they make.

Everything here goes through the real config path (`apply_overrides`, `Project.experiment`),
so the form accepts exactly what `tuneboard run --set` accepts, with the same messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tuneboard.config import ExperimentConfig, Project, apply_overrides
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError, PluginError
from tuneboard.sdk.params import ParamSpec, describe_params
from tuneboard.tui.configs import split_values, toml_literal

WidgetKind = Literal["switch", "select", "input"]

_SEED = ParamSpec("seed", int, 42, "Seed of every random choice", None, 0, 2**32 - 1)
_MAX_LENGTH = ParamSpec("max_length", int, 128, "Longest input in tokens", None, 8, 8192)


@dataclass(frozen=True)
class FormField:
    """One editable value: its `--set` key (`stages.0.lr`), declaration and starting value."""

    key: str
    spec: ParamSpec
    initial: Any

    @property
    def kind(self) -> WidgetKind:
        """The widget that edits it: a switch for booleans, a select for choices, else input."""
        if self.spec.type is bool:
            return "switch"
        if self.spec.choices:
            return "select"
        return "input"

    @property
    def initial_text(self) -> str:
        """The starting value as the text an input shows."""
        return input_text(self.spec, self.initial)


@dataclass(frozen=True)
class FormSection:
    """A titled group of fields: the experiment's own values, or one stage's parameters."""

    title: str
    fields: tuple[FormField, ...]


def input_text(spec: ParamSpec, value: Any) -> str:
    """How a value shows in an input: strings as they are, other values as TOML."""
    if value is None or value is dataclasses.MISSING:
        return ""
    if isinstance(value, str):
        return value
    return toml_literal(value)


def form_sections(raw: Mapping[str, Any], registry: PluginRegistry) -> list[FormSection]:
    """The sections of the launch form of an experiment's table (as written in the file)."""
    sections = [
        FormSection(
            "experiment",
            (
                FormField("seed", _SEED, raw.get("seed", _SEED.default)),
                FormField("max_length", _MAX_LENGTH, raw.get("max_length", _MAX_LENGTH.default)),
            ),
        )
    ]
    sections.extend(_task_section(raw.get("task"), registry))
    stages = raw.get("stages")
    if not isinstance(stages, list):
        return sections
    for index, table in enumerate(stages):
        if not isinstance(table, Mapping) or not isinstance(table.get("plugin"), str):
            continue
        plugin = table["plugin"]
        try:
            params_cls = registry.stage(plugin).Params
        except PluginError:
            continue
        fields = tuple(
            FormField(
                f"stages.{index}.{spec.name}",
                spec,
                table.get(spec.name, None if spec.required else spec.default),
            )
            for spec in describe_params(params_cls)
        )
        name = table.get("name", plugin)
        title = f"stage {index} · {name}" + (f" ({plugin})" if name != plugin else "")
        sections.append(FormSection(title, fields))
    return sections


def _task_section(task: Any, registry: PluginRegistry) -> list[FormSection]:
    """The task plugin's keys (``task.template`` ...), when the experiment's task is one."""
    table = task if isinstance(task, Mapping) else {"plugin": task}
    plugin = table.get("plugin")
    if not isinstance(plugin, str) or plugin not in registry.tasks:
        return []
    specs = describe_params(registry.tasks[plugin].Params)
    if not specs:
        return []
    fields = tuple(
        FormField(f"task.{spec.name}", spec, table.get(spec.name, spec.default)) for spec in specs
    )
    return [FormSection(f"task · {plugin}", fields)]


def override_for(form_field: FormField, value: Any) -> str | None:
    """The `--set` override that sets `form_field` to `value`, or None when it is unchanged.

    `value` is a bool from a switch, a choice from a select, or the text of an input.
    """
    if form_field.kind == "input":
        text = str(value).strip()
        if text == form_field.initial_text:
            return None
        return f"{form_field.key}={text}"
    if value == form_field.initial:
        return None
    return f"{form_field.key}={toml_literal(value)}"


def check_override(raw: Mapping[str, Any], override: str, registry: PluginRegistry) -> str | None:
    """The error message of one override on its own, or None when it is acceptable."""
    try:
        apply_overrides(raw, [override], registry)
    except ConfigError as error:
        return short_message(str(error), override)
    return None


def short_message(message: str, override: str) -> str:
    """A config error without its `--set KEY=VALUE: ` prefix, for showing next to the field."""
    prefix = f"--set {override}"
    if message.startswith(prefix):
        rest = message[len(prefix) :]
        # The prefix may carry a qualifier such as " (stage plugin 'finetune')".
        _, _, text = rest.partition(": ")
        return text or message
    return message


@dataclass(frozen=True)
class Variant:
    """One run to launch: its overrides and a short label (`seed=8`, `lr=0.01`)."""

    overrides: tuple[str, ...]
    label: str


def variants(
    raw: Mapping[str, Any],
    overrides: Sequence[str],
    *,
    copies: int = 1,
    grid_key: str | None = None,
    grid_values: str = "",
) -> list[Variant]:
    """The runs to launch: each grid value (or just one) times `copies` seeds.

    Copy k gets the seed of the form plus k. Raises ConfigError for a bad count or grid.
    """
    if copies < 1:
        raise ConfigError("copies: launch at least 1 run")
    values = split_values(grid_values) if grid_key else []
    if grid_key and not values:
        raise ConfigError(f"grid over {grid_key}: give comma-separated values, e.g. 1e-3, 1e-4")
    base_seed = _seed_of(raw, overrides)
    result = []
    options: list[str | None] = [*values] or [None]
    for value in options:
        for copy in range(copies):
            extra: list[str] = []
            labels: list[str] = []
            if value is not None and grid_key is not None:
                extra.append(f"{grid_key}={value}")
                labels.append(f"{grid_key.rsplit('.', 1)[-1]}={value}")
            if copies > 1:
                extra.append(f"seed={base_seed + copy}")
                labels.append(f"seed={base_seed + copy}")
            kept = [o for o in overrides if not _sets(o, "seed") or copies == 1]
            if grid_key is not None:
                kept = [o for o in kept if not _sets(o, grid_key)]
            result.append(Variant((*kept, *extra), ", ".join(labels)))
    return result


def _sets(override: str, key: str) -> bool:
    return override.partition("=")[0].strip() == key


def _seed_of(raw: Mapping[str, Any], overrides: Sequence[str]) -> int:
    for override in reversed(overrides):
        if _sets(override, "seed"):
            try:
                return int(override.partition("=")[2].strip())
            except ValueError:
                raise ConfigError(f"--set {override}: seed must be an integer") from None
    seed = raw.get("seed", _SEED.default)
    return seed if isinstance(seed, int) else int(_SEED.default)


def grid_keys(sections: Sequence[FormSection]) -> list[str]:
    """The keys a grid can run over: every field that is not a switch."""
    return [f.key for section in sections for f in section.fields if f.kind != "switch"]


def validate_all(
    project: Project, name: str, variants_: Sequence[Variant], registry: PluginRegistry
) -> list[ExperimentConfig]:
    """Each variant as a validated ExperimentConfig; raises the first ConfigError."""
    return [project.experiment(name, registry, v.overrides) for v in variants_]
