"""The training facade: what a stage that trains, evaluates or predicts needs.

A stage reaches it as `ctx.training` (a `Training`) and never imports the engine: the
engine implements `Training` with the one training loop tuneboard has, so a third-party stage
trains exactly like the built-in `finetune` does. A stage that trains declares its
parameters as `TrainParams` (or a dataclass that extends it) and hands them to `fit`:

    @dataclass
    class MyParams(TrainParams):
        margin: float = param(0.5, "...")

    def run(self, ctx, state):
        result = ctx.training.fit(state, self.params)
        ...

Nothing here imports torch or transformers; the engine imports them when a method runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuneboard.sdk.contracts import Example, PipelineState, Strategy
from tuneboard.sdk.params import param

if TYPE_CHECKING:
    import numpy as np

    from tuneboard.sdk.tasks import EvaluationInputs, GenerationParams

IGNORE_INDEX = -100
"""The label id of a position that does not count (padding, a sub-word after the first)."""

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISION_HELP = "Numeric precision: auto = bf16 on a GPU that supports it, else fp32"
Schedule = Literal["linear", "cosine", "constant"]
TrainMode = Literal[
    "all", "head", "top_k", "lora", "qlora", "adalora", "ia3", "prefix", "prompt", "p_tuning"
]
TRAIN_HELP = (
    "What trains: all weights, the head only, the top_k layers + head, or peft adapters:"
    " lora, qlora (LoRA on a 4-bit base; CUDA and bitsandbytes), adalora, ia3, or the"
    " prompt-learning methods prefix, prompt and p_tuning (causal-lm and seq2seq; prompt and"
    " p_tuning for sequence-classification too)"
)


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite and the stage's `nan_policy` says stop."""


