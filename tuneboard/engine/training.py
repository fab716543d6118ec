"""The training loop shared by training stages, and evaluation on a split.

Imports torch at module level: stages import this module inside `run()`, never at start-up.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tuneboard.engine import checkpoint, killpoints, ranks, sharding
from tuneboard.engine.adapters import (
    PEFT_MODES,
    add_adapters,
    finish,
    is_peft_model,
    kept_mode,
    save_model,
    step_hook,
)
from tuneboard.engine.averaging import WeightAverage
from tuneboard.engine.data import (
    batch_order,
    batches,
    num_batches,
    pad_multiple,
    split_features,
)
from tuneboard.engine.quantization import QLORA, is_4bit, reload_4bit
from tuneboard.engine.trainable import (
    decay_groups,
    disable_gradient_checkpointing,
    enable_gradient_checkpointing,
    freeze_except,
    set_dropout,
)
from tuneboard.sdk.contracts import Example, PipelineState, StageContext, Strategy, TrainStep
from tuneboard.sdk.errors import ConfigError, DataError, RunCancelled, TuneboardError
from tuneboard.sdk.tasks import EvaluationInputs, GenerationParams, Task
from tuneboard.sdk.training import (
    IGNORE_INDEX,
    Features,
    FitData,
    FitResult,
    NonFiniteLoss,
    Precision,
    Predictions,
    TrainParams,
)

MAX_SKIPPED_IN_A_ROW = 10
"""With ``nan_policy = "skip"``: this many non-finite steps in a row stop the run anyway."""


# --- precision ----------------------------------------------------------------------------


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32."""
    cuda = device.startswith("cuda")
    if precision == "auto":
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16 if cuda else None
    if precision == "fp32":
        return None
    raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")


def _autocast(
    device: str, dtype: torch.dtype | None
) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    if dtype is None:
        return contextlib.nullcontext
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    return lambda: torch.autocast(device_type=device_type, dtype=dtype)


