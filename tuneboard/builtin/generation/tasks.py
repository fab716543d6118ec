"""The ``causal-lm`` and ``seq2seq`` tasks: decoders and encoder-decoders that generate text.

Both plug into the one training loop: the loss is the model's own next-token loss on the
labels their `encode` marks, and `evaluate` gives ``loss``, ``perplexity`` and, from the first
`generate_samples` examples, the configured generation metrics, keeping every output as a row
of the ``generations`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from tuneboard import (
    CAUSAL_LM,
    SEQ2SEQ,
    EvaluationInputs,
    Example,
    Features,
    Generation,
    GenerationExample,
    GenerationParams,
    StageContext,
    Task,
    param,
)
from tuneboard.builtin.generation.decoding import generate, perplexity, token_loss
from tuneboard.builtin.generation.encoding import (
    bos_ids,
    encode_causal,
    encode_seq2seq,
    eos_text,
    generation_examples,
    source_text,
    token_ids,
)
from tuneboard.builtin.generation.templates import (
    Template,
    is_document,
    prompt_text,
)

GENERATION_METRICS_DEFAULT = ("exact_match", "rouge")


@dataclass
class CausalLMParams:
    """The keys of an ``[experiments.NAME.task]`` table with ``plugin = "causal-lm"``."""

    template: Template = param(
        "auto",
        "How examples become text: auto = the tokenizer's chat template when it has one, else "
        "the default template; chat; default (User:/Assistant: lines); plain (prompt then "
        "response, no roles)",
    )
    train_on_prompt: bool = param(
        False, "Take the loss on the prompt's tokens too (default: on the responses only)"
    )
    packing: bool = param(
        False,
        "Pack short examples one after another into sequences of up to max_length tokens "
        "(fewer padded tokens); each example still attends only to itself",
    )


@dataclass
class Seq2SeqParams:
    """The keys of an ``[experiments.NAME.task]`` table with ``plugin = "seq2seq"``."""

    source_prefix: str = param(
        "", 'Text put before every source, e.g. "translate English to German: " for T5'
    )


class _GenerationTask(Task[Any]):
    """What both generation tasks share: evaluation and generation from prompt ids."""

    decoder_only: ClassVar[bool]

    def prompt_ids(self, example: GenerationExample, tokenizer: Any, max_length: int) -> list[int]:
        """The token ids (at most `max_length`) a model generates the example's reply from."""
        raise NotImplementedError

    def display_prompt(self, example: GenerationExample) -> str:
        """The prompt as people read it (in the generations table and the review screen)."""
        return source_text(example)

    def evaluate(self, ctx: StageContext, inputs: EvaluationInputs) -> dict[str, float]:
        """``loss`` and ``perplexity`` on every example; metrics on the generated ones."""
        loss = token_loss(
            ctx,
            inputs.model,
            inputs.features,
            inputs.batch_size,
            inputs.autocast,
            shift=self.decoder_only,
        )
        values = {"loss": loss, "perplexity": perplexity(loss)}
        examples = generation_examples(inputs.examples)
        chosen = [
            (i, example)
            for i, example in enumerate(examples[: inputs.generate_samples])
            if example.reference is not None and not is_document(example)
        ]
        if not chosen:
            return values
        outputs = self.generate(
            ctx,
            inputs.model,
            inputs.tokenizer,
            [example for _, example in chosen],
            inputs.generation,
            batch_size=inputs.batch_size,
            autocast=inputs.autocast,
        )
        references = [example.reference or "" for _, example in chosen]
        values.update(ctx.compute_metrics(outputs, references, []))
        ctx.record_generations(
            [
                Generation(
                    split=inputs.split,
                    index=i,
                    prompt=self.display_prompt(example),
                    output=output,
                    reference=example.reference,
                    step=inputs.step,
                )
                for (i, example), output in zip(chosen, outputs, strict=True)
            ]
        )
        return values

    def generate(
        self,
        ctx: StageContext,
        model: Any,
        tokenizer: Any,
        examples: Sequence[Example],
        generation: GenerationParams,
        *,
        batch_size: int,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> list[str]:
        """The model's reply to each example's prompt."""
        prompts = [
            self.prompt_ids(example, tokenizer, ctx.max_length)
            for example in generation_examples(examples)
        ]
        return generate(
            ctx,
            model,
            tokenizer,
            prompts,
            generation,
            batch_size=batch_size,
            autocast=autocast,
            decoder_only=self.decoder_only,
        )


class CausalLM(_GenerationTask):
    """Supervised fine-tuning of a decoder (``AutoModelForCausalLM``): GPT-2, Llama, Qwen ..."""

    name = CAUSAL_LM
    description = "A decoder that continues text: instruction/chat SFT, continued pretraining"
    Params = CausalLMParams
    default_metrics = GENERATION_METRICS_DEFAULT
    decoder_only = True
    params: CausalLMParams

    def model_class(self) -> Any:
        """``AutoModelForCausalLM``."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def prepare(self, tokenizer: Any, config: dict[str, Any]) -> None:
        """Give the tokenizer an end-of-sequence and a padding token; a model built from a
        config gets their ids."""
        _ensure_special_tokens(tokenizer)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)
        config.setdefault("bos_token_id", tokenizer.bos_token_id or tokenizer.eos_token_id)

    def encode(self, examples: Sequence[Example], tokenizer: Any, max_length: int) -> Features:
        """Prompt and reply as one text; labels on the reply (see `CausalLMParams`)."""
        p = self.params
        return encode_causal(
            examples, tokenizer, max_length, p.template, p.train_on_prompt, p.packing
        )

    def prompt_ids(self, example: GenerationExample, tokenizer: Any, max_length: int) -> list[int]:
        """The rendered prompt, ending where the reply starts (its end, when too long)."""
        text = prompt_text(example, tokenizer, self.params.template)
        bos = bos_ids(tokenizer, self.params.template)
        return (bos + token_ids(tokenizer, text))[-max_length:]

    def display_prompt(self, example: GenerationExample) -> str:
        """The prompt, or the conversation before the reply."""
        return example.prompt if example.messages is None else source_text(example)


class Seq2Seq(_GenerationTask):
    """An encoder-decoder (``AutoModelForSeq2SeqLM``: T5, BART, Marian, mT5) on source/target
    pairs: translation, summarisation."""

    name = SEQ2SEQ
    description = "An encoder-decoder from source to target text: translation, summarisation"
    Params = Seq2SeqParams
    default_metrics = ("bleu", "chrf")
    decoder_only = False
    params: Seq2SeqParams

    def model_class(self) -> Any:
        """``AutoModelForSeq2SeqLM``."""
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def prepare(self, tokenizer: Any, config: dict[str, Any]) -> None:
        """Special tokens as for a causal LM; the decoder starts from the padding token."""
        _ensure_special_tokens(tokenizer)
        config.setdefault("eos_token_id", tokenizer.eos_token_id)
        config.setdefault("bos_token_id", tokenizer.bos_token_id or tokenizer.pad_token_id)
        config.setdefault("decoder_start_token_id", tokenizer.pad_token_id)
        config.setdefault("forced_eos_token_id", tokenizer.eos_token_id)

    def encode(self, examples: Sequence[Example], tokenizer: Any, max_length: int) -> Features:
        """Source ids as input, target ids as labels."""
        return encode_seq2seq(examples, tokenizer, max_length, self.params.source_prefix)

    def prompt_ids(self, example: GenerationExample, tokenizer: Any, max_length: int) -> list[int]:
        """The source with the tokenizer's special tokens, cut as in training."""
        text = self.params.source_prefix + source_text(example)
        return list(tokenizer(text, truncation=True, max_length=max_length)["input_ids"])


def _ensure_special_tokens(tokenizer: Any) -> None:
    """An end-of-sequence token (the separator for BERT-style tokenizers) and a padding one."""
    if tokenizer.eos_token is None and getattr(tokenizer, "sep_token", None) is not None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if not eos_text(tokenizer):
        from tuneboard import ConfigError

        raise ConfigError("the tokenizer has no end-of-sequence token for a generation task")
