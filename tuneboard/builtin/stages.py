"""Built-in stages: finetune, single_step, evaluate and export.

Only parameter declarations and registration live here, so loading plugins stays fast; each
stage imports its torch-using implementation inside `run()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from tuneboard.sdk.contracts import PipelineState, Stage, StageContext
from tuneboard.sdk.hookspecs import hookimpl
from tuneboard.sdk.params import param

Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class FinetuneParams:
    """Parameters of the `finetune` stage."""

    epochs: int = param(3, "Passes over the training split", min=1)
    max_steps: int = param(0, "Stop after this many optimizer steps (0 = no limit)", min=0)
    batch_size: int = param(16, "Examples per micro-batch", min=1)
    group_by_length: bool = param(
        False,
        "Batch examples of similar length together (less padding, much faster on short"
        " texts); batches still come in random order",
    )
    eval_batch_size: int = param(64, "Examples per batch when evaluating", min=1)
    lr: float = param(5e-5, "Peak learning rate (AdamW)", min=0)
    layer_lr_decay: float = param(
        1.0,
        "Layer-wise lr decay: the head and top encoder layer train at lr, each layer below at "
        "this times the one above, the embeddings lowest (1.0 = off)",
        min=0,
        max=1,
    )
    weight_decay: float = param(
        0.01, "AdamW weight decay (never on biases and LayerNorm weights)", min=0
    )
    warmup_ratio: float = param(
        0.1, "Share of the optimizer steps spent warming the learning rate up", min=0, max=1
    )
    warmup_steps: int = param(0, "Warm-up length in optimizer steps (0 = use warmup_ratio)", min=0)
    scheduler: Literal["linear", "cosine", "constant"] = param(
        "linear", "Learning-rate decay after warm-up: linear or cosine to 0, or constant"
    )
    max_grad_norm: float = param(1.0, "Clip the gradient norm to this (0 = no clipping)", min=0)
    grad_accum: int = param(1, "Micro-batches whose gradients add up to one optimizer step", min=1)
    precision: Precision = param(
        "auto", "Numeric precision: auto = bf16 on a GPU that supports it, else fp32"
    )
    train: Literal["all", "head", "top_k", "lora"] = param(
        "all", "What trains: all weights, the head only, the top_k layers + head, or LoRA"
    )
    top_k: int = param(2, "With train = top_k: how many of the top encoder layers train", min=1)
    lora_r: int = param(8, "With train = lora: rank of the adapters", min=1)
    lora_alpha: int = param(16, "With train = lora: scaling numerator (alpha / r)", min=1)
    lora_dropout: float = param(
        0.1, "With train = lora: dropout on the adapter input", min=0, max=1
    )
    lora_targets: list[str] = param(
        ["query", "value"], "With train = lora: names of the modules that get adapters"
    )
    eval_every: int = param(
        0, "Evaluate every this many optimizer steps (0 = at the end of each epoch)", min=0
    )
    monitor: str = param(
        "", "Value that picks the best checkpoint, e.g. val/loss (empty = val/<first metric>)"
    )
    mode: Literal["auto", "max", "min"] = param(
        "auto", "Whether the monitored value should go up or down (auto = from the metric)"
    )
    patience: int = param(
        0, "Stop after this many evaluations without improvement (0 = never stop early)", min=0
    )
    min_delta: float = param(0.0, "Smallest change of the monitored value that counts", min=0)
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
        "skip that optimizer step",
    )
    resumable: bool = param(
        True,
        "Write a resume checkpoint (weights, optimizer, RNG ...) after each evaluation and on "
        "cancel, so `tuneboard resume` goes on from there; about 3x the model's size on disk",
    )


class Finetune(Stage[FinetuneParams]):
    """Multi-step fine-tuning with evaluation, best checkpoint and early stopping."""

    name = "finetune"
    Params = FinetuneParams
    description = "Fine-tune with warm-up and decay, keep the best checkpoint, stop early"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train, then hand the best weights on."""
        from tuneboard.builtin.finetune import run_finetune

        return run_finetune(self.params, ctx, state)


@dataclass
class SingleStepParams:
    """Parameters of the `single_step` stage."""

    lr: float = param(5e-5, "Learning rate of the one update (AdamW)", min=0)
    batch_size: int = param(16, "Examples per micro-batch (gradients add up over all)", min=1)
    eval_batch_size: int = param(64, "Examples per batch when evaluating", min=1)
    weight_decay: float = param(0.01, "AdamW weight decay", min=0)
    max_grad_norm: float = param(1.0, "Clip the gradient norm to this (0 = no clipping)", min=0)
    precision: Precision = param(
        "auto", "Numeric precision: auto = bf16 on a GPU that supports it, else fp32"
    )


class SingleStep(Stage[SingleStepParams]):
    """One gradient update over the whole training split: the baseline for multi-step runs."""

    name = "single_step"
    Params = SingleStepParams
    description = "One optimizer step on gradients of the whole training split (a baseline)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Take the one step, then evaluate on validation."""
        from tuneboard.builtin.finetune import run_single_step

        return run_single_step(self.params, ctx, state)


@dataclass
class EvaluateParams:
    """Parameters of the `evaluate` stage."""

    split: Literal["test", "validation", "train"] = param("test", "Split to evaluate on")
    batch_size: int = param(64, "Examples per batch", min=1)
    precision: Precision = param(
        "auto", "Numeric precision: auto = bf16 on a GPU that supports it, else fp32"
    )
    predictions: bool = param(
        True,
        "Write each example's label, prediction and probabilities to predictions-<split>.jsonl "
        "in the stage's folder (what `tuneboard review` reads; sequence classification)",
    )


class Evaluate(Stage[EvaluateParams]):
    """Loss and every configured metric of the current model on one split."""

    name = "evaluate"
    Params = EvaluateParams
    description = "Measure the current model on a split (test by default)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Evaluate and log ``<split>/<metric>`` values."""
        from tuneboard.builtin.evaluate import run_evaluate

        return run_evaluate(self.params, ctx, state)


@dataclass
class ExportParams:
    """Parameters of the `export` stage."""

    folder: str = param("export", "Folder inside the run's folder to write the model to")

    def __post_init__(self) -> None:
        path = PurePath(self.folder)
        if not self.folder.strip() or path.is_absolute() or ".." in path.parts or not path.name:
            raise ValueError(
                "key 'folder' must be a relative path inside the run's folder "
                f"(no '..', not absolute), got {self.folder!r}"
            )


class Export(Stage[ExportParams]):
    """Write the current model, tokenizer, labels and metrics to a folder."""

    name = "export"
    Params = ExportParams
    description = "Save the model (safetensors), tokenizer, labels.json and metrics.json"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Write the files and record the folder as a `model` artifact."""
        from tuneboard.builtin.export import run_export

        return run_export(self.params, ctx, state)


@hookimpl
def register_stages(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in stages (and those of `recipe_stages`, `feedback` and `repeat`)."""
    from tuneboard.builtin.feedback import Feedback
    from tuneboard.builtin.recipe_stages import RECIPE_STAGES  # it builds on FinetuneParams
    from tuneboard.builtin.repeat import Repeat

    stages: tuple[type[Stage[Any]], ...] = (Finetune, SingleStep, Evaluate, Export)
    loops: tuple[type[Stage[Any]], ...] = (Feedback, Repeat)
    for stage in (*stages, *RECIPE_STAGES, *loops):
        register(stage)
