"""`tuneboard.toml` -> frozen dataclasses, validated before anything runs.

(Structure only; parsing and validation are filled in by `load_project` / `Project.experiment`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "tuneboard.toml"
DEFAULT_DATABASE = ".tuneboard/tuneboard.duckdb"
DEFAULT_RUNS_DIR = ".tuneboard/runs"


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

    `raw` is the experiment's table after overrides (plain TOML values): it is what is stored
    in `runs.config` and what re-launching a run starts from.
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
