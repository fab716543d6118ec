"""Sweeps: an experiment's `[experiments.NAME.sweep]` table -> the runs of a search.

A sweep varies override keys (the keys `--set` takes: ``stages.0.lr``, ``seed``,
``max_length``...) over lists of values (`grid`: every combination; `random`: `trials` draws)
or over ``{ low, high, log }`` ranges (`random`, `optuna`), optionally repeating each
combination once per seed of `seeds`. Each point becomes `--set` overrides, so every value is
validated exactly like `--set`, and errors name the file, the sweep table and the parameter.
Nothing here imports torch or optuna: `tuneboard.engine.sweeper` runs a plan.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tuneboard.config.experiment import ExperimentConfig, experiment_from_raw
from tuneboard.config.overrides import apply_overrides
from tuneboard.config.project import Project
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import build_params, did_you_mean, param
from tuneboard.ui.render import format_number, toml_literal
from tuneboard.ui.sweeps import validation_metric

METHODS = ("grid", "random", "optuna")
# More runs than this in one sweep is almost surely a mistake in the table.
MAX_RUNS = 1000
_RANGE_KEYS = ("low", "high", "log")


@dataclass(kw_only=True)
class SweepKeys:
    """The keys of a `[experiments.NAME.sweep]` table (also documented in the README)."""

    method: Literal["grid", "random", "optuna"] = param(
        "grid", "grid: every combination; random: `trials` draws; optuna: guided, with pruning"
    )
    parameters: dict[str, Any] = param(
        help="override key -> list of values, or a range { low = 1e-5, high = 1e-3, log = true }"
    )
    seeds: list[int] = param(
        [], "run every combination once per seed (grid and random)", max=2**32 - 1
    )
    trials: int | None = param(None, "random and optuna: how many runs", min=1, max=MAX_RUNS)
    max_parallel: int | None = param(
        None, "most runs of the sweep at once (default: every free slot)", min=1
    )
    metric: str | None = param(
        None, "optuna: the metric to optimise and prune on (default: val/ of the headline)"
    )
    direction: Literal["auto", "maximize", "minimize"] = param(
        "auto", "optuna: auto takes the metric's own direction"
    )
    sampler_seed: int | None = param(
        None,
        "random and optuna: seed of the draws (default: the experiment's seed)",
        min=0,
        max=2**32 - 1,
    )
    pruner: Literal["median", "none"] = param(
        "median", "optuna: stop a trial whose metric is worse than the median at an evaluation"
    )
    prune_after_trials: int = param(2, "optuna: finished trials before pruning starts", min=0)
    prune_after_evaluations: int = param(
        1, "optuna: evaluations of a trial before it can be pruned", min=0
    )


@dataclass(frozen=True)
class Range:
    """A continuous (or integer, when both ends are integers) range of values to search."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> float | int:
        """One value drawn uniformly (log-uniformly with `log`) from the range."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return min(int(self.high), max(int(self.low), round(value)))
        return value

    def describe(self) -> str:
        """`1e-05..0.001 (log)`."""
        text = f"{format_number(self.low)}..{format_number(self.high)}"
        return text + (" (log)" if self.log else "")


Domain = tuple[Any, ...] | Range


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep table of one experiment."""

    experiment: str
    where: str
    method: str
    parameters: Mapping[str, Domain]
    seeds: tuple[int, ...]
    trials: int | None
    max_parallel: int | None
    metric: str
    direction: str
    sampler_seed: int
    pruner: str
    prune_after_trials: int
    prune_after_evaluations: int

    @property
    def keys(self) -> list[str]:
        """The varied keys, with `seed` last when `seeds` repeats each combination."""
        return [*self.parameters, *(["seed"] if self.seeds else [])]

    def describe(self) -> str:
        """One line, e.g. `grid over stages.0.lr (2 values) x 2 seeds`."""
        parts = []
        for key, domain in self.parameters.items():
            if isinstance(domain, Range):
                parts.append(f"{key} in {domain.describe()}")
            else:
                parts.append(f"{key} ({len(domain)} values)")
        text = f"{self.method} over {', '.join(parts)}"
        if self.trials is not None:
            text += f", {self.trials} trials"
        if self.seeds:
            text += f" x {len(self.seeds)} seeds"
        return text


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the value of each varied key, and the overrides that set them."""

    values: Mapping[str, Any]
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        """`lr=0.01, seed=1`: the last part of each key and its value."""
        return ", ".join(
            f"{key.rsplit('.', 1)[-1]}={format_number(value)}" for key, value in self.values.items()
        )


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run: its spec, the base table, and (grid/random) every point."""

    spec: SweepSpec
    project: Project
    base: Mapping[str, Any]
    user_overrides: tuple[str, ...]
    points: tuple[tuple[SweepPoint, ExperimentConfig], ...]

    def config_for(self, values: Mapping[str, Any], registry: PluginRegistry) -> ExperimentConfig:
        """The experiment with `values` (key -> value) set, then the user's `--set` overrides."""
        point = make_point(values)
        return build_config(
            self.project, self.spec, self.base, point, self.user_overrides, registry
        )


