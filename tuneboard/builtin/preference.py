"""The `preference` stage: direct preference optimisation (DPO) on preference pairs.

It reads pairs (a prompt, a chosen and a rejected response; see `tuneboard.PreferencePair`)
from a JSON-lines file, such as the one the app's review of generations writes, holds a
seeded share of them out for validation, and trains the model on the rest with the DPO
sigmoid loss (Rafailov et al., 2023):

    loss = -log sigmoid(beta * ((log pi(chosen) - log ref(chosen))
                                - (log pi(rejected) - log ref(rejected))))

where ``log pi(y)`` sums the log-probabilities of the response's tokens only (the prompt is
masked) and ``ref`` is the model the stage started from: a frozen copy, or with
``train = "lora"`` the same model with its adapters disabled (no copy). Each pair's two
responses are encoded by the experiment's task plugin exactly like its training examples
(same prompt template, end-of-sequence token, truncation) and always share a micro-batch.

Training runs on the one training loop (`ctx.training.fit`) with the pairs given as
`FitData`: the DPO step is this module's strategy, and evaluations log ``val/loss``,
``val/rewards_chosen``, ``val/rewards_rejected``, ``val/rewards_margin`` and
``val/rewards_accuracy`` (rewards are ``beta`` times the log-ratio to the reference).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tuneboard import (
    IGNORE_INDEX,
    ConfigError,
    DataError,
    EvaluationInputs,
    Features,
    FitData,
    GenerationExample,
    NoParams,
    PipelineState,
    PreferencePair,
    Stage,
    StageContext,
    Strategy,
    TrainParams,
    TrainStep,
    param,
    read_preferences,
)

if TYPE_CHECKING:
    import torch


@dataclass
class PreferenceParams(TrainParams):
    """The training loop's parameters, the pairs file, DPO's `beta` and the held-out share."""

    # The DPO step is the stage's own strategy: no strategy keys in its table.
    strategy: str = field(default="standard", init=False)
    strategy_params: dict[str, Any] = field(default_factory=dict, init=False)

    dropout: float | None = param(
        0.0,
        "Override the model's dropout (0 by default, as in TRL's DPOTrainer, so the policy's "
        "and the reference's log-probabilities are not noise; unset = keep the model's)",
        min=0,
        max=1,
    )
    pairs: str = param(
        "",
        "Preference pairs, relative to the project folder: JSON lines with prompt, chosen and "
        "rejected (empty = the project's `preferences` file, where the app's review of "
        "generations writes them)",
    )
    beta: float = param(
        0.1,
        "DPO temperature: how far the model may move from the reference (higher = stays closer)",
        min=0,
        max=100,
    )
    validation_share: float = param(
        0.1,
        "Share of the pairs held out (seeded) for val/loss and the reward metrics; 0 = none",
        min=0,
        max=0.9,
    )

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"key 'beta': must be greater than 0, got {self.beta}")


class Preference(Stage[PreferenceParams]):
    """Train on preference pairs with DPO; reference = the stage's starting weights."""

    name = "preference"
    Params = PreferenceParams
    description = "Direct preference optimisation (DPO) on chosen/rejected response pairs"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train with DPO on the one training loop; the best weights go on."""
        params = self.params
        if ctx.task is None:
            raise ConfigError(
                'preference: needs a generation task (task = "causal-lm" or "seq2seq"), '
                "not a classification one"
            )
        if params.pairs:
            path = ctx.project_file(params.pairs, "pairs")
        else:
            path = ctx.preferences_path()
            if not path.is_file():
                raise DataError(
                    f"preference: no preference pairs yet ({path}): review generations in the "
                    "app (edits and rejections become pairs) or name a file with key 'pairs'"
                )
        pairs = _distinct(read_preferences(path), ctx)
        if not pairs:
            raise DataError(f"{path}: no preference pairs")
        train_pairs, validation_pairs = split_pairs(pairs, params.validation_share, ctx.seed)
        train = encode_pairs(ctx, state, train_pairs)
        validation = encode_pairs(ctx, state, validation_pairs) if validation_pairs else None
        step = DpoStep(
            params.beta,
            causal=train.label_lengths is None,
            autocast=lambda: ctx.training.autocast(params.precision),
        )
        ctx.log(
            {
                "preference/train_pairs": float(len(train) // 2),
                "preference/validation_pairs": float(len(validation) // 2 if validation else 0),
            },
            0,
        )
        ctx.event(
            f"DPO (beta {params.beta}) on {len(train) // 2} pairs from {path.name}, "
            f"{len(validation) // 2 if validation else 0} held out"
        )
        data = FitData(
            train,
            validation,
            evaluate=lambda inputs: step.evaluate(inputs, ctx.training.batches, ctx.check_stop),
        )
        try:
            ctx.training.fit(state, params, step, data=data)
        finally:
            step.release()
        return state


def _distinct(pairs: list[PreferencePair], ctx: StageContext) -> list[PreferencePair]:
    """The pairs whose chosen and rejected responses differ (a warning counts the others)."""
    kept = [pair for pair in pairs if pair.chosen != pair.rejected]
    if len(kept) < len(pairs):
        ctx.event(
            f"skipped {len(pairs) - len(kept)} pairs whose chosen and rejected are the same",
            "warning",
        )
    return kept


def split_pairs(
    pairs: list[PreferencePair], share: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, validation): `share` of the pairs, picked with `seed`, held out; at least one
    pair each way when `share` > 0 and there are two pairs or more."""
    if share <= 0 or len(pairs) < 2:
        return list(pairs), []
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = min(max(1, round(len(pairs) * share)), len(pairs) - 1)
    validation = set(order[:held])
    return (
        [pair for i, pair in enumerate(pairs) if i not in validation],
        [pair for i, pair in enumerate(pairs) if i in validation],
    )


