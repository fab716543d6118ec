"""tuneboard: a terminal experiment manager for multi-step fine-tuning of transformer models.

This module is the public API for plugins. It never imports torch, transformers or Textual.
"""

from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    Dataset,
    DatasetContext,
    Example,
    Metric,
    NoParams,
    PipelineState,
    Splits,
    Stage,
    StageContext,
    Strategy,
    TextExample,
    TokenExample,
    TrainStep,
)
from tuneboard.sdk.errors import ConfigError, DataError, PluginError, RunCancelled, TuneboardError
from tuneboard.sdk.execution import Executor
from tuneboard.sdk.hookspecs import hookimpl
from tuneboard.sdk.params import param

__version__ = "0.1.0"

__all__ = [
    "SEQUENCE_CLASSIFICATION",
    "TOKEN_CLASSIFICATION",
    "ConfigError",
    "DataError",
    "Dataset",
    "DatasetContext",
    "Example",
    "Executor",
    "Metric",
    "NoParams",
    "PipelineState",
    "PluginError",
    "RunCancelled",
    "Splits",
    "Stage",
    "StageContext",
    "Strategy",
    "TextExample",
    "TokenExample",
    "TrainStep",
    "TuneboardError",
    "__version__",
    "hookimpl",
    "param",
]
