"""tuneboard: a terminal experiment manager for multi-step fine-tuning of transformer models.

This module is the public SDK: everything a plugin author imports comes from here (the names
in `__all__`), re-exported from `tuneboard.sdk`. It never imports torch, transformers or
Textual. The training facade a stage uses is `ctx.training` (see `Training`).
"""

import tuneboard.startup  # noqa: F401  (first: the Ctrl-C handler while the program starts)
from tuneboard.sdk.contracts import (
    CAUSAL_LM,
    SEQ2SEQ,
    SEQUENCE_CLASSIFICATION,
    SPLITS,
    TASKS,
    TOKEN_CLASSIFICATION,
    ChatTurn,
    Correction,
    Dataset,
    DatasetContext,
    Example,
    GenerationExample,
    LogLevel,
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
    split_prefix,
)
from tuneboard.sdk.errors import ConfigError, DataError, PluginError, RunCancelled, TuneboardError
from tuneboard.sdk.execution import Executor, ProjectInfo, Replayer, RunJob
from tuneboard.sdk.hookspecs import hookimpl
from tuneboard.sdk.params import describe_params, param
from tuneboard.sdk.preferences import PreferencePair, read_preferences
from tuneboard.sdk.remote import RemoteExecutor, RemoteOutcome, RemoteSpec, remote_command
from tuneboard.sdk.scheduler import Scheduler
from tuneboard.sdk.status import RunStatus
from tuneboard.sdk.tasks import EvaluationInputs, Generation, GenerationParams, Task
from tuneboard.sdk.training import (
    IGNORE_INDEX,
    PRECISION_HELP,
    Features,
    FitData,
    FitResult,
    NonFiniteLoss,
    Precision,
    Predictions,
    Training,
    TrainParams,
)

__version__ = "0.1.0"

__all__ = [
    "CAUSAL_LM",
    "IGNORE_INDEX",
    "PRECISION_HELP",
    "SEQ2SEQ",
    "SEQUENCE_CLASSIFICATION",
    "SPLITS",
    "TASKS",
    "TOKEN_CLASSIFICATION",
    "ChatTurn",
    "ConfigError",
    "Correction",
    "DataError",
    "Dataset",
    "DatasetContext",
    "EvaluationInputs",
    "Example",
    "Executor",
    "Features",
    "FitData",
    "FitResult",
    "Generation",
    "GenerationExample",
    "GenerationParams",
    "LogLevel",
    "Metric",
    "NoParams",
    "NonFiniteLoss",
    "PipelineState",
    "PluginError",
    "Precision",
    "Predictions",
    "PreferencePair",
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
    "Task",
    "TextExample",
    "TokenExample",
    "TrainParams",
    "TrainStep",
    "Training",
    "TuneboardError",
    "__version__",
    "describe_params",
    "hookimpl",
    "param",
    "read_preferences",
    "remote_command",
    "split_prefix",
]
