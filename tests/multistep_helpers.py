"""Test helpers for the multi-step plugins: toy NER data, and a context that knows every
built-in metric and strategy."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from helpers import MINILM, TINY_BERT, RecordingContext

from tuneboard.builtin.metrics import register_metrics
from tuneboard.builtin.strategies import register_strategies
from tuneboard.config import ModelSpec
from tuneboard.sdk.contracts import (
    TOKEN_CLASSIFICATION,
    Metric,
    PipelineState,
    Strategy,
    TokenExample,
)
from tuneboard.sdk.params import build_params

NER_LABELS = ["B-LOC", "B-PER", "I-PER", "O"]
FIRST = ["Maria", "Tomas", "Aiko", "Jonas", "Leila", "Priya"]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Berg"]
PLACES = ["Lisbon", "Nairobi", "Oslo", "Kyoto", "Toronto"]
VERBS = ["visited", "left", "likes", "reached"]


def toy_sentences(n: int, seed: int = 0) -> list[TokenExample]:
    """`n` sentences "<person> <verb> <place> ." with BIO tags; every other person has a
    last name too."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tokens = [rng.choice(FIRST)]
        tags = ["B-PER"]
        if i % 2:
            tokens.append(rng.choice(LAST))
            tags.append("I-PER")
        tokens += [rng.choice(VERBS), rng.choice(PLACES), "."]
        tags += ["O", "B-LOC", "O"]
        out.append(TokenExample(tuple(tokens), tuple(tags)))
    return out


def toy_ner_state(n_train: int = 32, n_val: int = 12, n_test: int = 12) -> PipelineState:
    """A token-classification state with toy sentences and a tiny random BERT."""
    import torch

    from tuneboard.engine.models import load_model_and_tokenizer

    torch.manual_seed(0)
    spec = ModelSpec(source=None, config=TINY_BERT, tokenizer=MINILM)
    model, tokenizer = load_model_and_tokenizer(spec, TOKEN_CLASSIFICATION, NER_LABELS, Path("."))
    splits: dict[str, list[Any]] = {
        "train": toy_sentences(n_train, 0),
        "validation": toy_sentences(n_val, 1),
        "test": toy_sentences(n_test, 2),
    }
    return PipelineState(
        task=TOKEN_CLASSIFICATION,
        labels=list(NER_LABELS),
        splits=splits,
        model=model,
        tokenizer=tokenizer,
    )


def _registered(hook: Any) -> dict[str, Any]:
    found: list[Any] = []
    hook(found.append)
    return {cls.name: cls for cls in found}


ALL_METRICS: dict[str, type[Metric]] = _registered(register_metrics)
ALL_STRATEGIES: dict[str, type[Strategy[Any]]] = _registered(register_strategies)


class PluginContext(RecordingContext):
    """A RecordingContext that computes any built-in metric and builds any built-in strategy;
    `scored` keeps the predictions and references of every metric call."""

    def __init__(self, tmp_path: Path, **kwargs: Any) -> None:
        super().__init__(tmp_path, **kwargs)
        self.scored: list[tuple[list[Any], list[Any]]] = []

    def compute_metrics(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        self.scored.append((list(predictions), list(references)))
        values: dict[str, float] = {}
        for name in self.metric_names:
            values.update(ALL_METRICS[name]().compute(predictions, references, label_names))
        return values

    def higher_is_better(self, metric: str) -> bool:
        return not metric.endswith(("loss", "perplexity"))

    def strategy(self, name: str, params: Mapping[str, Any] | None = None) -> Strategy[Any]:
        cls = ALL_STRATEGIES[name]
        return cls(build_params(cls.Params, dict(params or {}), f"strategy {name}"))
