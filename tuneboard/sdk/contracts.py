"""The contracts between tuneboard and its plugins: stages, datasets, metrics and strategies.

Built-in plugins use exactly this API; so do third-party ones. Nothing here imports torch or
transformers: model objects are typed `Any` and only the code that trains imports the
frameworks.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from tuneboard.sdk.files import readable_file, readable_path

if TYPE_CHECKING:
    import torch

    from tuneboard.sdk.tasks import Generation, Task
    from tuneboard.sdk.training import Training

SEQUENCE_CLASSIFICATION = "sequence-classification"
TOKEN_CLASSIFICATION = "token-classification"
CAUSAL_LM = "causal-lm"
SEQ2SEQ = "seq2seq"
CLASSIFICATION_TASKS = (SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION)
"""The tasks the engine handles itself; every other task is a `Task` plugin."""
GENERATION_TASKS = (CAUSAL_LM, SEQ2SEQ)
TASKS = (*CLASSIFICATION_TASKS, *GENERATION_TASKS)
"""The built-in tasks (plugins may add more)."""

SPLITS = ("train", "validation", "test")
SPLIT_PREFIXES = {"train": "train", "validation": "val", "test": "test"}
"""How the metric names of each split start: ``train/loss``, ``val/accuracy``, ``test/f1``."""


def split_prefix(split: str) -> str:
    """How metric names of `split` start: validation -> ``val``; other splits unchanged."""
    return SPLIT_PREFIXES.get(split, split)


LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass
class NoParams:
    """The `Params` of a plugin that takes no parameters."""


P = TypeVar("P")


class Plugin(Generic[P]):
    """What every stage, dataset and strategy plugin declares.

    `name` is what `tuneboard.toml` uses; `Params` is a dataclass whose fields are made with
    `tuneboard.param(...)`; `description` is one line for listings and the launch form.
    """

    name: ClassVar[str]
    Params: ClassVar[type] = NoParams
    description: ClassVar[str] = ""

    def __init__(self, params: P) -> None:
        self.params = params


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextExample:
    """One text (or text pair) and its label name, for sequence classification."""

    text: str
    label: str | None = None
    text_pair: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class TokenExample:
    """One pre-tokenised sentence and its tag per token, for token classification."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class ChatTurn:
    """One turn of a conversation: `role` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True)
class GenerationExample:
    """One example for a generation task (``causal-lm``, ``seq2seq``).

    `prompt` is what the model is given (the source text for seq2seq; empty for a plain
    document in continued pretraining) and `response` what it should produce (the target;
    None when unknown, as for prompts to generate from). A chat example sets `messages`
    instead: the conversation, whose ``assistant`` turns are what the model learns to say.
    """

    prompt: str = ""
    response: str | None = None
    messages: tuple[ChatTurn, ...] | None = None
    weight: float = 1.0

    @property
    def reference(self) -> str | None:
        """The text the model should produce: `response`, or the last assistant turn."""
        if self.messages is not None:
            for turn in reversed(self.messages):
                if turn.role == "assistant":
                    return turn.content
            return None
        return self.response

    def context(self) -> tuple[ChatTurn, ...]:
        """The conversation up to the reply the model should give (for generating it)."""
        if self.messages is None:
            return (ChatTurn("user", self.prompt),)
        turns = list(self.messages)
        if turns and turns[-1].role == "assistant":
            turns.pop()
        return tuple(turns)


Example = TextExample | TokenExample | GenerationExample
Splits = dict[str, list[Example]]


@dataclass(frozen=True)
class Correction:
    """The label a person gave one example while reviewing predictions.

    `run` is the run whose predictions they reviewed, `time` when (ISO 8601, UTC). An example
    is its text and text pair (`key`): a project holds at most one correction per example.
    """

    text: str
    label: str
    text_pair: str | None = None
    run: str | None = None
    time: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies the example: its text and text pair."""
        return (self.text, self.text_pair)

    def to_json(self) -> dict[str, Any]:
        """The object written to the corrections file (no null fields)."""
        document: dict[str, Any] = {"text": self.text}
        if self.text_pair is not None:
            document["text_pair"] = self.text_pair
        document["label"] = self.label
        if self.run is not None:
            document["run"] = self.run
        if self.time is not None:
            document["time"] = self.time
        return document


class DatasetContext(ABC):
    """What a dataset plugin gets when asked to load its splits."""

    project_dir: Path
    task: str
    seed: int

    @abstractmethod
    def resolve(self, path: str, key: str) -> Path:
        """The absolute path of a file named in the dataset table under `key`.

        Relative paths are taken from the project folder; a missing file raises `DataError`
        naming the key and the path.
        """


