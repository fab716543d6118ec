"""A minimal causal-LM task plugin for tests: prompt + response + EOS, loss on the response.

It renders an example as plain concatenation (what TRL's DPOTrainer does with a
non-conversational pair), so the preference tests can compare with TRL token for token.
Written against the public SDK alone; copied into a throwaway project's ``plugins/`` folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from tuneboard import (
    IGNORE_INDEX,
    DataError,
    Dataset,
    DatasetContext,
    EvaluationInputs,
    Example,
    Features,
    GenerationExample,
    GenerationParams,
    Metric,
    NoParams,
    Splits,
    StageContext,
    Task,
    hookimpl,
)


class PlainLm(Task[NoParams]):
    """Causal LM on prompt + response + EOS, the prompt masked out of the loss."""

    name = "plain-lm"
    Params = NoParams

    def __init__(self, params: NoParams | None = None) -> None:
        super().__init__(params or NoParams())

    def model_class(self) -> Any:
        """transformers' causal-LM auto class."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def prepare(self, tokenizer: Any, config: dict[str, Any]) -> None:
        """An end-of-sequence token (BERT-style tokenizers: their [SEP]) and a pad token."""
        if tokenizer.eos_token is None:
            tokenizer.eos_token = tokenizer.sep_token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def encode(self, examples: Sequence[Example], tokenizer: Any, max_length: int) -> Features:
        """Prompt ids (not trained on) then response + EOS ids, cut at `max_length`."""
        import numpy as np

        rows: list[list[int]] = []
        labels: list[list[int]] = []
        for i, example in enumerate(examples):
            if not isinstance(example, GenerationExample) or example.response is None:
                raise DataError(f"example {i}: needs a prompt and a response")
            prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
            response = tokenizer(example.response + tokenizer.eos_token, add_special_tokens=False)
            ids = (prompt + response["input_ids"])[:max_length]
            rows.append(ids)
            labels.append(([IGNORE_INDEX] * len(prompt) + response["input_ids"])[:max_length])
        width = max(len(row) for row in rows)
        pad = int(tokenizer.pad_token_id)
        input_ids = np.full((len(rows), width), pad, dtype=np.int64)
        label_ids = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
            input_ids[i, : len(row)] = row
            label_ids[i, : len(label)] = label
        lengths = np.asarray([len(row) for row in rows], dtype=np.int64)
        return Features(input_ids, lengths, label_ids, None, pad)

    def evaluate(self, ctx: StageContext, inputs: EvaluationInputs) -> dict[str, float]:
        """The mean loss per response token."""
        import torch

        total, count = 0.0, 0
        with torch.inference_mode():
            for batch in ctx.training.batches(inputs.features, inputs.batch_size):
                with inputs.autocast():
                    loss = inputs.model(**batch).loss
                n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                total, count = total + float(loss) * n, count + n
        return {"loss": total / max(count, 1)}

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
        """Greedy continuations of each prompt."""
        import torch

        outputs = []
        for example in examples:
            assert isinstance(example, GenerationExample)
            ids = tokenizer(example.prompt, add_special_tokens=False, return_tensors="pt")
            with torch.inference_mode(), autocast():
                out = model.generate(**ids, max_new_tokens=generation.max_new_tokens)
            outputs.append(tokenizer.decode(out[0, ids["input_ids"].shape[1] :]))
        return outputs


class PlainExactMatch(Metric):
    """Share of outputs equal to their reference (an experiment names at least one metric)."""

    name = "plain_exact_match"
    tasks = ("plain-lm",)

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Exact matches over all outputs."""
        same = sum(p == r for p, r in zip(predictions, references, strict=True))
        return {self.name: same / max(len(references), 1)}


class PlainPrompts(Dataset[NoParams]):
    """A few fixed prompt/response examples in each split (for runs that need a dataset)."""

    name = "plain_prompts"

    def load(self, ctx: DatasetContext) -> Splits:
        """Two examples per split."""
        examples: list[Example] = [
            GenerationExample(prompt="say hello :", response="hello"),
            GenerationExample(prompt="say bye :", response="bye"),
        ]
        return {"train": list(examples), "validation": list(examples), "test": list(examples)}


@hookimpl
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    """Provide the dataset."""
    register(PlainPrompts)


@hookimpl
def register_tasks(register: Callable[[type[Any]], None]) -> None:
    """Provide the task."""
    register(PlainLm)


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    """Provide the metric."""
    register(PlainExactMatch)
