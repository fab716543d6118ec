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
from tuneboard.sdk.execution import Executor, ProjectInfo, Replayer, RunJob
from tuneboard.sdk.hookspecs import hookimpl
from tuneboard.sdk.params import param
from tuneboard.sdk.remote import RemoteExecutor, RemoteOutcome, RemoteSpec, remote_command
from tuneboard.sdk.scheduler import Scheduler
from tuneboard.sdk.status import RunStatus

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
    "ProjectInfo",
    "RemoteExecutor",
    "RemoteOutcome",
    "RemoteSpec",
    "Replayer",
    "RunCancelled",
    "RunJob",
    "RunStatus",
    "Scheduler",
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
    "remote_command",
]