class Dataset(Plugin[P], ABC):
    """A dataset plugin: turns a `[dataset]` table of `tuneboard.toml` into splits.

    Return `train`, and `validation` / `test` where the user named them. When only `train`
    comes back, the engine makes a seeded 7:2:1 train/validation/test split.
    """

    @abstractmethod
    def load(self, ctx: DatasetContext) -> Splits:
        """Read the data and return the splits by name."""


# --- metrics ------------------------------------------------------------------------------


class Metric(ABC):
    """A metric plugin: turns predictions and references into named numbers.

    For sequence classification, predictions and references are label indices; for token
    classification, lists of tag names per sentence. `label_names[i]` is the name of label `i`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    tasks: ClassVar[tuple[str, ...]] = (SEQUENCE_CLASSIFICATION,)

    @abstractmethod
    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return the metric's values by name (usually just `{self.name: value}`)."""


# --- strategies ---------------------------------------------------------------------------


@dataclass
class TrainStep:
    """One micro-batch of training, handed to a strategy.

    `forward(batch)` runs the model under the configured autocast and returns its outputs
    (with `.loss` and `.logits`; other keys of `batch`, such as ``output_hidden_states``,
    go to the model as keywords); `backward(loss)` scales the loss for gradient accumulation
    and mixed precision and back-propagates it. The training loop does the optimizer step,
    clipping and scheduling.
    """

    model: Any
    batch: dict[str, Any]
    forward: Callable[[dict[str, Any]], Any]
    backward: Callable[[Any], None]
    step: int


class Strategy(Plugin[P], ABC):
    """A training-step plugin: decides how a micro-batch turns into gradients.

    The default strategy does forward, then backward. Adversarial and regularising methods
    (FGM, PGD, FreeLB, R-Drop) run extra forward/backward passes here.
    """

    def setup(self, model: Any) -> None:
        """Called once before training starts, with the model on its device."""

    @abstractmethod
    def step(self, inputs: TrainStep) -> float | torch.Tensor:
        """Compute gradients for one micro-batch and return its loss: a detached scalar
        tensor on the device (``loss.detach()``), which the loop reads only at its log points
        so the host never waits for the device, or a float."""

    def after_optimizer_step(self, model: Any) -> None:
        """Called after every optimizer step (for weight averaging and the like), also one
        whose update was dropped for a non-finite loss (``nan_policy = "skip"``)."""


# --- stages -------------------------------------------------------------------------------