def encode_pairs(ctx: StageContext, state: PipelineState, pairs: list[PreferencePair]) -> Features:
    """The pairs as features with ``group = 2``: rows ``2i`` and ``2i + 1`` are pair `i`'s
    prompt with its chosen and with its rejected response, encoded by the experiment's task
    (loss labels on the response only). Pairs a row of which keeps no response token after
    truncation are left out, with a warning."""
    examples = [
        GenerationExample(prompt=pair.prompt, response=response)
        for pair in pairs
        for response in (pair.chosen, pair.rejected)
    ]
    features = ctx.training.encode(examples, state.tokenizer, state.labels, state.task)
    if len(features) != len(examples) or features.labels.ndim != 2:
        raise ConfigError(
            f"preference: task {state.task!r} did not encode one row with token labels per "
            "response (turn packing off for this experiment)"
        )
    counted = (features.labels != IGNORE_INDEX).sum(axis=1).reshape(-1, 2).min(axis=1)
    keep = counted > 0
    if not keep.all():
        ctx.event(
            f"left out {int((~keep).sum())} pairs with a response truncated away "
            f"(max_length {ctx.max_length})",
            "warning",
        )
        if not keep.any():
            raise DataError(f"no preference pair fits in max_length {ctx.max_length}")
    rows = keep.repeat(2)
    return replace(
        features,
        input_ids=features.input_ids[rows],
        lengths=features.lengths[rows],
        labels=features.labels[rows],
        token_type_ids=None if features.token_type_ids is None else features.token_type_ids[rows],
        label_lengths=None if features.label_lengths is None else features.label_lengths[rows],
        group=2,
    )


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, causal: bool) -> torch.Tensor:
    """The sum of each row's log-probabilities of its labelled tokens (``[rows]``): a causal
    LM's logits at position t predict the label at t + 1; a seq2seq decoder's are aligned."""
    import torch
    import torch.nn.functional as F

    if causal:
        logits, labels = logits[:, :-1], labels[:, 1:]
    # At least fp32 (bf16/fp16 logits are too coarse to sum), never less than the model's.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    per_token = F.cross_entropy(
        logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return -per_token.sum(dim=1)