def has_sweep(project: Project, name: str, overrides: Sequence[str] = ()) -> bool:
    """Whether experiment `name` has a `sweep` table (or `overrides` give it one)."""
    if project.raw_experiment(name).get("sweep") is not None:
        return True
    return any(_key_of(o) == "sweep" or _key_of(o).startswith("sweep.") for o in overrides)


def plan_sweep(
    project: Project, name: str, registry: PluginRegistry, overrides: Sequence[str] = ()
) -> SweepPlan:
    """Parse and check the sweep of experiment `name` after the user's `overrides`.

    For grid and random every point's experiment is validated here, so a bad value fails
    before any run exists. The user's overrides apply on top of each point; they may change
    the sweep table itself (``--set sweep.max_parallel=1``) but not a key the sweep varies.
    """
    table = apply_overrides(project.raw_experiment(name), overrides, registry)
    raw_sweep = table.pop("sweep", None)
    where = f"{project.file.name}: [experiments.{name}.sweep]"
    if raw_sweep is None:
        raise ConfigError(f"{where}: experiment {name!r} has no sweep table")
    # The base experiment must be valid on its own (errors then name its own tables).
    base_config = experiment_from_raw(project, name, table, registry)
    spec = parse_sweep(raw_sweep, where, name, base_config, table, registry)
    plain = tuple(o for o in overrides if not _key_of(o).startswith("sweep."))
    _check_collisions(spec, plain)
    points: list[tuple[SweepPoint, ExperimentConfig]] = []
    if spec.method != "optuna":
        for point in expand(spec):
            config = build_config(project, spec, table, point, plain, registry)
            points.append((point, config))
    return SweepPlan(spec, project, table, plain, tuple(points))