def autocast_context(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """A context that runs forward passes in `precision` on `device` (no-op for fp32)."""
    return _autocast(device, autocast_dtype(precision, device))()


def fused_adamw(device: str) -> bool | None:
    """Whether to ask for the fused AdamW: on CUDA, and on the CPU from torch 2.4 on.

    One kernel updates every parameter, where the default on the CPU loops over them in
    Python: for MiniLM on 2 cores an optimizer step takes ~35 ms instead of ~300 ms (see
    BENCHMARKS.md). None leaves torch's default.
    """
    if device.startswith("cuda"):
        return True
    if device == "cpu":
        major, minor = (int(part) for part in torch.__version__.split(".")[:2])
        return (major, minor) >= (2, 4) or None
    return None


# --- schedule -----------------------------------------------------------------------------


def lr_factor(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate multiplier after `step` optimizer steps: linear warm-up over
    `warmup` steps, then linear or cosine decay to 0 at `total`, or constant."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


def warmup_steps(settings: TrainParams, total: int) -> int:
    """Warm-up length in optimizer steps."""
    if settings.warmup_steps > 0:
        return min(settings.warmup_steps, total)
    return math.ceil(settings.warmup_ratio * total)


# --- evaluation ---------------------------------------------------------------------------


def predict(
    model: Any,
    features: Features,
    *,
    batch_size: int,
    device: str,
    dtype: torch.dtype | None = None,
    with_probabilities: bool = False,
    check_stop: Callable[[], None] | None = None,
    multiple: int = 1,
) -> Predictions:
    """Run `model` over `features` (longest rows first) and return predictions in the
    features' order; batch widths are rounded up to a multiple of `multiple`."""
    autocast = _autocast(device, dtype)
    order = batch_order(features, shuffle=False, seed=0)
    width = features.input_ids.shape[1]
    token_level = features.labels.ndim == 2
    loss_sum = torch.zeros((), device=device)
    ids: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for batch in batches(features, batch_size, order, device, multiple):
            if check_stop is not None:
                check_stop()
            labels = batch.pop("labels")
            with autocast():
                logits = model(**batch).logits
            logits = logits.float()
            loss_sum += F.cross_entropy(
                logits.flatten(0, -2), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
            )
            if token_level:
                pad = width - logits.shape[1]
                ids.append(F.pad(logits.argmax(-1), (0, pad), value=IGNORE_INDEX))
                if with_probabilities:
                    probs.append(F.pad(logits.softmax(-1), (0, 0, 0, pad)))
            else:
                ids.append(logits.argmax(-1))
                if with_probabilities:
                    probs.append(logits.softmax(-1))
    counted = int((features.labels != IGNORE_INDEX).sum())
    loss = loss_sum.item() / counted if counted else math.nan
    return Predictions(
        label_ids=_restore(torch.cat(ids), order),
        probabilities=_restore(torch.cat(probs), order) if with_probabilities else None,
        loss=loss,
    )


def _restore(values: torch.Tensor, order: np.ndarray) -> np.ndarray:
    sorted_values = values.cpu().numpy()
    out = np.empty_like(sorted_values)
    out[order] = sorted_values
    return out


def score(
    ctx: StageContext, predictions: Predictions, features: Features, labels: list[str], prefix: str
) -> dict[str, float]:
    """Loss and every configured metric for `predictions`, named ``<prefix>/<name>``."""
    refs = features.labels
    if refs.ndim == 1:
        keep = refs != IGNORE_INDEX
        preds_list: list[Any] = predictions.label_ids[keep].tolist()
        refs_list: list[Any] = refs[keep].tolist()
    else:
        preds_list, refs_list = [], []
        for pred_row, ref_row in zip(predictions.label_ids, refs, strict=True):
            keep = ref_row != IGNORE_INDEX
            preds_list.append([labels[i] for i in pred_row[keep]])
            refs_list.append([labels[i] for i in ref_row[keep]])
    if not refs_list:
        raise DataError(f"no labelled examples to score for {prefix!r}")
    values = {f"{prefix}/loss": predictions.loss}
    for name, value in ctx.compute_metrics(preds_list, refs_list, labels).items():
        values[f"{prefix}/{name}"] = float(value)
    return values


def evaluate(
    ctx: StageContext,
    state: PipelineState,
    split: str,
    prefix: str,
    *,
    batch_size: int = 64,
    precision: Precision = "auto",
    generation: GenerationParams | None = None,
) -> dict[str, float]:
    """Evaluate `state.model` on `split`: ``<prefix>/loss`` and every configured metric
    (for a generation task, from outputs decoded as `generation` says, for every example)."""
    model = _require_model(state)
    model.to(ctx.device)
    features = split_features(state, split, ctx.max_length, ctx.task)
    _report_notes(ctx, split, features)
    if ctx.task is not None:
        values = task_evaluate(
            ctx,
            ctx.task,
            model,
            state.tokenizer,
            split,
            state.splits[split],
            features,
            batch_size=batch_size,
            dtype=autocast_dtype(precision, ctx.device),
            generate_samples=len(state.splits[split]),
            generation=generation,
            labels=state.labels,
            train=state.splits.get("train", ()),
        )
        return {f"{prefix}/{name}": value for name, value in values.items()}
    predictions = predict(
        model,
        features,
        batch_size=batch_size,
        device=ctx.device,
        dtype=autocast_dtype(precision, ctx.device),
        check_stop=ctx.check_stop,
        multiple=pad_multiple("auto", ctx.device),
    )
    return score(ctx, predictions, features, state.labels, prefix)


@contextlib.contextmanager
def _no_cache(model: Any) -> Iterator[None]:
    """Training keeps no key/value cache: a decoder that keeps one would also ignore the
    `position_ids` of packed rows (each example attending only to itself)."""
    config = getattr(model, "config", None)
    before = getattr(config, "use_cache", None)
    if before:
        config.use_cache = False  # type: ignore[union-attr]
    try:
        yield
    finally:
        if before:
            config.use_cache = before  # type: ignore[union-attr]


def _report_notes(ctx: StageContext, split: str, features: Features) -> None:
    for note in features.notes:
        ctx.event(f"{split} split: {note}", "warning")


def require_task(ctx: StageContext, what: str) -> Task[Any]:
    """The experiment's task plugin; `ConfigError` naming `what` for a classification task."""
    if ctx.task is None:
        raise ConfigError(
            f'{what}: needs a generation task (task = "causal-lm" or "seq2seq"), '
            "not a classification one"
        )
    return ctx.task


def task_evaluate(
    ctx: StageContext,
    task: Task[Any],
    model: Any,
    tokenizer: Any,
    split: str,
    examples: list[Example],
    features: Features,
    *,
    batch_size: int,
    dtype: torch.dtype | None,
    generate_samples: int,
    generation: GenerationParams | None = None,
    step: int | None = None,
    labels: Sequence[str] = (),
    train: Sequence[Example] = (),
) -> dict[str, float]:
    """A task plugin's values for `split` (without a prefix), model left in eval mode;
    `labels` (the label set) and `train` (the train split) are for labelled tasks."""
    model.eval()
    inputs = EvaluationInputs(
        model=model,
        tokenizer=tokenizer,
        split=split,
        examples=examples,
        features=features,
        batch_size=batch_size,
        autocast=_autocast(ctx.device, dtype),
        generate_samples=generate_samples,
        generation=generation or GenerationParams(),
        step=step,
        labels=labels,
        train=train,
    )
    return {name: float(value) for name, value in task.evaluate(ctx, inputs).items()}


def _require_model(state: PipelineState) -> Any:
    if state.model is None or state.tokenizer is None:
        raise ConfigError("no model in the pipeline state (the run did not load one)")
    return state.model


# --- best checkpoint ----------------------------------------------------------------------


class _Best:
    """Tracks the monitored value and keeps an in-memory copy of the best weights."""

    def __init__(self, monitor: str, higher: bool, min_delta: float) -> None:
        self.monitor = monitor
        self.higher = higher
        self.min_delta = min_delta
        self.value: float | None = None
        self.step: int | None = None
        self.metrics: dict[str, float] = {}
        self.bad_evals = 0
        self._copy: dict[str, torch.Tensor] = {}

    def update(self, model: Any, step: int, metrics: dict[str, float]) -> bool:
        """Record an evaluation; copy the weights and return True when it is an improvement."""
        if self.monitor not in metrics:
            found = ", ".join(sorted(metrics))
            raise ConfigError(f"monitor {self.monitor!r} is not measured; available: {found}")
        value = metrics[self.monitor]
        if self.value is not None and not self._better(value):
            self.bad_evals += 1
            return False
        self.value, self.step, self.metrics, self.bad_evals = value, step, dict(metrics), 0
        with torch.no_grad():
            for name, tensor in _changing_tensors(model):
                tensor = _whole(tensor)  # a shard (FSDP) gathered whole, on every rank
                if name in self._copy:
                    self._copy[name].copy_(tensor)
                else:
                    self._copy[name] = tensor.detach().clone()
        return True

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        assert self.value is not None
        if math.isnan(self.value):
            return True
        if self.higher:
            return value > self.value + self.min_delta
        return value < self.value - self.min_delta

    def restore(self, model: Any) -> None:
        """Load the best weights back into `model`."""
        with torch.no_grad():
            for name, tensor in _changing_tensors(model):
                tensor.copy_(self._copy[name])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The kept copy of the best weights, by name (for a resume checkpoint)."""
        return self._copy

    def meta(self) -> dict[str, Any]:
        """The early-stopping state as plain values (for a resume checkpoint)."""
        return {
            "value": self.value,
            "step": self.step,
            "metrics": self.metrics,
            "bad_evals": self.bad_evals,
        }

    def load(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Take back the state `meta()` and `tensors()` gave."""
        self.value, self.step = meta["value"], meta["step"]
        self.metrics, self.bad_evals = dict(meta["metrics"]), int(meta["bad_evals"])
        self._copy = dict(tensors)


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor whole: a sharded one (a DTensor, under FSDP) gathered from every rank."""
    full = getattr(tensor, "full_tensor", None)
    return full() if full is not None else tensor


def _changing_tensors(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    for name, param in model.named_parameters():
        if param.requires_grad:
            yield name, param
    yield from model.named_buffers()


# --- the loop -----------------------------------------------------------------------------


@dataclass
class _Gathered:
    """What a resume checkpoint of an FSDP run holds, gathered whole from the shards."""

    weights: dict[str, torch.Tensor]
    optim: Any
    ema: dict[str, torch.Tensor]


def resolve_monitor(
    ctx: StageContext, settings: TrainParams, own_evaluation: bool = False
) -> tuple[str, bool]:
    """The monitored value's name and whether higher is better (`own_evaluation`: a stage's
    `FitData` evaluates, so the default is its ``val/loss``)."""
    default = f"val/{ctx.metric_names[0]}" if ctx.metric_names else "val/loss"
    if own_evaluation or ctx.task is not None:
        # Generation metrics come from a capped sample (eval_generate_samples): the loss over
        # the whole split is the steadier guide, unless the stage names a metric.
        default = "val/loss"
    monitor = settings.monitor or default
    if not monitor.startswith("val/"):
        raise ConfigError(
            f"monitor {monitor!r}: must be a validation value such as 'val/loss' or 'val/accuracy'"
        )
    if settings.mode == "auto":
        return monitor, ctx.higher_is_better(monitor)
    return monitor, settings.mode == "max"


def fit(
    ctx: StageContext,
    state: PipelineState,
    settings: TrainParams,
    strategy: Strategy[Any],
    data: FitData | None = None,
) -> FitResult:
    """Train `state.model` on the train split; evaluate, keep the best, stop early.

    `data` replaces the train and validation splits with a stage's own features and
    evaluation (see `tuneboard.FitData`).

    On return `state.model` holds the best weights (adapters merged, except prompt-learning
    ones, which stay a `PeftModel`), saved with the tokenizer to ``ctx.stage_dir / "best"``;
    `state.best_checkpoint` and `state.metrics` are updated, and the best value is reported
    with `ctx.report_best`.

    With `settings.resumable`, it keeps a resume checkpoint in ``ctx.stage_dir`` (`checkpoint`)
    written after every evaluation (every epoch when there is no validation split) and when
    the run is cancelled; when one is there as it starts (a resumed run), training continues
    from it. The checkpoints are removed once the best weights are saved.
    """
    model = _require_model(state)
    torch.manual_seed(ctx.seed)
    validation = None
    if data is not None:
        train, validation = data.train, data.validation
    else:
        train = split_features(state, "train", ctx.max_length, ctx.task)
        if state.splits.get("validation"):
            validation = split_features(state, "validation", ctx.max_length, ctx.task)
    _report_notes(ctx, "train", train)
    if validation is not None:
        _report_notes(ctx, "validation", validation)
    if validation is None:
        ctx.event("no validation split: no evaluation, the last weights are kept", "warning")
    monitor, higher = resolve_monitor(ctx, settings, own_evaluation=data is not None)
    if settings.dropout is not None:
        set_dropout(model, settings.dropout)
    model = _trainable_model(
        ctx, state, model, settings, step_plan(settings, len(train) // train.group)[3]
    )

    own_evaluation = data.evaluate if data is not None else None
    loop = _Loop(
        ctx, state, settings, strategy, model, train, validation, monitor, higher, own_evaluation
    )
    with _no_cache(model):
        loop.run()
    if loop.ema is not None:
        loop.ema.copy_to_model()  # the last average; replaced below by the best one, if older

    best = loop.best
    if loop.stopped_early:
        ctx.event(
            f"early stop at step {loop.step}: {monitor} did not improve for "
            f"{settings.patience} evaluations"
        )
    if loop.ranks is not None:
        model = sharding.unwrap(model, loop.ranks)  # FSDP: whole weights, plain module again
    if best.step is not None and best.step != loop.step:
        best.restore(model)
    model = _after_training(model, settings)
    model.eval()
    state.model = model
    folder = save_checkpoint(ctx, state)
    checkpoint.clear(ctx.stage_dir)  # the stage is done: nothing to resume any more
    if best.step is not None and best.value is not None:
        ctx.report_best(best.step, best.value, monitor)
        ctx.event(f"best {monitor} = {best.value:.4f} at step {best.step}")
        state.metrics.update(best.metrics)
    return FitResult(
        steps=loop.step,
        epochs=loop.step / loop.steps_per_epoch,
        stopped_early=loop.stopped_early,
        monitor=monitor if validation is not None else None,
        best_step=best.step,
        best_value=best.value,
        best_metrics=best.metrics,
        checkpoint=folder,
        history=loop.history,
    )


def step_plan(settings: TrainParams, units: int) -> tuple[int, int, int, int]:
    """How `units` training examples (row groups, for grouped features) make steps:
    (micro-batches per epoch, micro-batches per optimizer step, optimizer steps per epoch,
    optimizer steps in all)."""
    micro_per_epoch = num_batches(units, settings.batch_size)
    accum = settings.grad_accum if settings.grad_accum > 0 else micro_per_epoch
    steps_per_epoch = num_batches(micro_per_epoch, accum)
    total = settings.epochs * steps_per_epoch
    total = min(total, settings.max_steps) if settings.max_steps > 0 else total
    return micro_per_epoch, accum, steps_per_epoch, total


def _trainable_model(
    ctx: StageContext, state: PipelineState, model: Any, settings: TrainParams, total: int
) -> Any:
    """`model` set up to train what `settings.train` says, on the stage's device: its own
    weights frozen but for the trained ones, or wrapped with peft adapters."""
    mode = settings.train
    carried = kept_mode(model)
    if carried is not None and carried != mode:
        raise ConfigError(
            f"train = {mode!r}: the model carries a {carried!r} adapter from an earlier stage, "
            f"which cannot be merged; train it further with train = {carried!r}"
        )
    if mode == QLORA and not is_4bit(model):
        ctx.event("train = qlora: loading the model 4-bit")
        model = reload_4bit(model, ctx.device)
    if settings.gradient_checkpointing and mode != QLORA:  # qlora: peft's preparation does it
        plain = model.get_base_model() if is_peft_model(model) else model
        enable_gradient_checkpointing(plain, adapters=mode in PEFT_MODES)
    if mode in PEFT_MODES:
        model = add_adapters(model, state.task, settings, total)
    else:
        freeze_except(model, mode, settings.top_k)
    if not is_4bit(model):  # a 4-bit model is loaded onto its device
        model.to(ctx.device)
    return model


def _after_training(model: Any, settings: TrainParams) -> Any:
    """The model a stage hands on: adapters merged (or kept, for prompt learning), gradient
    checkpointing off again, every weight trainable again for the next stage (a kept
    adapter stays as peft set it up, to go on training)."""
    if settings.train in PEFT_MODES:
        model = finish(model, settings.train)
    plain = model.get_base_model() if is_peft_model(model) else model
    if settings.gradient_checkpointing:
        disable_gradient_checkpointing(plain)
    if not is_peft_model(model):
        model.requires_grad_(True)
    return model


class _Loop:
    """One training run over prepared features: optimizer steps, logging, evaluations.

    `own_evaluation` (a stage's `FitData.evaluate`) evaluates `validation` in place of the
    task's or the classification evaluation."""

    def __init__(
        self,
        ctx: StageContext,
        state: PipelineState,
        settings: TrainParams,
        strategy: Strategy[Any],
        model: Any,
        train: Features,
        validation: Features | None,
        monitor: str,
        higher: bool,
        own_evaluation: Callable[[EvaluationInputs], Mapping[str, float]] | None = None,
    ) -> None:
        self.ctx, self.labels, self.settings, self.strategy = ctx, state.labels, settings, strategy
        self.tokenizer, self.validation_examples = state.tokenizer, state.splits.get("validation")
        self.train_examples = state.splits.get("train", [])
        self.model, self.train, self.validation = model, train, validation
        self.own_evaluation = own_evaluation  # a stage's FitData.evaluate, replacing the task's
        self.device = ctx.device
        # A batch holds `batch_size` groups of rows (one row each, but for grouped features).
        self.rows_per_batch = settings.batch_size * train.group
        plan = step_plan(settings, len(train) // train.group)
        self.micro_per_epoch, self.accum, self.steps_per_epoch, self.total = plan
        self.epochs = num_batches(self.total, self.steps_per_epoch)

        self.dtype = autocast_dtype(settings.precision, self.device)
        if settings.precision in ("bf16", "fp16") and self.dtype is None:
            ctx.event(f"precision {settings.precision} needs a GPU; training in fp32", "warning")
        self.autocast = _autocast(self.device, self.dtype)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        # One rank of several: the model trains wrapped (DDP, or sharded by FSDP), each rank
        # on its share of the batch; evaluation runs whole, the same on every rank.
        self.ranks = ranks.current()
        self.net = model
        if self.ranks is not None:
            self.net = sharding.wrap(model, self.ranks, self.device, self.dtype)
        self.stop_agreed = False
        self.params = [p for p in model.parameters() if p.requires_grad]
        fused = fused_adamw(self.device)
        self.optimizer = torch.optim.AdamW(
            decay_groups(model, settings.weight_decay, settings.lr, settings.layer_lr_decay),
            lr=settings.lr,
            fused=fused,
        )
        factor = lr_factor(settings.scheduler, warmup_steps(settings, self.total), self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.ema = WeightAverage(model, settings.ema_decay) if settings.ema_decay else None
        self.adapter_step = step_hook(model, settings.train)  # AdaLoRA's rank allocation
        self.multiple = pad_multiple(settings.pad_to_multiple_of, self.device)
        # Fused AdamW drops a step's update on the device when told the loss is not finite
        # (`found_inf`), so the host never waits for the loss; with a grad scaler, an AdaLoRA
        # hook or a weight average, which would all take the step in, nan_policy = "skip"
        # reads the loss at each step instead.
        takes_in = (self.scaler, self.adapter_step, self.ema)
        self.device_skip = bool(fused) and all(hook is None for hook in takes_in)
        self.read_each_step = settings.nan_policy == "skip" and not self.device_skip
        self.pending: list[tuple[int, float | torch.Tensor]] = []  # steps' losses not yet read
        # Compiled around the DDP or FSDP wrapper, when there is one.
        self.forward_module = _compiled(ctx, self.net) if settings.compile else self.net
        self.compiling = self.forward_module is not self.net

        self.loss_scale = 1.0
        self.step = 0
        self.skipped = 0
        self.skipped_in_a_row = 0
        self.stopped_early = False
        self.best = _Best(monitor, higher, settings.min_delta)
        self.history: list[tuple[int, dict[str, float]]] = []
        self.saved_step = 0

    def forward(self, batch: dict[str, Any]) -> Any:
        """The model's outputs for `batch`, under the configured autocast (compiled with
        `compile = true`)."""
        with self.autocast():
            if self.compiling:
                return self._first_compiled_forward(batch)
            return self.forward_module(**batch)

    def _first_compiled_forward(self, batch: dict[str, Any]) -> Any:
        """The first call of the compiled model, which compiles it: when that fails but the
        plain model runs, train uncompiled with a warning (a fault of the model or the batch
        raises as it would without compiling)."""
        self.compiling = False
        try:
            return self.forward_module(**batch)
        except Exception as error:
            outputs = self.net(**batch)
            self.forward_module = self.net
            self.ctx.event(
                f"compile = true: torch.compile failed ({_one_line(error)}); "
                "training without compiling",
                "warning",
            )
            return outputs

    def backward(self, loss: Any) -> None:
        """Back-propagate `loss`, scaled for gradient accumulation and fp16."""
        if self.loss_scale != 1.0:
            loss = loss * self.loss_scale
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def run(self) -> None:
        """Train until the last step or until early stopping says stop.

        Step losses stay on the device until a log point (every `log_every` steps, an
        epoch's end, an evaluation, a checkpoint, the last step) reads them all at once: the
        host does not wait for the device at every step. A cancelled run logs what it trained.
        """
        try:
            self._train()
        except RunCancelled:
            with contextlib.suppress(NonFiniteLoss):
                self._log_losses()
            raise
        self._log_losses()

    def _train(self) -> None:
        ctx, settings, model = self.ctx, self.settings, self.model
        self.strategy.setup(model)
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        start_epoch, start_micro = self.restore()
        if self.ranks is not None and not ranks.same(self.step, self.device):
            raise RuntimeError(f"rank {self.ranks.rank}: the ranks start at different steps")
        if self.stopped_early or self.step >= self.total:
            return
        window_samples, window_start = 0, time.perf_counter()
        group_size = self.accum
        for epoch in range(start_epoch, self.epochs):
            description = f"epoch {epoch + 1}/{self.epochs}"
            order = batch_order(
                self.train,
                shuffle=True,
                seed=ctx.seed + epoch,
                group_batch_size=settings.batch_size if settings.group_by_length else 0,
            )
            first = start_micro if epoch == start_epoch else 0
            group_loss: float | torch.Tensor = 0.0
            group_done = 0
            micro_batches = self._batches(order[first * self.rows_per_batch :])
            for micro, (batch, share, rows) in enumerate(micro_batches, start=first):
                if self._should_stop() and group_done == 0:
                    self.checkpoint(epoch, micro)  # between optimizer steps: resumable here
                    raise RunCancelled(ctx.run_id)
                if self.ranks is None:
                    ctx.check_stop()
                if group_done == 0:
                    # The last group of an epoch may be short; its mean loss still counts once.
                    group_size = min(self.accum, self.micro_per_epoch - micro)
                if self.ranks is not None:  # gradients are averaged over the ranks once a step
                    sharding.sync_gradients(self.net, self.ranks, group_done + 1 == group_size)
                self.loss_scale = share / group_size
                inputs = TrainStep(model, batch, self.forward, self.backward, self.step)
                group_loss = group_loss + _detached(self.strategy.step(inputs)) * share
                group_done += 1
                window_samples += rows
                if group_done < group_size:
                    continue
                loss = group_loss / group_size
                group_loss, group_done = 0.0, 0
                if self.ranks is not None:  # the mean over the ranks; a stop all agree on
                    # One small all-reduce a step, read on the host: the ranks move in step
                    # anyway (their gradients are all-reduced), and all must agree to stop.
                    loss, self.stop_agreed = ranks.agree(
                        float(loss), ctx.should_stop(), self.device
                    )
                    loss /= self.ranks.world
                elif self.read_each_step:
                    loss = float(loss)  # the optimizer cannot drop the update on the device
                lr = self._optimizer_step(loss)
                self.step += 1
                self.pending.append((self.step, loss))
                end_of_epoch = micro + 1 == self.micro_per_epoch
                last = self.step == self.total
                if self.step % settings.log_every == 0 or end_of_epoch or last:
                    self._read_losses()
                    now = time.perf_counter()  # after the read: the device has caught up
                    values = {
                        "train/lr": lr,
                        "train/epoch": self.step / self.steps_per_epoch,
                        "train/samples_per_s": window_samples / max(now - window_start, 1e-9),
                    }
                    self._log_losses(values)
                    window_samples, window_start = 0, now
                elif self.read_each_step:
                    self._log_losses()
                ctx.progress(self.step, self.total, description)
                killpoints.reached("train.step", f"{ctx.stage_index}/{self.step}")
                if settings.eval_every > 0:
                    due = self.step % settings.eval_every == 0
                else:
                    due = end_of_epoch
                evaluated = self.validation is not None and (due or last)
                if evaluated:
                    self.stopped_early = self._evaluate()
                    window_start = time.perf_counter()
                if self.stopped_early or last:
                    return
                if evaluated or (self.validation is None and end_of_epoch):
                    self.checkpoint(epoch, micro + 1)
                    window_start = time.perf_counter()

    def _batches(self, order: np.ndarray) -> Iterator[tuple[dict[str, Any], float, int]]:
        """The epoch's micro-batches from `order`: (this rank's batch, its weight in the global
        batch's mean loss, the global batch's rows). Every rank goes through the same global
        batches, each taking its share of the rows (`ranks.shard`)."""
        if self.ranks is None:
            for batch in batches(
                self.train, self.rows_per_batch, order, self.device, self.multiple
            ):
                yield batch, 1.0, int(batch["input_ids"].shape[0])
            return
        for start in range(0, len(order), self.rows_per_batch):
            rows = order[start : start + self.rows_per_batch]
            mine, share = ranks.shard(rows, self.train.group, self.ranks)
            batch = next(batches(self.train, len(mine), mine, self.device, self.multiple))
            yield batch, share, len(rows)

    def _should_stop(self) -> bool:
        """Whether to stop before the next step; one rank of several stops only when all do
        (agreed at each optimizer step), so no rank waits alone in a collective."""
        return self.stop_agreed if self.ranks is not None else self.ctx.should_stop()

    def checkpoint(self, epoch: int, position: int) -> None:
        """Write a resume checkpoint: the next micro-batch is `position` of `epoch`.

        Everything logged so far is flushed to the database first, so a resumed run's
        series is whole up to the checkpoint's step. A checkpoint that cannot be written
        (a full disk) is reported as a warning and training goes on.
        """
        self._log_losses()
        if self.step == self.saved_step or not self.settings.resumable:
            return
        gathered = self._gathered()  # FSDP: every rank takes part, rank 0 gets it whole
        if self.ranks is not None and not self.ranks.main:  # rank 0 writes it
            ranks.barrier()
            self.saved_step = self.step
            return
        try:
            self._write_checkpoint(epoch, position, gathered)
        finally:
            ranks.barrier()  # every rank goes on once the checkpoint is whole
            if self.ranks is not None:  # written or not, as the other ranks: no retry at this
                self.saved_step = self.step  # step, which they would not join

    def _sharded(self) -> bool:
        return self.ranks is not None and self.ranks.parallel == "fsdp"

    def _gathered(self) -> _Gathered | None:
        """Under FSDP, the model's, optimizer's and weight average's whole state, gathered
        from every rank's shards: a collective, every rank calls it; the model and optimizer
        state land on rank 0's CPU only (None: not sharded)."""
        if not self._sharded():
            return None
        weights, optim = sharding.full_state(
            self.model, self.optimizer, trained_only=is_peft_model(self.model)
        )
        ema = {}
        if self.ema is not None:
            with torch.no_grad():
                ema = {str(i): _whole(t).cpu() for i, t in enumerate(self.ema.average)}
        return _Gathered(weights, optim, ema)

    def _write_checkpoint(self, epoch: int, position: int, gathered: _Gathered | None) -> None:
        ctx = self.ctx
        ctx.flush()
        plain_rng, tensor_rng = checkpoint.rng_states(ctx.rng, self.device)
        trainer: dict[str, Any] = {
            "optimizer": gathered.optim if gathered else self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": tensor_rng,
        }
        meta = {
            "step": self.step,
            "epoch": epoch,
            "position": position,
            "total": self.total,
            "micro_per_epoch": self.micro_per_epoch,
            "accum": self.accum,
            "train_rows": len(self.train),
            "skipped": self.skipped,
            "skipped_in_a_row": self.skipped_in_a_row,
            "best": self.best.meta(),
            "history": self.history,
            "ema_updates": self.ema.updates if self.ema is not None else None,
            "rng": plain_rng,
        }
        ema = {}
        if gathered is not None:
            ema = gathered.ema
        elif self.ema is not None:
            ema = {str(i): tensor for i, tensor in enumerate(self.ema.average)}
        # Without an average, best weights of this very step are the model's: not saved twice.
        best_is_current = self.ema is None and self.best.step == self.step
        meta["best_is_current"] = best_is_current
        try:
            checkpoint.write(
                ctx.stage_dir,
                self.step,
                model=gathered.weights if gathered else self._resume_weights() or self.model,
                trainer=trainer,
                best={} if best_is_current else self.best.tensors(),
                ema=ema,
                meta=meta,
            )
        except OSError as error:
            ctx.event(
                f"could not write a resume checkpoint at step {self.step}: {error}", "warning"
            )
            return
        self.saved_step = self.step

    def _resume_weights(self) -> dict[str, torch.Tensor] | None:
        """What a resume checkpoint holds of a model with peft adapters: the tensors that
        change (None: the whole model)."""
        return dict(_changing_tensors(self.model)) if is_peft_model(self.model) else None

    def restore(self) -> tuple[int, int]:
        """Continue from the stage's resume checkpoint, if it has one: load the weights,
        optimizer, scheduler, RNG and early-stopping state; return (epoch, position)."""
        stage_dir = self.ranks.shared(self.ctx.stage_dir) if self.ranks else self.ctx.stage_dir
        folder = checkpoint.latest(stage_dir)  # other ranks read rank 0's
        if folder is None:
            return 0, 0
        meta = checkpoint.read_meta(folder)
        expected = {
            "total": self.total,
            "micro_per_epoch": self.micro_per_epoch,
            "accum": self.accum,
            "train_rows": len(self.train),
        }
        changed = {key: (meta.get(key), value) for key, value in expected.items()}
        changed = {key: pair for key, pair in changed.items() if pair[0] != pair[1]}
        if changed:
            what = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changed.items())
            raise ConfigError(
                f"resume checkpoint {folder}: written for other data or settings ({what}); "
                "launch the experiment again instead of resuming"
            )
        trainer = checkpoint.load_trainer(folder)
        if self._sharded():  # every rank reads the whole state and keeps its shard
            self._load_gathered(folder, trainer["optimizer"])
        else:
            checkpoint.load_model_into(self.model, folder, self._resume_weights())
            self.optimizer.load_state_dict(trainer["optimizer"])
        self.scheduler.load_state_dict(trainer["scheduler"])
        if self.scaler is not None and trainer.get("scaler") is not None:
            self.scaler.load_state_dict(trainer["scaler"])
        if meta["best_is_current"]:
            with torch.no_grad():
                best = {
                    name: _whole(t).detach().clone() for name, t in _changing_tensors(self.model)
                }
        else:
            best = checkpoint.load_tensors(folder, checkpoint.BEST, self.device)
        self.best.load(meta["best"], best)
        if self.ema is not None:
            averages = checkpoint.load_tensors(folder, checkpoint.EMA, self.device)
            with torch.no_grad():
                for i, average in enumerate(self.ema.average):
                    average.copy_(sharding.shard_like(averages[str(i)], average))
            self.ema.updates = int(meta["ema_updates"] or 0)
        self.step = self.saved_step = int(meta["step"])
        self.skipped, self.skipped_in_a_row = int(meta["skipped"]), int(meta["skipped_in_a_row"])
        self.history = [(int(step), dict(values)) for step, values in meta["history"]]
        patience = self.settings.patience
        self.stopped_early = patience > 0 and self.best.bad_evals >= patience
        checkpoint.set_rng_states(meta["rng"], trainer["rng"], self.ctx.rng)
        epoch, position = int(meta["epoch"]), int(meta["position"])
        if position >= self.micro_per_epoch:
            epoch, position = epoch + 1, 0
        self.ctx.event(
            f"resumed training at step {self.step} (epoch {epoch + 1}, batch {position + 1})"
        )
        self.ctx.progress(
            self.step, self.total, f"epoch {min(epoch + 1, self.epochs)}/{self.epochs}"
        )
        return epoch, position

    def _load_gathered(self, folder: Path, optim: Any) -> None:
        """Load a checkpoint's whole model and optimizer state into the FSDP model: a
        collective, every rank calls it."""
        weights = checkpoint.load_tensors(folder, checkpoint.MODEL, "cpu")
        try:
            sharding.load_full_state(
                self.model, self.optimizer, weights, optim, trained_only=is_peft_model(self.model)
            )
        except (KeyError, RuntimeError, ValueError) as error:
            raise TuneboardError(
                f"resume checkpoint {folder}: its state does not fit this stage's model"
                f" ({_one_line(error)})"
            ) from None

    def _read_losses(self) -> None:
        """Bring the pending steps' losses to the host, in one read."""
        tensors = [loss for _, loss in self.pending if isinstance(loss, torch.Tensor)]
        if not tensors:
            return
        read = iter(torch.stack(tensors).tolist())
        self.pending = [
            (step, next(read) if isinstance(loss, torch.Tensor) else loss)
            for step, loss in self.pending
        ]

    def _log_losses(self, values: dict[str, float] | None = None) -> None:
        """Log ``train/loss`` of every pending step (`values` too, at the current step), and
        act on the non-finite ones as `nan_policy` says."""
        self._read_losses()
        pending, self.pending = self.pending, []
        extra = dict(values or {})
        for step, loss in pending:
            assert isinstance(loss, float)
            logged = {"train/loss": loss} if self._finite(step, loss) else {}
            if step == self.step:
                logged.update(extra)
                extra = {}
            if logged:
                self.ctx.log(logged, step)
        if extra:
            self.ctx.log(extra, self.step)

    def _finite(self, step: int, loss: float) -> bool:
        """Whether `loss` (of `step`) is finite; if not, stop or count a skipped step."""
        if math.isfinite(loss):
            self.skipped_in_a_row = 0
            return True
        self._skip_non_finite(step, loss)
        return False

    def _skip_non_finite(self, step: int, loss: float) -> None:
        """Stop on a NaN or infinite loss, or (``nan_policy = "skip"``) count its step as
        skipped (its update was dropped)."""
        if self.settings.nan_policy != "skip":
            raise NonFiniteLoss(
                f'the training loss is {loss} at step {step}; stopped (nan_policy = "stop"; '
                'try a lower lr, or nan_policy = "skip")'
            )
        self.skipped += 1
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise NonFiniteLoss(
                f"the training loss is {loss} for {self.skipped_in_a_row} steps in a row "
                f'(up to step {step}); stopped although nan_policy = "skip"'
            )
        if self.skipped & (self.skipped - 1) == 0:  # the 1st, 2nd, 4th, 8th ... time
            self.ctx.event(
                f"skipped step {step}: the training loss is {loss} ({self.skipped} skipped so far)",
                "warning",
            )

    def _optimizer_step(self, loss: float | torch.Tensor) -> float:
        """Clip, step, schedule; return the learning rate the step used.

        A non-finite `loss` drops the update, the schedule goes on: a float is known here
        and the optimizer does not step; a tensor (with `device_skip`) is checked on the
        device, and fused AdamW's kernel leaves the weights and its state as they were.
        """
        optimizer, scaler = self.optimizer, self.scaler
        if isinstance(loss, float) and not math.isfinite(loss):
            lr = float(self.scheduler.get_last_lr()[0])
            with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            self.strategy.after_optimizer_step(self.model)
            return lr
        if self.device_skip:
            optimizer.found_inf = (  # type: ignore[attr-defined]
                (~torch.isfinite(loss)).float() if isinstance(loss, torch.Tensor) else None
            )
        if scaler is not None:
            scaler.unscale_(optimizer)
        if self.settings.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm, foreach=True)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if self.adapter_step is not None:
            self.adapter_step(self.step)  # reads the gradients: before they are cleared
        lr = float(self.scheduler.get_last_lr()[0])
        self.scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        self.strategy.after_optimizer_step(self.model)
        return lr

    def _validation_values(self) -> dict[str, float]:
        """Loss and metrics on the validation split, named ``val/<name>``."""
        assert self.validation is not None
        task = self.ctx.task
        if self.own_evaluation is not None:
            self.model.eval()
            inputs = EvaluationInputs(
                model=self.model,
                tokenizer=self.tokenizer,
                split="validation",
                examples=[],
                features=self.validation,
                batch_size=self.settings.eval_batch_size,
                autocast=self.autocast,
                generate_samples=0,
                generation=GenerationParams(max_new_tokens=self.settings.eval_max_new_tokens),
                step=self.step,
            )
            values = self.own_evaluation(inputs)
            return {f"val/{name}": float(value) for name, value in values.items()}
        if task is not None:
            assert self.validation_examples is not None
            values = task_evaluate(
                self.ctx,
                task,
                self.model,
                self.tokenizer,
                "validation",
                self.validation_examples,
                self.validation,
                batch_size=self.settings.eval_batch_size,
                dtype=self.dtype,
                generate_samples=self.settings.eval_generate_samples,
                generation=GenerationParams(max_new_tokens=self.settings.eval_max_new_tokens),
                step=self.step,
                labels=self.labels,
                train=self.train_examples,
            )
            return {f"val/{name}": value for name, value in values.items()}
        predictions = predict(
            self.model,
            self.validation,
            batch_size=self.settings.eval_batch_size,
            device=self.device,
            dtype=self.dtype,
            # Ranks evaluate alike and stop together at the next step, never one alone here.
            check_stop=None if self.ranks is not None else self.ctx.check_stop,
            multiple=self.multiple,
        )
        return score(self.ctx, predictions, self.validation, self.labels, "val")

    def _evaluate(self) -> bool:
        """Evaluate, log, track the best; True when early stopping says stop.

        With `ema_decay` set, the averaged weights are evaluated and kept when best.
        """
        assert self.validation is not None
        self._log_losses()
        averaged = self.ema.applied() if self.ema is not None else contextlib.nullcontext()
        with averaged:
            metrics = self._validation_values()
            self.model.train()
            self.ctx.log(metrics, self.step)
            self.history.append((self.step, metrics))
            self.best.update(self.model, self.step, metrics)
        patience = self.settings.patience
        return patience > 0 and self.best.bad_evals >= patience


def _detached(loss: float | torch.Tensor) -> float | torch.Tensor:
    """A strategy's loss as the loop keeps it: a float, or a detached fp32 scalar tensor."""
    if isinstance(loss, torch.Tensor):
        return loss.detach().float().reshape(())
    return float(loss)


def _compiled(ctx: StageContext, model: Any) -> Any:
    """`model` compiled with torch.compile (it compiles at its first call), or `model` itself,
    with a warning, when torch cannot compile here."""
    try:
        return torch.compile(model)
    except Exception as error:
        ctx.event(
            f"compile = true: torch.compile is not available ({_one_line(error)}); "
            "training without compiling",
            "warning",
        )
        return model


def _one_line(error: BaseException) -> str:
    """`error` as ``Type: first line of its message``."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def save_checkpoint(ctx: StageContext, state: PipelineState, name: str = "best") -> Path:
    """Save `state.model` and tokenizer (safetensors) to ``ctx.stage_dir / name`` and
    record it as the best checkpoint (a kept adapter as `adapters.save_model` says)."""
    folder = ctx.stage_dir / name
    save_model(state.model, state.tokenizer, folder)
    state.best_checkpoint = folder
    ctx.artifact(folder, "checkpoint")
    return folder
