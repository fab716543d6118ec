"""The `mlm` stage: continued masked-language-model pretraining of the encoder.

A masked-LM model of the same architecture is built from the current model's config, the
current encoder's weights are copied into it, it trains on the task's own texts, and its
encoder's weights (the best by validation perplexity) are copied back into the task model,
whose head stays as it was. Works for BERT-family encoders (BERT, RoBERTa, DistilBERT,
ELECTRA ...), whose task and masked-LM models share the encoder under one attribute name.

numpy and torch are imported inside the work, so loading the plugin stays cheap.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuneboard import (
    IGNORE_INDEX,
    PRECISION_HELP,
    ConfigError,
    DataError,
    Example,
    NonFiniteLoss,
    PipelineState,
    Precision,
    Stage,
    StageContext,
    TextExample,
    TokenExample,
    Training,
    param,
)
from tuneboard.builtin.gendata.corpus import CorpusFileParams, corpus_split

if TYPE_CHECKING:
    import numpy as np
    import torch

RANDOM_SHARE = 0.1
KEEP_SHARE = 0.1


@dataclass
class MlmParams(CorpusFileParams):
    """Parameters of the `mlm` stage (`corpus`: train on a text file instead of the task's
    texts)."""

    epochs: int = param(1, "Passes over the texts", min=1, max=10_000)
    max_steps: int = param(
        0, "Stop after this many optimizer steps (0 = no limit)", min=0, max=100_000_000
    )
    batch_size: int = param(16, "Texts per batch", min=1, max=65_536)
    eval_batch_size: int = param(
        64, "Texts per batch when measuring validation perplexity", min=1, max=65_536
    )
    lr: float = param(5e-5, "Peak learning rate (AdamW)", min=0, max=10)
    weight_decay: float = param(0.01, "AdamW weight decay (not on biases and norms)", min=0, max=10)
    warmup_ratio: float = param(
        0.1, "Share of the optimizer steps spent warming the learning rate up", min=0, max=1
    )
    max_grad_norm: float = param(
        1.0, "Clip the gradient norm to this (0 = no clipping)", min=0, max=1_000_000
    )
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
        return run_mlm(self.params, ctx, state)


@dataclass(frozen=True)
class TextFeatures:
    """Texts tokenised once, padded to the longest: ids, lengths, which tokens may be masked,
    and each token's word number in its row (-1 outside words)."""

    input_ids: np.ndarray
    lengths: np.ndarray
    maskable: np.ndarray
    words: np.ndarray
    token_type_ids: np.ndarray | None

    def __len__(self) -> int:
        return int(self.lengths.shape[0])


def encode_texts(examples: Sequence[Example], tokenizer: Any, max_length: int) -> TextFeatures:
    """Tokenise the texts of `examples` (both texts of a pair; a sentence's tokens as words)."""
    import numpy as np

    if not examples:
        raise DataError("no texts to train the masked-language model on")
    if isinstance(examples[0], TokenExample):
        sentences = [list(ex.tokens) for ex in examples if isinstance(ex, TokenExample)]
        encoded = tokenizer(
            sentences,
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            return_special_tokens_mask=True,
            return_attention_mask=False,
        )
        has_pairs = False
    else:
        texts = [ex for ex in examples if isinstance(ex, TextExample)]
        has_pairs = any(ex.text_pair is not None for ex in texts)
        encoded = tokenizer(
            [ex.text for ex in texts],
            [ex.text_pair or "" for ex in texts] if has_pairs else None,
            truncation=True,
            max_length=max_length,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=has_pairs,
        )
    rows = encoded["input_ids"]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = np.full((len(rows), width), pad, dtype=np.int64)
    maskable = np.zeros((len(rows), width), dtype=bool)
    words = np.full((len(rows), width), -1, dtype=np.int64)
    token_types = np.zeros((len(rows), width), dtype=np.int64) if has_pairs else None
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        maskable[i, : len(row)] = np.asarray(encoded["special_tokens_mask"][i]) == 0
        if token_types is not None:
            token_types[i, : len(row)] = encoded["token_type_ids"][i]
        if getattr(encoded, "is_fast", False):
            words[i, : len(row)] = _word_numbers(encoded.word_ids(i), encoded.sequence_ids(i))
    return TextFeatures(input_ids, lengths, maskable, words, token_types)


