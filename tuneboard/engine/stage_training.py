"""The engine's side of the training facade: `tuneboard.Training` for one stage.

Each method imports the torch-using module it delegates to when it is called, so building a
stage context stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tuneboard.sdk.contracts import Example, PipelineState, StageContext, Strategy, split_prefix
from tuneboard.sdk.tasks import GenerationParams
from tuneboard.sdk.training import (
    Features,
    FitData,
    FitResult,
    Precision,
    Predictions,
    Schedule,
    Training,
    TrainParams,
)


class StageTraining(Training):
    """`Training` for the stage whose context is `ctx` (its device, seed, metrics, folder)."""

    def __init__(self, ctx: StageContext) -> None:
        self._ctx = ctx

    def fit(
        self,
        state: PipelineState,
        params: TrainParams,
        strategy: Strategy[Any] | None = None,
        *,
        data: FitData | None = None,
    ) -> FitResult:
        """Train with the one training loop (see `tuneboard.engine.training.fit`)."""
        from tuneboard.engine.training import fit

        if strategy is None:
            strategy = self._ctx.strategy(params.strategy, params.strategy_params)
        return fit(self._ctx, state, params, strategy, data)

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
        """Loss and metrics of `state.model` on `split`."""
        from tuneboard.engine.training import evaluate

        return evaluate(
            self._ctx,
            state,
            split,
            prefix or split_prefix(split),
            batch_size=batch_size,
            precision=precision,
            generation=generation,
        )

    def features(self, state: PipelineState, split: str) -> Features:
        """The cached features of `split`."""
        from tuneboard.engine.data import split_features

        return split_features(state, split, self._ctx.max_length, self._ctx.task)

    def encode(
        self, examples: Sequence[Example], tokenizer: Any, labels: Sequence[str], task: str
    ) -> Features:
        """Tokenise `examples` to the experiment's `max_length`."""
        from tuneboard.engine.data import encode

        plugin = self._ctx.task
        if plugin is not None and plugin.name == task:
            return plugin.encode(examples, tokenizer, self._ctx.max_length)
        return encode(examples, tokenizer, labels, self._ctx.max_length, task)

    def predict(
        self,
        model: Any,
        features: Features,
        *,
        batch_size: int = 64,
        precision: Precision = "auto",
        with_probabilities: bool = False,
    ) -> Predictions:
        """Predictions of `model` on the stage's device, stopping when the run is cancelled."""
        from tuneboard.engine.training import autocast_dtype, predict

        model.to(self._ctx.device)
        return predict(
            model,
            features,
            batch_size=batch_size,
            device=self._ctx.device,
            dtype=autocast_dtype(precision, self._ctx.device),
            with_probabilities=with_probabilities,
            check_stop=self._ctx.check_stop,
        )

    def score(
        self, predictions: Predictions, features: Features, labels: Sequence[str], prefix: str
    ) -> dict[str, float]:
        """Loss and every configured metric."""
        from tuneboard.engine.training import score

        return score(self._ctx, predictions, features, list(labels), prefix)

    def load_model(
        self,
        task: str,
        labels: Sequence[str],
        *,
        source: str | None = None,
        config: dict[str, Any] | None = None,
        tokenizer: str | None = None,
    ) -> tuple[Any, Any]:
        """Load or build a model the way an experiment's `model` table does."""
        from tuneboard.config import ModelSpec
        from tuneboard.engine.models import load_model_and_tokenizer

        spec = ModelSpec(source=source, config=config, tokenizer=tokenizer)
        plugin = self._ctx.task
        if plugin is not None and plugin.name != task:
            plugin = None
        return load_model_and_tokenizer(spec, task, list(labels), self._ctx.project_dir, plugin)

    def generate(
        self,
        state: PipelineState,
        examples: Sequence[Example],
        generation: GenerationParams | None = None,
        *,
        batch_size: int = 16,
        precision: Precision = "auto",
    ) -> list[str]:
        """The task plugin's outputs of `state.model` for `examples`."""
        from tuneboard.engine.training import autocast_context, require_task

        task = require_task(self._ctx, "generate")
        state.model.to(self._ctx.device)
        device = self._ctx.device
        return task.generate(
            self._ctx,
            state.model,
            state.tokenizer,
            examples,
            generation or GenerationParams(),
            batch_size=batch_size,
            autocast=lambda: autocast_context(device, precision),
        )

    def save_model(self, state: PipelineState, folder: Path) -> bool:
        """Save the model and tokenizer to `folder`; True for a kept adapter."""
        from tuneboard.engine.adapters import is_peft_model, save_model

        save_model(state.model, state.tokenizer, folder)
        return is_peft_model(state.model)

    def save_checkpoint(self, state: PipelineState, name: str = "best") -> Path:
        """Save the model and tokenizer to the stage's folder and hand them on."""
        from tuneboard.engine.training import save_checkpoint

        return save_checkpoint(self._ctx, state, name)

    def batches(self, features: Features, batch_size: int) -> Iterator[dict[str, Any]]:
        """Batches in the features' order, padded per batch, on the stage's device;
        `batch_size` counts the features' groups of rows."""
        import numpy as np

        from tuneboard.engine.data import batches

        order = np.arange(len(features))
        return batches(features, batch_size * features.group, order, self._ctx.device)

    def autocast(self, precision: Precision) -> AbstractContextManager[Any]:
        """The training loop's autocast context for `precision` on the stage's device."""
        from tuneboard.engine.training import autocast_context

        return autocast_context(self._ctx.device, precision)

    def autocast_dtype(self, precision: Precision) -> Any:
        """The autocast dtype on the stage's device."""
        from tuneboard.engine.training import autocast_dtype

        return autocast_dtype(precision, self._ctx.device)

    def param_groups(self, model: Any, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups with and without weight decay."""
        from tuneboard.engine.trainable import decay_groups

        return decay_groups(model, weight_decay)

    def lr_factor(self, schedule: Schedule, warmup: int, total: int) -> Callable[[int], float]:
        """The warm-up and decay multiplier."""
        from tuneboard.engine.training import lr_factor

        return lr_factor(schedule, warmup, total)

    def encoder_layers(self, model: Any) -> tuple[str, int]:
        """The encoder's layer list and its length."""
        from tuneboard.engine.trainable import encoder_layers

        return encoder_layers(model)

    def loading(self) -> AbstractContextManager[Any]:
        """The process-wide model-loading lock."""
        from tuneboard.engine.models import MODEL_LOAD_LOCK

        return MODEL_LOAD_LOCK
