"""The project: a `tuneboard.toml`'s `[project]` table -> `Project` (paths, devices, executor).

`load_project` reads the file and checks the `[project]` table; `Project.experiment` validates
one experiment against the loaded plugins, after applying `--set KEY=VALUE` overrides.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneboard.config.checks import check_name, check_plain, check_table
from tuneboard.config.experiment import ExperimentConfig, experiment_from_raw
from tuneboard.config.overrides import apply_overrides
from tuneboard.config.toml import parse_value, read_toml
from tuneboard.plugins import PluginRegistry
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.files import project_path
from tuneboard.sdk.params import build_params, did_you_mean, param

CONFIG_FILE = "tuneboard.toml"
DEFAULT_CORRECTIONS = "corrections.jsonl"
DEFAULT_RESPONSES = "responses.jsonl"
DEFAULT_PREFERENCES = "preferences.jsonl"
DEFAULT_DATABASE = ".tuneboard/tuneboard.duckdb"
DEFAULT_RUNS_DIR = ".tuneboard/runs"
LOCAL_EXECUTOR = "local"
DEFAULT_SYS_METRICS_INTERVAL = 5.0
MIN_SYS_METRICS_INTERVAL = 0.1  # seconds; shorter would cost more than it tells

_DEVICE = re.compile(r"cpu|mps|cuda:[0-9]+")


@dataclass(kw_only=True)
class _ProjectKeys:
    name: str | None = param(None, "display name (default: the project folder's name)")
    database: str = param(DEFAULT_DATABASE, "the DuckDB file, relative to the project folder")
    runs_dir: str = param(DEFAULT_RUNS_DIR, "folder of run outputs, relative to the project")
    devices: str | list[str] = param("auto", 'devices: "auto", or a list like ["cuda:0"]')
    slots_per_device: int = param(1, "runs at once on each GPU", min=1, max=64)
    cpu_slots: int = param(1, "runs at once on the CPU", min=1, max=1_024)
    sys_metrics_interval: float = param(
        DEFAULT_SYS_METRICS_INTERVAL,
        "seconds between samples of each run's system metrics (sys/...); 0 turns them off",
        min=0,
        max=3_600,
    )
    memory_gb: float | None = param(
        None,
        "GPU memory each run needs, in GB, unless its experiment says: queued runs wait "
        "until a GPU has that much free (no check on the CPU)",
        min=0.0,
        max=1e6,
    )
    corrections: str = param(
        DEFAULT_CORRECTIONS, "label corrections from reviews (JSON lines), relative to the project"
    )
    responses: str = param(
        DEFAULT_RESPONSES,
        "outputs accepted or edited in reviews of generations (JSON lines of prompt and "
        "response), relative to the project",
    )
    preferences: str = param(
        DEFAULT_PREFERENCES,
        "preference pairs from reviews of generations (JSON lines of prompt, chosen and "
        "rejected), relative to the project",
    )
    executor: str | dict[str, Any] = param(
        LOCAL_EXECUTOR,
        'where runs execute: "local", an executor plugin such as "ray", '
        'or a table with plugin = "..." and its keys',
    )


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a project's runs execute: an executor's name and the other keys of its table.

    `settings` are checked against the executor's `Params` when the executor is built
    (`tuneboard.engine.executors.build_executor`); `where` names their origin in error messages.
    """

    plugin: str = LOCAL_EXECUTOR
    settings: Mapping[str, Any] = field(default_factory=dict)
    where: str = field(default=f"{CONFIG_FILE}: [project.executor]", compare=False)

    def override(self, plugin: str | None, settings: Mapping[str, Any]) -> ExecutorSpec:
        """This spec with command-line options: another executor starts from no settings."""
        where = f"{self.where} with the command line's executor options"
        if plugin is not None and plugin != self.plugin:
            check_name(plugin, "--executor", "executor names")
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
    ``corrections.jsonl`` in the project folder; see `corrections_file`). `responses` and
    `preferences` are the files reviews of generations write (`responses_file`,
    `preferences_file`). `sys_metrics_interval` is the seconds between samples of a run's
    system metrics (0: none; `tuneboard.engine.sysmetrics`).
    """

    root: Path
    file: Path
    name: str
    database: Path
    runs_dir: Path
    devices: str | tuple[str, ...] = "auto"
    slots_per_device: int = 1
    cpu_slots: int = 1
    sys_metrics_interval: float = DEFAULT_SYS_METRICS_INTERVAL
    memory_gb: float | None = None
    corrections: Path | None = None
    responses: Path | None = None
    preferences: Path | None = None
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    experiment_tables: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def corrections_file(self) -> Path:
        """The project's corrections file (it may not exist yet)."""
        return self.corrections or self.root / DEFAULT_CORRECTIONS

    @property
    def responses_file(self) -> Path:
        """The file reviews of generations write accepted and edited outputs to."""
        return self.responses or self.root / DEFAULT_RESPONSES

    @property
    def preferences_file(self) -> Path:
        """The file reviews of generations write preference pairs to."""
        return self.preferences or self.root / DEFAULT_PREFERENCES

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
    data = read_toml(file)
    unknown = [key for key in data if key not in ("project", "experiments")]
    if unknown:
        key = unknown[0]
        hint = did_you_mean(key, ["project", "experiments"])
        raise ConfigError(
            f"{label}: unknown top-level key {key!r}{hint}; "
            "a tuneboard.toml holds only [project] and [experiments.NAME] tables"
        )
    root = file.parent
    settings = check_table(data.get("project", {}), f"{label}: key 'project'", "[project]")
    keys = build_params(_ProjectKeys, settings, f"{label}: [project]")
    return Project(
        root=root,
        file=file,
        name=keys.name or root.name,
        database=project_path(root, keys.database, f"{label}: [project]", "database"),
        runs_dir=project_path(root, keys.runs_dir, f"{label}: [project]", "runs_dir"),
        devices=_devices(keys.devices, f"{label}: [project]"),
        slots_per_device=keys.slots_per_device,
        cpu_slots=keys.cpu_slots,
        sys_metrics_interval=_sys_interval(keys.sys_metrics_interval, f"{label}: [project]"),
        memory_gb=keys.memory_gb,
        corrections=project_path(root, keys.corrections, f"{label}: [project]", "corrections"),
        responses=project_path(root, keys.responses, f"{label}: [project]", "responses"),
        preferences=project_path(root, keys.preferences, f"{label}: [project]", "preferences"),
        executor=_executor(keys.executor, f"{label}: [project.executor]"),
        experiment_tables=_experiment_tables(data.get("experiments", {}), label),
    )


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