@dataclass
class TrainParams:
    """The parameters of the training loop, declared once: the `finetune` stage's `Params`.

    A stage that trains uses this class as its `Params`, or extends it with fields of its own,
    and passes its params to `Training.fit`. `grad_accum = 0` (only from code) accumulates a
    whole epoch into one optimizer step; `warmup_steps > 0` wins over `warmup_ratio`.
    """

    epochs: int = param(3, "Passes over the training split", min=1, max=10_000)
    max_steps: int = param(
        0, "Stop after this many optimizer steps (0 = no limit)", min=0, max=100_000_000
    )
    batch_size: int = param(16, "Examples per micro-batch", min=1, max=65_536)
    group_by_length: bool = param(
        False,
        "Batch examples of similar length together (less padding, much faster on short"
        " texts); batches still come in random order",
    )
    eval_batch_size: int = param(64, "Examples per batch when evaluating", min=1, max=65_536)
    lr: float = param(5e-5, "Peak learning rate (AdamW)", min=0, max=10)
    layer_lr_decay: float = param(
        1.0,
        "Layer-wise lr decay: the head and top encoder layer train at lr, each layer below at "
        "this times the one above, the embeddings lowest (1.0 = off)",
        min=0,
        max=1,
    )
    weight_decay: float = param(
        0.01, "AdamW weight decay (never on biases and LayerNorm weights)", min=0, max=10
    )
    warmup_ratio: float = param(
        0.1, "Share of the optimizer steps spent warming the learning rate up", min=0, max=1
    )
    warmup_steps: int = param(
        0, "Warm-up length in optimizer steps (0 = use warmup_ratio)", min=0, max=100_000_000
    )
    scheduler: Schedule = param(
        "linear", "Learning-rate decay after warm-up: linear or cosine to 0, or constant"
    )
    max_grad_norm: float = param(
        1.0, "Clip the gradient norm to this (0 = no clipping)", min=0, max=1_000_000
    )
    grad_accum: int = param(
        1, "Micro-batches whose gradients add up to one optimizer step", min=1, max=65_536
    )
    precision: Precision = param("auto", PRECISION_HELP)
    compile: bool = param(
        False,
        "Compile the model with torch.compile for training: faster GPU steps after a first"
        " step that compiles (a minute or more); training goes on uncompiled, with a warning,"
        " when compiling fails",
    )
    pad_to_multiple_of: Literal["auto"] | int = param(
        "auto",
        "Round each batch's sequence length up to a multiple of this (auto = 8 on CUDA, where"
        " it lets kernels be reused; 1 = no rounding, the choice on the CPU, where padding"
        " only costs compute)",
        min=1,
        max=4_096,
    )
    train: TrainMode = param("all", TRAIN_HELP)
    top_k: int = param(
        2, "With train = top_k: how many of the top encoder layers train", min=1, max=1_000
    )
    lora_r: int = param(8, "With train = lora or qlora: rank of the adapters", min=1, max=65_536)
    lora_alpha: int = param(
        16, "With train = lora, qlora or adalora: scaling numerator (alpha / r)", min=1, max=65_536
    )
    lora_dropout: float = param(
        0.1, "With train = lora, qlora or adalora: dropout on the adapter input", min=0, max=1
    )
    lora_targets: list[str] = param(
        [],
        "With train = lora, qlora or adalora: names of the modules that get adapters (empty ="
        " peft's default for the model type, e.g. query and value for BERT, c_attn for GPT-2)",
    )
    adalora_init_r: int = param(
        12, "With train = adalora: rank each adapter starts with before pruning", min=1, max=65_536
    )
    adalora_target_r: int = param(
        4, "With train = adalora: average rank the adapters are pruned down to", min=1, max=65_536
    )
    ia3_targets: list[str] = param(
        [],
        "With train = ia3: names of the modules whose activations are rescaled (empty = peft's"
        " default for the model type)",
    )
    num_virtual_tokens: int = param(
        20,
        "With train = prefix, prompt or p_tuning: how many virtual tokens are learnt",
        min=1,
        max=8_192,
    )
    gradient_checkpointing: bool = param(
        False,
        "Recompute activations in the backward pass instead of keeping them: much less memory"
        " for longer sequences, about a third more time per step",
    )
    eval_every: int = param(
        0,
        "Evaluate every this many optimizer steps (0 = at the end of each epoch)",
        min=0,
        max=100_000_000,
    )
    monitor: str = param(
        "",
        "Value that picks the best checkpoint, e.g. val/loss (empty = val/<first metric>; "
        "val/loss for generation tasks)",
    )
    mode: Literal["auto", "max", "min"] = param(
        "auto", "Whether the monitored value should go up or down (auto = from the metric)"
    )
    patience: int = param(
        0,
        "Stop after this many evaluations without improvement (0 = never stop early)",
        min=0,
        max=100_000,
    )
    min_delta: float = param(
        0.0, "Smallest change of the monitored value that counts", min=0, max=1_000_000
    )
    ema_decay: float | None = param(
        None,
        "Keep an exponential moving average of the weights with this decay (e.g. 0.999); it is "
        "what is evaluated, kept as best and handed on (unset = off)",
        min=0,
        max=1,
    )
    strategy: str = param("standard", "Training-step strategy plugin (e.g. standard)")
    strategy_params: dict[str, Any] = param({}, "Parameters of the strategy plugin")
    dropout: float | None = param(
        None, "Override the model's hidden and attention dropout (unset = keep)", min=0, max=1
    )
    nan_policy: Literal["stop", "skip"] = param(
        "stop",
        "When the training loss is NaN or infinite: stop (fail the run with the reason) or "
        "skip that optimizer step (its update is dropped; the step and the schedule go on)",
    )
    resumable: bool = param(
        True,
        "Write a resume checkpoint (weights, optimizer, RNG ...) after each evaluation and on "
        "cancel, so `tuneboard resume` goes on from there; about 3x the model's size on disk",
    )
    log_every: int = param(
        10,
        "Log lr, epoch and speed every this many optimizer steps; train/loss is logged for"
        " every step, read from the device at these steps only (no host sync per step)",
        min=1,
        max=100_000_000,
    )
    eval_generate_samples: int = param(
        32,
        "Generation tasks: generate from this many validation examples (the first ones) at "
        "each evaluation for the generation metrics; loss and perplexity use them all",
        min=0,
        max=1_000_000,
    )
    eval_max_new_tokens: int = param(
        64,
        "Generation tasks: longest output generated at an evaluation, in tokens",
        min=1,
        max=8_192,
    )

    def __post_init__(self) -> None:
        """Check values that depend on each other (a subclass that has its own
        ``__post_init__`` calls this one too)."""
        if self.train == "adalora" and self.adalora_target_r > self.adalora_init_r:
            raise ValueError(
                f"key 'adalora_target_r' ({self.adalora_target_r}) must not exceed "
                f"'adalora_init_r' ({self.adalora_init_r}): AdaLoRA only prunes ranks"
            )