@dataclass
class PipelineState:
    """What flows from one stage to the next.

    `model` and `tokenizer` are the current model (a `transformers` model) and its tokenizer;
    `labels` the label names in index order; `splits` the data; `best_checkpoint` the folder of
    the best checkpoint so far; `metrics` the latest final numbers (such as `test/accuracy`);
    `extras` is free for plugins to pass things to later stages.
    """

    task: str
    labels: list[str]
    splits: Splits
    model: Any = None
    tokenizer: Any = None
    best_checkpoint: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class StageContext(ABC):
    """What a running stage gets from the engine.

    Attributes: `run_id`, `stage_index` (0-based row of this stage in the run: its position
    in the pipeline, unless a stage such as `repeat` ran stages again before it), `device`
    (``"cpu"`` or ``"cuda:N"``), `seed` and `rng` (seeded for this stage), `run_dir` (the
    run's folder) and `stage_dir` (this stage's folder for checkpoints), `project_dir` (the
    project folder: relative file names in stage parameters are taken from it), `max_length`
    and `metric_names` from the experiment, `pipeline` (the names of the experiment's stages,
    in order) and `pipeline_index` (this stage's position in `pipeline`).

    `training` is the training facade (`tuneboard.Training`): the training loop,
    evaluation, prediction, model loading and checkpoints; `corrections()`, `responses()`
    and `project_file()` reach the project's files.
    """

    run_id: str
    stage_index: int
    device: str
    seed: int
    rng: random.Random
    run_dir: Path
    stage_dir: Path
    project_dir: Path
    max_length: int
    metric_names: tuple[str, ...]
    pipeline: tuple[str, ...] = ()
    pipeline_index: int = 0

    @abstractmethod
    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Record metric values (names like ``train/loss``) at a step. Never blocks on I/O."""

    @abstractmethod
    def progress(self, completed: int, total: int | None = None, description: str = "") -> None:
        """Report progress through the stage (for progress bars)."""

    @abstractmethod
    def should_stop(self) -> bool:
        """True once cancellation was requested; check it between steps and batches."""

    @abstractmethod
    def check_stop(self) -> None:
        """Raise `RunCancelled` if cancellation was requested."""

    @abstractmethod
    def event(self, message: str, level: LogLevel = "info") -> None:
        """Write a line to the run's event log."""

    def flush(self) -> None:
        """Wait until what was logged so far is stored (call it before writing a resume
        checkpoint, so a resumed run's series is whole up to it). The default does nothing."""
        return None

    @abstractmethod
    def artifact(self, path: Path, kind: str) -> None:
        """Record a file or folder the stage produced (size and hash are computed)."""

    @abstractmethod
    def report_best(self, step: int, value: float, metric: str | None = None) -> None:
        """Record this stage's best monitored value, the step it was reached at, and its name."""

    @abstractmethod
    def compute_metrics(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Run every metric configured for the experiment; return values by metric name."""

    @abstractmethod
    def higher_is_better(self, metric: str) -> bool:
        """Whether larger values of `metric` (e.g. ``val/f1_macro``, ``val/loss``) are better."""

    @abstractmethod
    def strategy(self, name: str, params: Mapping[str, Any] | None = None) -> Strategy[Any]:
        """Build the strategy plugin called `name` with its parameters."""

    @property
    @abstractmethod
    def training(self) -> Training:
        """The training facade for this stage (see `tuneboard.Training`)."""

    @property
    def task(self) -> Task[Any] | None:
        """The experiment's `Task` plugin, or None for the classification tasks the engine
        handles itself (``sequence-classification``, ``token-classification``)."""
        return None

    def record_generations(self, generations: Sequence[Generation]) -> None:
        """Store model outputs in the ``generations`` table (batched; never blocks on I/O).
        The default drops them."""
        return None

    @abstractmethod
    def corrections_path(self, file: str | None = None) -> Path:
        """The project's corrections file (its `corrections` setting in `[project]`), or
        `file` taken from the project folder when given. It may not exist yet."""

    @abstractmethod
    def corrections(self, file: str | None = None) -> list[Correction]:
        """The label corrections people saved for this project, the latest per example.

        Read from the project's `corrections` file (set in `[project]`), or from `file`
        (relative to the project folder) when given; a missing file gives ``[]``. A bad line
        raises `DataError` naming the file and line. Read anew on each call, so a stage that
        runs again (a `repeat` round) sees what was corrected since.
        """

    @abstractmethod
    def responses_path(self, file: str | None = None) -> Path:
        """The project's responses file (its `responses` setting in `[project]`), or `file`
        taken from the project folder when given. It may not exist yet."""

    @abstractmethod
    def responses(self, file: str | None = None) -> list[GenerationExample]:
        """The model outputs people accepted or edited while reviewing generations, as
        examples (`prompt`, `response`: the edited text when edited), the latest per prompt.

        Read from `responses_path(file)`; a missing file gives ``[]``. A bad line raises
        `DataError` naming the file and line. Read anew on each call, like `corrections`.
        """

    def preferences_path(self, file: str | None = None) -> Path:
        """The project's preference pairs file (its `preferences` setting in `[project]`,
        where reviews of generations write chosen/rejected pairs), or `file` taken from the
        project folder when given. It may not exist yet."""
        return readable_path(
            self.project_dir, file or "preferences.jsonl", self._stage_label(), "preferences"
        )

    def project_file(self, path: str, key: str) -> Path:
        """The absolute path of a file that the stage parameter `key` names.

        Relative paths are taken from the project folder. Raises `DataError` naming the key
        and the path when the file does not exist, `ConfigError` when it lies outside the
        project (see `tuneboard.sdk.files.readable_file`).
        """
        return readable_file(self.project_dir, path, self._stage_label(), key)

    def _stage_label(self) -> str:
        """This stage's name in the pipeline, as error messages name it."""
        return self.pipeline[self.pipeline_index] if self.pipeline else "stage"

    def run_stages(
        self, positions: Sequence[int], state: PipelineState, suffix: str = ""
    ) -> PipelineState:
        """Run the pipeline's stages at `positions` (each before this stage) again, in order.

        Each run is recorded as a new stage of the run, named ``<stage name><suffix>`` (e.g.
        ``finetune · round 2``), with its own row, metrics, events and folder; the state goes
        from one to the next and the last one's is returned. Raises what a stage raises.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot run stages again")


class Stage(Plugin[P], ABC):
    """A stage plugin: one step of a pipeline, from a pipeline state to the next."""

    @abstractmethod
    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Do the stage's work and return the state for the next stage."""
