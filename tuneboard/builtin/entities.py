"""Token-classification metrics: entity-level precision, recall and F1, and tag accuracy.

Entities are read from tag sequences the way the CoNLL evaluation script (conlleval) reads
them, so IOB1, IOB2/BIO and IOBES (also BILOU) tags all work: an entity starts at a ``B-`` or
``S-`` tag, at an ``I-``/``E-`` tag after ``O`` or after the end of another entity, and wherever
the type changes; it must match a reference entity in start, end and type exactly to count.
Pure Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tuneboard import TOKEN_CLASSIFICATION, Metric

Span = tuple[str, int, int]
"""An entity: its type, first and last token (inclusive)."""

_PREFIXES = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}
_OUTSIDE = ("O", "")


def split_tag(tag: str) -> tuple[str, str]:
    """A tag's position prefix (``B``, ``I``, ``E``, ``S`` or ``O``) and entity type.

    ``L-``/``U-`` (BILOU) read as ``E-``/``S-``; a tag without a prefix, such as ``PER``, is
    an inside tag of that type; ``O`` (and an empty tag) is outside.
    """
    if tag in ("O", ""):
        return _OUTSIDE
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in _PREFIXES:
        return _PREFIXES[tag[0]], tag[2:]
    return "I", tag


def _ends(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    (prev_tag, prev_type), (tag, kind) = prev, cur
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != kind


def _starts(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    (prev_tag, prev_type), (tag, kind) = prev, cur
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != kind


def entity_spans(tags: Sequence[str]) -> list[Span]:
    """The entities of one sentence's tags, in order, as `(type, first, last)`."""
    spans: list[Span] = []
    start: int | None = None
    prev = _OUTSIDE
    for i, tag in enumerate([*tags, "O"]):
        cur = split_tag(tag)
        if start is not None and _ends(prev, cur):
            spans.append((prev[1], start, i - 1))
            start = None
        if _starts(prev, cur):
            start = i
        prev = cur
    return spans


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(references)} references")
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        if len(pred) != len(ref):
            raise ValueError(f"sentence {i}: {len(pred)} predicted tags for {len(ref)} tokens")


def entity_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity precision, recall and F1 over all sentences, and F1 per entity type.

    Keys: ``entity_precision``, ``entity_recall``, ``entity_f1`` and ``entity_f1/<TYPE>`` for
    every type in the references or the predictions. A ratio with a zero denominator is 0.
    """
    _check_lengths(predictions, references)
    found: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for pred_tags, ref_tags in zip(predictions, references, strict=True):
        pred, ref = set(entity_spans(pred_tags)), set(entity_spans(ref_tags))
        found.update(span[0] for span in pred)
        gold.update(span[0] for span in ref)
        correct.update(span[0] for span in pred & ref)
    precision = _ratio(sum(correct.values()), sum(found.values()))
    recall = _ratio(sum(correct.values()), sum(gold.values()))
    values = {
        "entity_precision": precision,
        "entity_recall": recall,
        "entity_f1": _f1(precision, recall),
    }
    for kind in sorted(set(found) | set(gold)):
        kind_precision = _ratio(correct[kind], found[kind])
        kind_recall = _ratio(correct[kind], gold[kind])
        values[f"entity_f1/{kind}"] = _f1(kind_precision, kind_recall)
    return values


class EntityF1(Metric):
    """Entity-level precision, recall and F1 (exact span and type), as conlleval counts them."""

    name = "entity_f1"
    description = (
        "Entity-level F1, precision and recall (exact span and type, as the CoNLL script), "
        "and F1 per entity type"
    )
    tasks = (TOKEN_CLASSIFICATION,)

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``entity_f1``, ``entity_precision``, ``entity_recall``, ``entity_f1/<TYPE>``."""
        return entity_scores(predictions, references)


class TokenAccuracy(Metric):
    """The share of tokens whose predicted tag is the reference tag."""

    name = "token_accuracy"
    description = "Share of tokens whose predicted tag is the reference tag (O tokens included)"
    tasks = (TOKEN_CLASSIFICATION,)

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{"token_accuracy": value}``."""
        _check_lengths(predictions, references)
        pairs = [
            (p, r)
            for pred, ref in zip(predictions, references, strict=True)
            for p, r in zip(pred, ref, strict=True)
        ]
        return {self.name: _ratio(sum(p == r for p, r in pairs), len(pairs))}


ENTITY_METRICS: tuple[type[Metric], ...] = (EntityF1, TokenAccuracy)