@dataclass(frozen=True)
class Features:
    """A tokenised split, padded once to its longest example.

    `input_ids` is ``[N, W]`` padded with `pad_id`; `lengths` the real length of each row;
    `labels` is ``[N]`` (sequence classification) or ``[N, W]`` with `IGNORE_INDEX` where a
    token does not count (token classification, and the prompt of a causal-LM example);
    `token_type_ids` is set for text pairs. `label_lengths` is set when labels are a sequence
    of their own width (a seq2seq target): each batch then cuts labels to its longest target.
    `notes` are lines for the run's events about what encoding changed (e.g. truncation).
    `position_ids` is set for packed rows (several examples one after the other): positions
    restart at 0 with each example, and the model then keeps each example's attention to
    itself (transformers builds a block-diagonal causal mask from them), so batches carry
    `position_ids` instead of an attention mask.

    `group` keeps rows together: with ``group = 2`` rows ``2i`` and ``2i + 1`` (a preference
    pair's chosen and rejected response) are one unit that shuffling, length grouping and
    batching never split, and a batch size counts units (a batch of 8 holds 16 rows).
    ``len(features)`` counts rows.
    """

    input_ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    token_type_ids: np.ndarray | None
    pad_id: int
    label_lengths: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    group: int = 1
    position_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.group < 1 or len(self) % self.group:
            raise ValueError(f"{len(self)} rows do not make whole groups of {self.group}")

    def __len__(self) -> int:
        return int(self.lengths.shape[0])


@dataclass(frozen=True)
class Predictions:
    """Label ids per example (per token, `IGNORE_INDEX`-padded, for token classification),
    optional probabilities, and the mean loss over labelled positions (NaN when none)."""

    label_ids: np.ndarray
    probabilities: np.ndarray | None
    loss: float


@dataclass(frozen=True)
class FitData:
    """Training data a stage encodes itself, for `Training.fit` in place of the task's
    encoding of the state's train and validation splits.

    `train` is what the loop trains on (a `Features` with ``group > 1`` keeps its groups in
    one micro-batch, e.g. the chosen and rejected rows of a preference pair). `validation`,
    when given, is evaluated with `evaluate` at every evaluation: it gets an
    `EvaluationInputs` (the model in eval mode, `validation` as `features`, no `examples`,
    the loop's eval batch size, autocast and step) and returns values without a prefix,
    which the loop logs as ``val/<name>``; the monitor defaults to ``val/loss``, so `evaluate`
    should return a ``loss``. The strategy given to `fit` must know how to train on `train`'s
    rows (the standard one takes the model's own loss on their ``labels``).
    """

    train: Features
    validation: Features | None = None
    evaluate: Callable[[EvaluationInputs], Mapping[str, float]] | None = None

    def __post_init__(self) -> None:
        if self.validation is not None and self.evaluate is None:
            raise ValueError("FitData: validation features need an evaluate function")


@dataclass
class FitResult:
    """What a call of `Training.fit` did: steps taken, evaluations, and the best checkpoint."""

    steps: int
    epochs: float
    stopped_early: bool
    monitor: str | None
    best_step: int | None
    best_value: float | None
    best_metrics: dict[str, float]
    checkpoint: Path
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)