def dpo_losses(
    policy: torch.Tensor, reference: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pair: the DPO sigmoid loss, the chosen reward and the rejected reward, from
    log-probabilities of rows ordered chosen, rejected, chosen, rejected ..."""
    import torch.nn.functional as F

    ratios = (policy - reference).view(-1, 2)
    chosen, rejected = ratios[:, 0], ratios[:, 1]
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return losses, beta * chosen.detach(), beta * rejected.detach()


class DpoStep(Strategy[NoParams]):
    """The DPO training step for batches of pair rows (chosen, rejected, chosen, ...).

    The reference is the model as `setup` finds it: with LoRA adapters (a peft model), the
    same model with its adapters disabled; otherwise a frozen copy in eval mode.
    """

    name = "dpo"
    description = "DPO sigmoid loss on preference pairs (the preference stage's step)"

    def __init__(
        self,
        beta: float,
        *,
        causal: bool,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        super().__init__(NoParams())
        self.beta, self.causal, self.autocast = beta, causal, autocast
        self._copy: Any = None

    def setup(self, model: Any) -> None:
        """Take the reference: adapters off for a peft model, else a frozen copy."""
        import copy

        if not hasattr(model, "disable_adapter"):
            self._copy = copy.deepcopy(model).eval().requires_grad_(False)

    def release(self) -> None:
        """Let go of the reference copy (after training)."""
        self._copy = None

    def _inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        # A causal LM would compute its own loss from labels; a seq2seq one needs them.
        return batch if not self.causal else {k: v for k, v in batch.items() if k != "labels"}

    def _reference(self, model: Any, batch: dict[str, Any]) -> torch.Tensor:
        """The reference's log-probabilities of the batch's rows (no gradients)."""
        import torch

        with torch.no_grad(), self.autocast():
            if self._copy is not None:
                logits = self._copy(**self._inputs(batch)).logits
            else:
                with model.disable_adapter():
                    logits = model(**self._inputs(batch)).logits
            return sequence_logps(logits, batch["labels"], self.causal)

    def step(self, inputs: TrainStep) -> Any:
        """Forward the pairs, DPO loss, backward; return the loss."""
        batch = inputs.batch
        policy = sequence_logps(
            inputs.forward(self._inputs(batch)).logits, batch["labels"], self.causal
        )
        reference = self._reference(inputs.model, batch)
        losses, _, _ = dpo_losses(policy, reference, self.beta)
        loss = losses.mean()
        inputs.backward(loss)
        return loss.detach()

    def evaluate(
        self,
        inputs: EvaluationInputs,
        batches: Callable[[Features, int], Any],
        check_stop: Callable[[], None],
    ) -> dict[str, float]:
        """``loss`` (the mean DPO loss over the pairs), ``rewards_chosen``,
        ``rewards_rejected``, ``rewards_margin`` (their mean difference) and
        ``rewards_accuracy`` (the share of pairs whose chosen reward is higher)."""
        import torch

        losses, chosen, rejected = [], [], []
        with torch.inference_mode():
            for batch in batches(inputs.features, inputs.batch_size):
                check_stop()
                with inputs.autocast():
                    logits = inputs.model(**self._inputs(batch)).logits
                policy = sequence_logps(logits, batch["labels"], self.causal)
                reference = self._reference(inputs.model, batch)
                pair_losses, chosen_rewards, rejected_rewards = dpo_losses(
                    policy, reference, self.beta
                )
                losses.append(pair_losses)
                chosen.append(chosen_rewards)
                rejected.append(rejected_rewards)
        loss, good, bad = torch.cat(losses), torch.cat(chosen), torch.cat(rejected)
        return {
            "loss": float(loss.mean()),
            "rewards_chosen": float(good.mean()),
            "rewards_rejected": float(bad.mean()),
            "rewards_margin": float((good - bad).mean()),
            "rewards_accuracy": float((good > bad).float().mean()),
        }
