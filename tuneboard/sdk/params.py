"""Parameters declared once, as a dataclass, and everything derived from that declaration.

A plugin declares its parameters as a dataclass whose fields are made with :func:`param`.
From that one declaration tuneboard derives the TOML validation, the `--set` overrides, the
launch form of the app and the reference in the docs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from tuneboard.sdk.errors import ConfigError

T = TypeVar("T")

_MISSING = dataclasses.MISSING

INT_LIMIT = 2**31 - 1
"""The bound of an integer parameter that declares no `min`/`max` of its own: a count past it
is a typo, and some (epochs near 2**63) would overflow the loops and tables they feed."""


def param(
    default: Any = _MISSING,
    help: str = "",
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
) -> Any:
    """Declare one parameter of a plugin's `Params` dataclass.

    `default` may be omitted for a required parameter; a list or dict default is copied per
    instance. `choices`, `min` and `max` are checked on validation (a `Literal` type gives
    the choices by itself). Numbers must be finite, and an integer without its own `min` or
    `max` is kept within ±(2**31 - 1) on that side.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices else None,
        "min": min,
        "max": max,
    }
    if isinstance(default, list | dict):
        factory = default.copy
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ParamSpec:
    """What is known about one declared parameter."""

    name: str
    type: Any
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    min: float | None
    max: float | None

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        """A short human-readable name of the type, as shown in errors and docs."""
        return _type_name(self.type)


def describe_params(params_cls: type) -> list[ParamSpec]:
    """List the parameters a `Params` dataclass declares, in declaration order."""
    if not dataclasses.is_dataclass(params_cls):
        raise TypeError(f"{params_cls!r} is not a dataclass")
    hints = typing.get_type_hints(params_cls)
    specs = []
    for f in dataclasses.fields(params_cls):
        if not f.init:
            continue
        if f.default is not _MISSING:
            default = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        annotation = hints[f.name]
        choices = f.metadata.get("choices")
        if choices is None:
            choices = _literal_choices(annotation)
        specs.append(
            ParamSpec(
                name=f.name,
                type=annotation,
                default=default,
                help=f.metadata.get("help", ""),
                choices=choices,
                min=f.metadata.get("min"),
                max=f.metadata.get("max"),
            )
        )
    return specs


def build_params(params_cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Validate `values` against `params_cls` and return an instance of it.

    `where` names the place the values come from (file and table) and starts every error
    message, e.g. ``tuneboard.toml: [experiments.demo.stages.1] (finetune)``. A `ValueError`
    raised by the dataclass's ``__post_init__`` becomes a `ConfigError` too.
    """
    specs = {spec.name: spec for spec in describe_params(params_cls)}
    unknown = [key for key in values if key not in specs]
    if unknown:
        key = unknown[0]
        hint = did_you_mean(key, specs)
        raise ConfigError(
            f"{where}: unknown key {key!r}{hint}; accepted keys: {', '.join(sorted(specs))}"
        )
    kwargs: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in values:
            kwargs[name] = check_value(spec, values[name], where)
        elif spec.required:
            raise ConfigError(
                f"{where}: missing required key {name!r} ({spec.help or spec.type_name})"
            )
    try:
        return params_cls(**kwargs)
    except ValueError as error:  # a Params may check its values together in __post_init__
        raise ConfigError(f"{where}: {error}") from None


def check_value(spec: ParamSpec, value: Any, where: str) -> Any:
    """Check (and where lossless, convert) one value for a parameter; raise ConfigError if bad."""
    try:
        converted = _coerce(spec.type, value)
    except _Mismatch:
        raise ConfigError(
            f"{where}: key {spec.name!r} must be {spec.type_name}, got {value!r}"
        ) from None
    if spec.choices is not None and converted not in spec.choices:
        accepted = ", ".join(repr(c) for c in spec.choices)
        raise ConfigError(f"{where}: key {spec.name!r} must be one of {accepted}, got {value!r}")
    if isinstance(converted, list | tuple):
        for item in converted:
            _check_range(spec, item, item, where)
    else:
        _check_range(spec, converted, value, where)
    return converted


def _check_range(spec: ParamSpec, number: Any, shown: Any, where: str) -> None:
    """Refuse a non-finite float, or a number outside the spec's bounds (ints: `INT_LIMIT`)."""
    if not isinstance(number, int | float) or isinstance(number, bool):
        return
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{where}: key {spec.name!r} must be a finite number, got {shown!r}")
    low, high = spec.min, spec.max
    if isinstance(number, int):
        low = -INT_LIMIT if low is None else low
        high = INT_LIMIT if high is None else high
    if low is not None and number < low:
        raise ConfigError(f"{where}: key {spec.name!r} must be >= {low}, got {shown!r}")
    if high is not None and number > high:
        raise ConfigError(f"{where}: key {spec.name!r} must be <= {high}, got {shown!r}")


def params_to_dict(params: Any) -> dict[str, Any]:
    """The values of a `Params` instance as a plain dict (JSON-serialisable for plain types)."""
    return dataclasses.asdict(params)


class _Mismatch(Exception):
    pass


def _coerce(annotation: Any, value: Any) -> Any:
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value in get_args(annotation):
            return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for option in get_args(annotation):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(option, value)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        (item_type, *_) = get_args(annotation) or (Any,)
        items = [_coerce(item_type, item) for item in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch
    raise TypeError(f"unsupported parameter type {annotation!r}")


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        suffix = " (or unset)" if type(None) in get_args(annotation) else ""
        return " or ".join(names) + suffix
    if origin in (list, tuple, Sequence):
        args = get_args(annotation)
        return f"a list of {_plural(_type_name(args[0]))}" if args else "a list"
    if origin in (dict, Mapping):
        return "a table"
    simple = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if annotation in simple:
        return simple[annotation]
    return str(getattr(annotation, "__name__", annotation))


def _plural(name: str) -> str:
    for article in ("a ", "an "):
        if name.startswith(article):
            return name[len(article) :] + "s"
    return name


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return None


def did_you_mean(key: str, names: Mapping[str, Any] | Sequence[str]) -> str:
    """A ` (did you mean 'x'?)` suffix for an unknown name, or an empty string."""
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