class Training(ABC):
    """The engine's training services for one stage of a run: `ctx.training`.

    Every method works on the stage's device, seed, `max_length` and metrics; torch and
    transformers are imported when a method first needs them.
    """

    @abstractmethod
    def fit(
        self,
        state: PipelineState,
        params: TrainParams,
        strategy: Strategy[Any] | None = None,
        *,
        data: FitData | None = None,
    ) -> FitResult:
        """Train `state.model` on the train split with the one training loop.

        It evaluates on the validation split every epoch (or `eval_every` steps), keeps the
        best weights by `params.monitor`, stops early after `patience` evaluations without
        improvement and writes resume checkpoints. On return `state.model` holds the best
        weights (adapters merged, except prompt-learning ones), saved with the tokenizer as the
        stage's `best` checkpoint;
        `state.best_checkpoint` and `state.metrics` are updated and the best value reported.
        `strategy` (default: the one `params.strategy` names) computes each step's gradients.
        `data` (a `FitData`) replaces the train and validation splits with features the stage
        encoded itself and its own evaluation of them (the `preference` stage trains on
        preference pairs this way).
        """

    @abstractmethod
    def evaluate(
        self,
        state: PipelineState,
        split: str,
        *,
        prefix: str | None = None,
        batch_size: int = 64,
        precision: Precision = "auto",
        generation: GenerationParams | None = None,
    ) -> dict[str, float]:
        """Loss and every configured metric of `state.model` on `split`, named
        ``<prefix>/<name>`` (default prefix: ``train``, ``val`` or ``test``). A generation
        task's metrics come from outputs for every example, decoded as `generation` says
        (default: greedy, 64 new tokens)."""

    @abstractmethod
    def features(self, state: PipelineState, split: str) -> Features:
        """The tokenised `split` of `state` (cached, so later stages do not tokenise again);
        `DataError` when the split is missing or empty."""

    @abstractmethod
    def encode(
        self, examples: Sequence[Example], tokenizer: Any, labels: Sequence[str], task: str
    ) -> Features:
        """Tokenise examples (truncated to the experiment's `max_length`) with label ids."""

    @abstractmethod
    def predict(
        self,
        model: Any,
        features: Features,
        *,
        batch_size: int = 64,
        precision: Precision = "auto",
        with_probabilities: bool = False,
    ) -> Predictions:
        """Run `model` over `features` on the stage's device; predictions in their order."""

    @abstractmethod
    def score(
        self, predictions: Predictions, features: Features, labels: Sequence[str], prefix: str
    ) -> dict[str, float]:
        """Loss and every configured metric of `predictions`, named ``<prefix>/<name>``."""

    @abstractmethod
    def load_model(
        self,
        task: str,
        labels: Sequence[str],
        *,
        source: str | None = None,
        config: dict[str, Any] | None = None,
        tokenizer: str | None = None,
    ) -> tuple[Any, Any]:
        """Load `(model, tokenizer)` for `task` with a head for `labels`.

        `source` is what an experiment's `model` takes (a Hugging Face id from the local
        cache, a path relative to the project, or ``package:MODULE/SUBPATH``); `config` (a
        `model_type` and config keys) builds a randomly initialised model instead, with the
        tokenizer from `tokenizer` (default: `source`). Errors are one-line `ConfigError`s.
        """

    @abstractmethod
    def generate(
        self,
        state: PipelineState,
        examples: Sequence[Example],
        generation: GenerationParams | None = None,
        *,
        batch_size: int = 16,
        precision: Precision = "auto",
    ) -> list[str]:
        """What `state.model` generates for each example's prompt (a generation task's
        model; `ConfigError` for a classification task). `generation` says how to decode
        (default: greedy, 64 new tokens)."""

    @abstractmethod
    def save_model(self, state: PipelineState, folder: Path) -> bool:
        """Save `state.model` and its tokenizer (safetensors) to `folder`, the way checkpoints
        are saved, and return True when it is a kept adapter rather than a plain model.

        A plain model loads back with ``AutoModelFor<Task>.from_pretrained(folder)``. A model
        that keeps its adapter (prompt, prefix or P-tuning: they cannot be merged) is saved as
        the adapter with its base model in ``folder/base``, which
        ``peft.AutoPeftModelFor<Task>.from_pretrained(folder)`` loads, and
        ``PeftModel.from_pretrained(AutoModelFor<Task>.from_pretrained(folder / "base"),
        folder)`` too once the folder has moved."""

    @abstractmethod
    def save_checkpoint(self, state: PipelineState, name: str = "best") -> Path:
        """Save `state.model` and its tokenizer (safetensors) to ``ctx.stage_dir / name``,
        record the folder as a `checkpoint` artifact, and make it `state.best_checkpoint`:
        the checkpoint handed to the next stage."""

    # --- for stages that run their own passes or optimisation --------------------------

    @abstractmethod
    def batches(self, features: Features, batch_size: int) -> Iterator[dict[str, Any]]:
        """Model inputs for `batch_size` rows of `features` at a time (groups of rows, for
        features with ``group > 1``), in their order: tensors `input_ids`, `attention_mask`,
        `labels` (and `token_type_ids` for text pairs), each batch cut to its longest row and
        on the stage's device."""

    @abstractmethod
    def autocast(self, precision: Precision) -> AbstractContextManager[Any]:
        """A context in which forward passes run in `precision` on the stage's device (what
        the training loop uses; a context that does nothing for plain fp32)."""

    @abstractmethod
    def autocast_dtype(self, precision: Precision) -> Any:
        """The `torch.dtype` to autocast to on the stage's device, or None for plain fp32."""

    @abstractmethod
    def param_groups(self, model: Any, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW parameter groups of `model`: weight decay on all trainable weights but
        biases and norms."""

    @abstractmethod
    def lr_factor(self, schedule: Schedule, warmup: int, total: int) -> Callable[[int], float]:
        """The learning-rate multiplier after a number of optimizer steps: linear warm-up
        over `warmup` steps, then `schedule` decay to 0 at `total` (for `LambdaLR`)."""

    @abstractmethod
    def encoder_layers(self, model: Any) -> tuple[str, int]:
        """The name of `model`'s list of encoder layers and how many it holds."""

    @abstractmethod
    def loading(self) -> AbstractContextManager[Any]:
        """Hold this while importing or building transformers classes yourself: runs that
        start together would race on transformers' lazy imports."""