def _sys_interval(seconds: float, where: str) -> float:
    if 0 < seconds < MIN_SYS_METRICS_INTERVAL:
        raise ConfigError(
            f"{where}: key 'sys_metrics_interval' must be 0 (off) or at least "
            f"{MIN_SYS_METRICS_INTERVAL} seconds, got {seconds!r}"
        )
    return seconds


def _executor(value: str | dict[str, Any], where: str) -> ExecutorSpec:
    if isinstance(value, str):
        name = check_name(value, f"{where}: key 'executor'", "executor names")
        return ExecutorSpec(name, {}, where)
    plugin = value.get("plugin")
    if not isinstance(plugin, str):
        raise ConfigError(
            f"{where}: key 'plugin' must name the executor, e.g. plugin = \"ray\", got {plugin!r}"
        )
    check_name(plugin, f"{where}: key 'plugin'", "executor names")
    check_plain(value, where, "")
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
        settings[key] = parse_value(literal.strip())
    return settings


def _experiment_tables(value: Any, label: str) -> dict[str, dict[str, Any]]:
    experiments = check_table(value, f"{label}: key 'experiments'", "[experiments.NAME]")
    for name, table in experiments.items():
        # The table is named by the error's repr of `name`: a raw name may hold newlines.
        check_name(name, f"{label}: [experiments]", "experiment names")
        check_table(table, f"{label}: experiments.{name}", f"[experiments.{name}]")
    return experiments