def parse_sweep(
    raw: Any,
    where: str,
    experiment: str,
    base: ExperimentConfig,
    table: Mapping[str, Any],
    registry: PluginRegistry,
) -> SweepSpec:
    """Validate a sweep table; `base` and `table` are the experiment it varies."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, got {raw!r}")
    keys = build_params(SweepKeys, raw, where)
    parameters = _parameters(keys.parameters, where, keys.method)
    if not parameters and not keys.seeds:
        raise ConfigError(f"{where}: key 'parameters' must name at least one key to vary")
    if keys.method == "grid" and keys.trials is not None:
        raise ConfigError(
            f"{where}: key 'trials' is for random and optuna; a grid runs every combination"
        )
    if keys.method != "grid" and keys.trials is None:
        raise ConfigError(f"{where}: method {keys.method!r} needs 'trials' (how many runs)")
    if keys.method == "optuna" and keys.seeds:
        raise ConfigError(
            f"{where}: key 'seeds' is for grid and random; optuna runs one run per trial "
            "(vary 'seed' in 'parameters' to search over it)"
        )
    if len(set(keys.seeds)) != len(keys.seeds):
        raise ConfigError(f"{where}: key 'seeds' lists a seed twice: {keys.seeds!r}")
    if keys.seeds and "seed" in parameters:
        raise ConfigError(f"{where}: 'seed' is both in 'parameters' and 'seeds'; keep one")
    for key, domain in parameters.items():
        values = (domain.low, domain.high) if isinstance(domain, Range) else domain
        for value in values:
            _check_value(table, key, value, where, registry)
    for seed in keys.seeds:
        _check_value(table, "seed", seed, f"{where}: key 'seeds'", registry)
    metric = keys.metric or validation_metric(base.headline)
    spec = SweepSpec(
        experiment=experiment,
        where=where,
        method=keys.method,
        parameters=parameters,
        seeds=tuple(keys.seeds),
        trials=keys.trials,
        max_parallel=keys.max_parallel,
        metric=metric,
        direction=keys.direction,
        sampler_seed=keys.sampler_seed if keys.sampler_seed is not None else base.seed,
        pruner=keys.pruner,
        prune_after_trials=keys.prune_after_trials,
        prune_after_evaluations=keys.prune_after_evaluations,
    )
    count = run_count(spec)
    if count > MAX_RUNS:
        raise ConfigError(f"{where}: {count} runs is more than {MAX_RUNS}; sweep fewer values")
    return spec


def run_count(spec: SweepSpec) -> int:
    """How many runs the sweep makes."""
    repeats = max(1, len(spec.seeds))
    if spec.trials is not None:
        return spec.trials * repeats
    sizes = [len(d) for d in spec.parameters.values() if not isinstance(d, Range)]
    return math.prod(sizes) * repeats


def expand(spec: SweepSpec) -> list[SweepPoint]:
    """Every point of a grid or random sweep, each seed of `seeds` innermost."""
    seeds: list[int | None] = [*spec.seeds] or [None]
    combos: list[dict[str, Any]]
    if spec.method == "grid":
        domains = [list(d) for d in spec.parameters.values() if not isinstance(d, Range)]
        combos = [
            dict(zip(spec.parameters, values, strict=True))
            for values in itertools.product(*domains)
        ]
    elif spec.method == "random":
        rng = random.Random(spec.sampler_seed)
        combos = [
            {key: _draw(domain, rng) for key, domain in spec.parameters.items()}
            for _ in range(spec.trials or 0)
        ]
    else:
        raise ValueError("optuna sweeps are drawn trial by trial (tuneboard.engine.sweeper)")
    points = []
    for combo in combos:
        for seed in seeds:
            values = dict(combo) if seed is None else {**combo, "seed": seed}
            points.append(make_point(values))
    return points


def make_point(values: Mapping[str, Any]) -> SweepPoint:
    """The point that sets each key of `values`."""
    overrides = tuple(f"{key}={toml_literal(value)}" for key, value in values.items())
    return SweepPoint(dict(values), overrides)


def build_config(
    project: Project,
    spec: SweepSpec,
    table: Mapping[str, Any],
    point: SweepPoint,
    user_overrides: Sequence[str],
    registry: PluginRegistry,
) -> ExperimentConfig:
    """The validated experiment of one point; errors name the sweep table and the point."""
    try:
        resolved = apply_overrides(table, [*point.overrides, *user_overrides], registry)
        return experiment_from_raw(project, spec.experiment, resolved, registry)
    except ConfigError as error:
        raise ConfigError(f"{spec.where}: the run with {point.label}: {error}") from None


# --- helpers ------------------------------------------------------------------------------


def _parameters(raw: Mapping[str, Any], where: str, method: str) -> dict[str, Domain]:
    """`parameters` flattened to override keys, each a tuple of values or a Range."""
    flat: dict[str, Any] = {}
    _flatten(raw, "", flat, where)
    result: dict[str, Domain] = {}
    for key, value in flat.items():
        at = f"{where}: parameter {key!r}"
        if key == "sweep" or key.startswith("sweep."):
            raise ConfigError(f"{at}: a sweep cannot vary its own table")
        if isinstance(value, dict):
            domain: Domain = _range(value, at)
            if method == "grid":
                raise ConfigError(
                    f"{at}: a grid needs a list of values; a {{ low, high }} range is for "
                    "random and optuna"
                )
        elif isinstance(value, list):
            if not value:
                raise ConfigError(f"{at}: give at least one value")
            domain = tuple(value)
            if method == "optuna":
                for item in value:
                    if not isinstance(item, bool | int | float | str):
                        raise ConfigError(
                            f"{at}: optuna chooses among plain values (numbers, strings, "
                            f"booleans), got {item!r}"
                        )
        else:
            raise ConfigError(
                f"{at}: give a list of values, e.g. [1e-3, 3e-4], or a range "
                f"{{ low = 1e-5, high = 1e-3, log = true }}, got {value!r}"
            )
        result[key] = domain
    return result


def _flatten(raw: Mapping[str, Any], prefix: str, flat: dict[str, Any], where: str) -> None:
    """Dotted keys may be written quoted (`"stages.0.lr" = [...]`) or as nested tables."""
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & {"low", "high"}):
            if not value:
                raise ConfigError(f"{where}: parameter {path!r}: give a list of values")
            _flatten(value, f"{path}.", flat, where)
            continue
        if path in flat:
            raise ConfigError(f"{where}: parameter {path!r} is given twice")
        flat[path] = value


def _range(value: Mapping[str, Any], at: str) -> Range:
    unknown = [key for key in value if key not in _RANGE_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], _RANGE_KEYS)
        raise ConfigError(
            f"{at}: unknown key {unknown[0]!r}{hint} in a range; accepted keys: low, high, log"
        )
    low, high, log = value.get("low"), value.get("high"), value.get("log", False)
    for name, end in (("low", low), ("high", high)):
        if not isinstance(end, int | float) or isinstance(end, bool) or not math.isfinite(end):
            raise ConfigError(f"{at}: range key {name!r} must be a number, got {end!r}")
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if not isinstance(log, bool):
        raise ConfigError(f"{at}: range key 'log' must be true or false, got {log!r}")
    if low >= high:
        raise ConfigError(f"{at}: range 'low' must be below 'high', got {low!r}..{high!r}")
    if log and low <= 0:
        raise ConfigError(f"{at}: a log range needs 'low' > 0, got {low!r}")
    return Range(low, high, log, isinstance(low, int) and isinstance(high, int))


def _draw(domain: Domain, rng: random.Random) -> Any:
    if isinstance(domain, Range):
        return domain.draw(rng)
    return rng.choice(domain)


def _check_value(
    table: Mapping[str, Any], key: str, value: Any, where: str, registry: PluginRegistry
) -> None:
    """Check one value of a varied key as `--set KEY=VALUE` would, naming the sweep table."""
    override = f"{key}={toml_literal(value)}"
    try:
        apply_overrides(table, [override], registry)
    except ConfigError as error:
        message = str(error)
        prefix = f"--set {override}"
        rest = message[len(prefix) :] if message.startswith(prefix) else f": {message}"
        if where.endswith("'seeds'"):
            raise ConfigError(f"{where}: seed {toml_literal(value)}{rest}") from None
        raise ConfigError(f"{where}: parameter {key!r} = {toml_literal(value)}{rest}") from None


def _key_of(override: str) -> str:
    return override.partition("=")[0].strip()


def _check_collisions(spec: SweepSpec, overrides: Sequence[str]) -> None:
    varied = set(spec.keys)
    for override in overrides:
        key = _key_of(override)
        if key in varied:
            raise ConfigError(
                f"--set {override}: {spec.where} varies {key!r}; run the sweep without it, "
                "or use --no-sweep to run the experiment once"
            )