def _word_numbers(word_ids: list[int | None], sequence_ids: list[int | None]) -> list[int]:
    """Number the words of one row 0, 1, 2 ... across both texts of a pair; -1 elsewhere."""
    out: list[int] = []
    count, previous = -1, None
    for word, sequence in zip(word_ids, sequence_ids, strict=True):
        if word is None:
            out.append(-1)
            previous = None
            continue
        if (sequence, word) != previous:
            count += 1
            previous = (sequence, word)
        out.append(count)
    return out


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    words: torch.Tensor,
    generator: torch.Generator,
    *,
    mask_id: int,
    vocab_size: int,
    probability: float,
    whole_word: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose `probability` of the maskable tokens (or of the words, all their
    sub-words together); 80% of the chosen become `mask_id`, 10% a random token, 10% stay.

    Return `(inputs, labels)` with `IGNORE_INDEX` in the labels where nothing is predicted.
    At least one token is chosen when any is maskable.
    """
    import torch

    choose = torch.rand(input_ids.shape, generator=generator)
    kind = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    if whole_word:
        # Every token of a word takes the draws at the word's number: one decision per word.
        index = words.clamp(min=0)
        choose, kind = choose.gather(1, index), kind.gather(1, index)
    chosen = (choose < probability) & maskable
    if not chosen.any() and maskable.any():
        chosen.view(-1)[maskable.view(-1).nonzero()[0]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    inputs = input_ids.clone()
    replace = 1.0 - RANDOM_SHARE - KEEP_SHARE
    inputs[chosen & (kind < replace)] = mask_id
    swap = chosen & (kind >= replace) & (kind < replace + RANDOM_SHARE)
    inputs[swap] = random_ids[swap]
    return inputs, labels


def masked_lm_for(model: Any, training: Training) -> Any:
    """A masked-LM model of `model`'s architecture holding a copy of its encoder's weights."""
    with training.loading():
        from transformers import AutoModelForMaskedLM

    factory: Any = AutoModelForMaskedLM  # untyped
    try:
        mlm = factory.from_config(copy.deepcopy(model.config))
    except ValueError as exc:
        kind = getattr(model.config, "model_type", "?")
        raise ConfigError(f"mlm: model type {kind!r} has no masked-LM model: {exc}") from None
    copy_encoder(model, mlm)
    return mlm


def copy_encoder(source: Any, target: Any) -> None:
    """Copy the encoder weights of `source` into `target` (the weights each has of its own,
    such as a pooler, are left alone); `ConfigError` when the encoders do not match."""
    if type(source.base_model) is not type(target.base_model):
        raise ConfigError(
            f"mlm: the encoders of {type(source).__name__} and {type(target).__name__} differ"
        )
    result = target.base_model.load_state_dict(source.base_model.state_dict(), strict=False)
    stray = [k for k in (*result.missing_keys, *result.unexpected_keys) if "pooler" not in k]
    if stray:
        raise ConfigError(f"mlm: encoder weights do not match: {', '.join(stray[:3])}")


def _batches(
    features: TextFeatures, order: np.ndarray, batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    import numpy as np
    import torch

    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = int(features.lengths[rows].max())
        batch = {
            "input_ids": torch.from_numpy(features.input_ids[rows, :width]),
            "attention_mask": torch.from_numpy(
                (np.arange(width) < features.lengths[rows][:, None]).astype(np.int64)
            ),
            "maskable": torch.from_numpy(features.maskable[rows, :width]),
            "words": torch.from_numpy(np.ascontiguousarray(features.words[rows, :width])),
        }
        if features.token_type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(features.token_type_ids[rows, :width])
        yield batch


def perplexity(loss: float) -> float:
    """exp(`loss`), infinite where that overflows."""
    return math.exp(loss) if loss < 700 else math.inf


class _MlmTraining:
    """One masked-LM training run: optimizer steps, logging, validation perplexity."""

    def __init__(
        self,
        params: MlmParams,
        ctx: StageContext,
        model: Any,
        tokenizer: Any,
        train: TextFeatures,
        validation: TextFeatures | None,
    ) -> None:
        import torch

        self.params, self.ctx, self.model = params, ctx, model
        self.train, self.validation = train, validation
        self.mask_id, self.vocab_size = int(tokenizer.mask_token_id), len(tokenizer)
        per_epoch = math.ceil(len(train) / params.batch_size)
        total = params.epochs * per_epoch
        self.total = min(total, params.max_steps) if params.max_steps > 0 else total
        self.epochs = math.ceil(self.total / per_epoch)
        training = ctx.training
        dtype = training.autocast_dtype(params.precision)
        device_type = "cuda" if ctx.device.startswith("cuda") else "cpu"
        self.autocast = (
            (lambda: torch.autocast(device_type=device_type, dtype=dtype))
            if dtype is not None
            else contextlib.nullcontext
        )
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        groups = training.param_groups(model, params.weight_decay)
        self.optimizer = torch.optim.AdamW(groups, lr=params.lr)
        warmup = math.ceil(params.warmup_ratio * self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, training.lr_factor("linear", warmup, self.total)
        )
        self.step = 0
        self.best: tuple[int, float, dict[str, torch.Tensor]] | None = None

    def _loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> Any:
        """The model's masked-LM loss on `batch` masked with `generator`, and how many tokens
        it predicted."""
        inputs, labels = mask_tokens(
            batch["input_ids"],
            batch["maskable"],
            batch["words"],
            generator,
            mask_id=self.mask_id,
            vocab_size=self.vocab_size,
            probability=self.params.mask_probability,
            whole_word=self.params.whole_word_mask,
        )
        model_inputs = {"input_ids": inputs, "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            model_inputs["token_type_ids"] = batch["token_type_ids"]
        model_inputs["labels"] = labels
        model_inputs = {k: v.to(self.ctx.device) for k, v in model_inputs.items()}
        with self.autocast():
            loss = self.model(**model_inputs).loss
        return loss, int((labels != IGNORE_INDEX).sum())

    def run(self) -> None:
        """Train until the last step; measure validation perplexity after every epoch."""
        import numpy as np
        import torch

        params, ctx = self.params, self.ctx
        generator = torch.Generator().manual_seed(ctx.seed)
        for epoch in range(self.epochs):
            self.model.train()
            order = np.random.default_rng(ctx.seed + epoch).permutation(len(self.train))
            for batch in _batches(self.train, order, params.batch_size):
                ctx.check_stop()
                loss, _ = self._loss(batch, generator)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise NonFiniteLoss(f"the masked-LM loss is {value} at step {self.step + 1}")
                lr = self._optimizer_step(loss)
                self.step += 1
                values = {"train/loss": value, "train/perplexity": perplexity(value)}
                ctx.log({**values, "train/lr": lr}, self.step)
                ctx.progress(self.step, self.total, f"epoch {epoch + 1}/{self.epochs}")
                if self.step == self.total:
                    break
            if self.validation is not None:
                self._evaluate()

    def _optimizer_step(self, loss: Any) -> float:
        import torch

        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.params.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        lr = float(self.scheduler.get_last_lr()[0])
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return lr

    def _evaluate(self) -> None:
        """Log val/loss and val/perplexity (the same masks every time); keep the best encoder."""
        import torch

        with torch.no_grad():
            self._measure()

    def _measure(self) -> None:
        import numpy as np
        import torch

        assert self.validation is not None
        self.model.eval()
        generator = torch.Generator().manual_seed(self.ctx.seed + 1)
        total, count = 0.0, 0
        order = np.arange(len(self.validation))
        for batch in _batches(self.validation, order, self.params.eval_batch_size):
            self.ctx.check_stop()
            loss, labelled = self._loss(batch, generator)
            total += float(loss) * labelled
            count += labelled
        value = total / max(count, 1)
        self.ctx.log({"val/loss": value, "val/perplexity": perplexity(value)}, self.step)
        if self.best is None or value < self.best[1]:
            weights = {k: v.detach().clone() for k, v in self.model.base_model.state_dict().items()}
            self.best = (self.step, value, weights)


def _texts(state: PipelineState, split: str) -> list[Example]:
    return list(state.splits.get(split) or [])


def run_mlm(params: MlmParams, ctx: StageContext, state: PipelineState) -> PipelineState:
    """Continue pretraining `state.model`'s encoder as a masked LM on the task's texts."""
    import torch

    model, tokenizer = state.model, state.tokenizer
    if model is None or tokenizer is None:
        raise ConfigError("no model in the pipeline state (the run did not load one)")
    if tokenizer.mask_token_id is None:
        raise ConfigError("mlm: the tokenizer has no mask token")
    if params.whole_word_mask and not getattr(tokenizer, "is_fast", False):
        raise ConfigError("mlm: whole_word_mask needs a fast tokenizer (it reads word ids)")
    if params.corpus:
        documents, held_out = corpus_split(ctx, params)
        examples: list[Example] = [TextExample(text=doc) for doc in documents]
        val_examples: list[Example] = [TextExample(text=doc) for doc in held_out]
    else:
        examples = _texts(state, "train")
        if params.include_validation:
            examples += _texts(state, "validation")
        val_examples = _texts(state, "validation")
    train = encode_texts(examples, tokenizer, ctx.max_length)
    validation = encode_texts(val_examples, tokenizer, ctx.max_length) if val_examples else None
    torch.manual_seed(ctx.seed)
    mlm = masked_lm_for(model, ctx.training).to(ctx.device)
    ctx.event(f"masked-LM training on {len(train)} texts ({type(mlm).__name__})")
    training = _MlmTraining(params, ctx, mlm, tokenizer, train, validation)
    training.run()
    if training.best is not None:
        step, value, weights = training.best
        mlm.base_model.load_state_dict(weights)
        ctx.report_best(step, perplexity(value), "val/perplexity")
        ctx.event(f"best val/perplexity = {perplexity(value):.3f} at step {step}")
    copy_encoder(mlm, model)
    del mlm, training
    model.eval()
    ctx.training.save_checkpoint(state)
    return state
