"""`tuneboard.toml` -> frozen dataclasses, validated before anything runs.

A project file has a `[project]` table (where the database and runs live, which devices to
use) and one `[experiments.NAME]` table per experiment. `load_project` reads the file and
checks the `[project]` table (`project`); `Project.experiment` validates one experiment
(`experiment`) against the loaded plugins, after applying `--set KEY=VALUE` overrides
(`overrides`). Sweep tables are expanded into runs by `tuneboard.config.sweeps`. Every error
is a `ConfigError` whose message names the file, the table and the key (or the override) at
fault.
"""

from tuneboard.config.experiment import (
    DatasetSpec,
    ExperimentConfig,
    ModelSpec,
    StageSpec,
    experiment_from_raw,
)
from tuneboard.config.overrides import apply_overrides
from tuneboard.config.project import (
    CONFIG_FILE,
    DEFAULT_CORRECTIONS,
    DEFAULT_DATABASE,
    DEFAULT_RESPONSES,
    DEFAULT_RUNS_DIR,
    LOCAL_EXECUTOR,
    ExecutorSpec,
    Project,
    find_project,
    load_project,
    parse_executor_settings,
)

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_CORRECTIONS",
    "DEFAULT_DATABASE",
    "DEFAULT_RESPONSES",
    "DEFAULT_RUNS_DIR",
    "LOCAL_EXECUTOR",
    "DatasetSpec",
    "ExecutorSpec",
    "ExperimentConfig",
    "ModelSpec",
    "Project",
    "StageSpec",
    "apply_overrides",
    "experiment_from_raw",
    "find_project",
    "load_project",
    "parse_executor_settings",
]
