"""The `distill` stage's work: knowledge distillation of the current model into a student.

The student trains in the shared training loop (evaluation, best checkpoint, early stopping
as in `finetune`) with a strategy whose loss mixes the KL divergence to the teacher's
softened predictions and the cross-entropy on the labels (Hinton et al.); the best student
then replaces the teacher as the pipeline's model.

Imports torch at module level: the stage imports this module inside `run()`.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tuneboard.builtin.finetune import finetune_settings
from tuneboard.builtin.recipe_stages import DistillParams
from tuneboard.builtin.stages import FinetuneParams
from tuneboard.config import ModelSpec
from tuneboard.engine.data import IGNORE_INDEX
from tuneboard.engine.models import load_model_and_tokenizer
from tuneboard.engine.trainable import encoder_layers
from tuneboard.engine.training import fit
from tuneboard.sdk.contracts import NoParams, PipelineState, StageContext, Strategy, TrainStep
from tuneboard.sdk.errors import ConfigError


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

    def step(self, inputs: TrainStep) -> float:
        """Teacher forward (no gradients), student forward, backward of the mixed loss."""
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
        return float(loss.detach())


def every_other_layer(teacher: Any) -> Any:
    """A copy of `teacher` keeping its 1st, 3rd, 5th ... encoder layer (and everything else)."""
    layers, count = encoder_layers(teacher)
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
        return every_other_layer(state.model)
    if isinstance(student, Mapping):
        with tempfile.TemporaryDirectory() as folder:
            state.tokenizer.save_pretrained(folder)
            spec = ModelSpec(source=None, config=dict(student), tokenizer=str(Path(folder)))
            model, _ = load_model_and_tokenizer(spec, state.task, state.labels, ctx.project_dir)
        return model
    model, tokenizer = load_model_and_tokenizer(
        ModelSpec(source=student), state.task, state.labels, ctx.project_dir
    )
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
    torch.manual_seed(ctx.seed)
    student = build_student(params.student, ctx, state)
    ctx.event(f"distilling {_count(teacher):,} parameters into {_count(student):,}")
    teacher.requires_grad_(False)
    state.model = student
    finetune = {f.name: getattr(params, f.name) for f in dataclasses.fields(FinetuneParams)}
    loss = DistillationLoss(teacher, params.temperature, params.alpha)
    fit(ctx, state, finetune_settings(FinetuneParams(**finetune)), loss)
    return state
