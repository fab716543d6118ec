"""Built-in stages for multi-step recipes: mlm, augment, predict and distill.

Only parameter declarations live here, so loading plugins stays fast; each stage imports its
implementation inside `run()`. They are registered by `tuneboard.builtin.stages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

from tuneboard.builtin.stages import FinetuneParams
from tuneboard.sdk.contracts import PipelineState, Stage, StageContext
from tuneboard.sdk.params import param

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISION_HELP = "Numeric precision: auto = bf16 on a GPU that supports it, else fp32"


@dataclass
class MlmParams:
    """Parameters of the `mlm` stage."""

    epochs: int = param(1, "Passes over the texts", min=1)
    max_steps: int = param(0, "Stop after this many optimizer steps (0 = no limit)", min=0)
    batch_size: int = param(16, "Texts per batch", min=1)
    eval_batch_size: int = param(64, "Texts per batch when measuring validation perplexity", min=1)
    lr: float = param(5e-5, "Peak learning rate (AdamW)", min=0)
    weight_decay: float = param(0.01, "AdamW weight decay (not on biases and norms)", min=0)
    warmup_ratio: float = param(
        0.1, "Share of the optimizer steps spent warming the learning rate up", min=0, max=1
    )
    max_grad_norm: float = param(1.0, "Clip the gradient norm to this (0 = no clipping)", min=0)
    mask_probability: float = param(
        0.15,
        "Share of tokens (or words) to predict; of those 80% become [MASK], 10% a random "
        "token, 10% stay",
        min=0.01,
        max=1,
    )
    whole_word_mask: bool = param(
        False, "Mask every sub-word of a chosen word together (needs a fast tokenizer)"
    )
    include_validation: bool = param(
        False,
        "Train on the validation split's texts too (val/perplexity is then measured on seen text)",
    )
    precision: Precision = param("auto", PRECISION_HELP)


class Mlm(Stage[MlmParams]):
    """Continued masked-language-model pretraining of the encoder on the task's own texts."""

    name = "mlm"
    Params = MlmParams
    description = "Continue pretraining the encoder (masked LM) on the training texts"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train a masked-LM head on the encoder, then hand the adapted encoder on."""
        from tuneboard.builtin.mlm import run_mlm

        return run_mlm(self.params, ctx, state)


AugmentOperation = Literal["swap", "delete", "insert", "synonym"]


@dataclass
class AugmentParams:
    """Parameters of the `augment` stage."""

    operations: list[AugmentOperation] = param(
        ["swap", "delete", "insert"],
        "Operations to draw from, one per new example: swap words, delete words, insert a "
        "word, replace words by synonyms (synonym needs the synonyms file)",
    )
    ratio: float = param(
        0.5, "New examples to try to make, as a share of the training split (1.0 doubles it)", min=0
    )
    changes: float = param(
        0.1, "Share of an example's words each operation changes (at least one)", min=0, max=1
    )
    synonyms: str | None = param(
        None,
        "File of synonyms, one 'word<TAB>synonym,synonym' per line (relative to the project "
        "folder); used by synonym and insert",
    )

    def __post_init__(self) -> None:
        if not self.operations:
            raise ValueError("key 'operations' must name at least one operation")
        if "synonym" in self.operations and not self.synonyms:
            raise ValueError("key 'operations': 'synonym' needs key 'synonyms' (a synonyms file)")


class Augment(Stage[AugmentParams]):
    """Seeded augmentation of the training split: swap, delete, insert, synonym replacement."""

    name = "augment"
    Params = AugmentParams
    description = "Add changed copies of training examples (word swaps, deletions, synonyms)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Add the new examples to the train split; log `augment/added`."""
        from tuneboard.builtin.augment import run_augment

        p = self.params
        return run_augment(p.operations, p.ratio, p.changes, p.synonyms, ctx, state)


@dataclass
class PredictParams:
    """Parameters of the `predict` stage."""

    split: Literal["test", "validation", "train"] = param(
        "test", "Split to predict (when no file is given)"
    )
    file: str | None = param(
        None,
        "A file to predict instead of a split (relative to the project folder). Token "
        "classification: CoNLL (tags optional) or .txt, a sentence per line; otherwise .txt, "
        "a text per line, or .csv, .tsv, .jsonl with text_column",
    )
    text_column: str = param("text", "Column (or JSON field) holding the texts of a file")
    label_column: str = param(
        "label", "Column (or JSON field) of reference labels in a file, copied when present"
    )
    format: Literal["csv", "jsonl"] = param(
        "csv",
        "csv: a row per text with a prob_<label> column per label, or a row per word; jsonl: "
        "an object per text or sentence",
    )
    output: str = param(
        "", "File inside the run's folder (empty = predictions-<split or file name>.<format>)"
    )
    batch_size: int = param(64, "Examples per batch", min=1)
    precision: Precision = param("auto", PRECISION_HELP)

    def __post_init__(self) -> None:
        path = PurePath(self.output)
        if self.output and (path.is_absolute() or ".." in path.parts or not path.name):
            raise ValueError(
                "key 'output' must be a relative path inside the run's folder "
                f"(no '..', not absolute), got {self.output!r}"
            )


class Predict(Stage[PredictParams]):
    """Write the current model's predictions for a split or a file."""

    name = "predict"
    Params = PredictParams
    description = "Write predictions (labels and probabilities, or tags) to a CSV or JSONL file"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Predict and write the file; record it as a `predictions` artifact."""
        from tuneboard.builtin.predict import run_predict

        return run_predict(self.params, ctx, state)


@dataclass
class DistillParams(FinetuneParams):
    """Parameters of the `distill` stage: those of `finetune` for training the student (but
    `strategy`: the student trains on the distillation loss), and the student and the loss
    mix."""

    strategy: str = field(default="standard", init=False)
    strategy_params: dict[str, Any] = field(default_factory=dict, init=False)

    student: str | dict[str, Any] = param(
        {},
        "The student: a config table like a model's (model_type, hidden_size ...; the "
        "teacher's tokenizer), a model source sharing the teacher's tokenizer, or {} for the "
        "teacher with every other encoder layer (initialised from the teacher's)",
    )
    temperature: float = param(2.0, "Softmax temperature of the soft targets", min=0.01)
    alpha: float = param(
        0.5,
        "Weight of the soft-target loss (KL to the teacher, times temperature²); the rest "
        "goes to cross-entropy on the labels",
        min=0,
        max=1,
    )


class Distill(Stage[DistillParams]):
    """Knowledge distillation: train a smaller student on the current model's soft targets."""

    name = "distill"
    Params = DistillParams
    description = "Distil the current model into a smaller student, which becomes the model"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train the student like `finetune` does, then hand it on as the model."""
        from tuneboard.builtin.distill import run_distill

        return run_distill(self.params, ctx, state)


RECIPE_STAGES: tuple[type[Stage[Any]], ...] = (Mlm, Augment, Predict, Distill)
