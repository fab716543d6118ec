"""The `distill` stage: knowledge distillation of the current model into a smaller student.

The student trains in the one training loop (evaluation, best checkpoint, early stopping as in
`finetune`) with a strategy whose loss mixes the KL divergence to the teacher's softened
predictions and the cross-entropy on the labels (Hinton et al.); the best student then
replaces the teacher as the pipeline's model. torch is imported inside the work.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneboard import (
    IGNORE_INDEX,
    ConfigError,
    NoParams,
    PipelineState,
    Stage,
    StageContext,
    Strategy,
    Training,
    TrainParams,
    TrainStep,
    param,
)

if TYPE_CHECKING:
    import torch


@dataclass
class DistillParams(TrainParams):
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
    temperature: float = param(2.0, "Softmax temperature of the soft targets", min=0.01, max=100)
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
        return run_distill(self.params, ctx, state)


class DistillationLoss(Strategy[NoParams]):
    """The training step of a student: ``alpha`` × T² × KL(teacher_T ‖ student_T) +
    (1 − ``alpha``) × cross-entropy on the labels, over labelled tokens for token
    classification. Returns that mixed loss."""

    name = "distillation"
    description = "Soft targets of a teacher mixed with the labels"

    def __init__(self, teacher: Any, temperature: float, alpha: float) -> None:
        super().__init__(NoParams())
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha

    def setup(self, model: Any) -> None:
        """Put the teacher on the student's device, in evaluation mode."""
        device = next(model.parameters()).device
        self.teacher.to(device).eval()

    def step(self, inputs: TrainStep) -> Any:
        """Teacher forward (no gradients), student forward, backward of the mixed loss."""
        import torch
        import torch.nn.functional as F

        batch = inputs.batch
        with torch.no_grad():
            teacher = self.teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits
        outputs = inputs.forward(batch)
        student, teacher = outputs.logits.float(), teacher.float()
        if student.ndim == 3:
            keep = batch["labels"] != IGNORE_INDEX
            student, teacher = student[keep], teacher[keep]
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student / t, dim=-1),
            F.log_softmax(teacher / t, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        loss = self.alpha * soft * t * t + (1 - self.alpha) * outputs.loss
        inputs.backward(loss)
        return loss.detach()


def every_other_layer(teacher: Any, training: Training) -> Any:
    """A copy of `teacher` keeping its 1st, 3rd, 5th ... encoder layer (and everything else)."""
    layers, count = training.encoder_layers(teacher)
    keep = list(range(0, count, 2))
    config = copy.deepcopy(teacher.config)
    if not isinstance(getattr(config, "num_hidden_layers", None), int):
        raise ConfigError("distill: cannot shrink this model by itself; give a student table")
    config.num_hidden_layers = len(keep)
    student = type(teacher)(config)
    new_index = {old: new for new, old in enumerate(keep)}
    layer = re.compile(re.escape(layers) + r"\.(\d+)\.")
    weights: dict[str, torch.Tensor] = {}
    for key, value in teacher.state_dict().items():
        found = layer.match(key)
        if found is None:
            weights[key] = value
        elif int(found.group(1)) in new_index:
            renamed = (
                f"{key[: found.start(1)]}{new_index[int(found.group(1))]}{key[found.end(1) :]}"
            )
            weights[renamed] = value
    student.load_state_dict(weights)
    return student


def build_student(student: str | Mapping[str, Any], ctx: StageContext, state: PipelineState) -> Any:
    """The student model the `student` parameter describes, with a head for `state.labels`."""
    if isinstance(student, Mapping) and not student:
        return every_other_layer(state.model, ctx.training)
    if isinstance(student, Mapping):
        with tempfile.TemporaryDirectory() as folder:
            state.tokenizer.save_pretrained(folder)
            model, _ = ctx.training.load_model(
                state.task, state.labels, config=dict(student), tokenizer=str(Path(folder))
            )
        return model
    model, tokenizer = ctx.training.load_model(state.task, state.labels, source=student)
    if tokenizer.get_vocab() != state.tokenizer.get_vocab():
        raise ConfigError(
            f"distill: student {student!r} has another tokenizer than the teacher; "
            "distillation here needs the same one"
        )
    return model


def _count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def run_distill(params: DistillParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Train a student on the current model's soft targets; it becomes `state.model`."""
    teacher = state.model
    if teacher is None or state.tokenizer is None:
        raise ConfigError("distill: no model in the pipeline state")
    import torch

    torch.manual_seed(ctx.seed)
    student = build_student(params.student, ctx, state)
    ctx.event(f"distilling {_count(teacher):,} parameters into {_count(student):,}")
    teacher.requires_grad_(False)
    state.model = student
    loss = DistillationLoss(teacher, params.temperature, params.alpha)
    ctx.training.fit(state, params, loss)
    return state
