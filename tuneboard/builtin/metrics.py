"""Built-in classification metrics: accuracy and macro/micro precision, recall and F1.

Pure Python. Macro averages run over the labels that occur in the references or the
predictions (as scikit-learn does); a ratio with a zero denominator counts as 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tuneboard import Metric, hookimpl
from tuneboard.builtin.entities import ENTITY_METRICS
from tuneboard.builtin.generation_metrics import GENERATION_METRICS
from tuneboard.builtin.prompt_classification import LABEL_TASKS


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives per label."""

    tp: Counter[Hashable]
    fp: Counter[Hashable]
    fn: Counter[Hashable]
    labels: tuple[Hashable, ...]


def count(predictions: Sequence[Any], references: Sequence[Any]) -> Counts:
    """Count per-label hits and misses of single-label predictions."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    tp: Counter[Hashable] = Counter()
    fp: Counter[Hashable] = Counter()
    fn: Counter[Hashable] = Counter()
    for pred, ref in zip(predictions, references, strict=True):
        if pred == ref:
            tp[ref] += 1
        else:
            fp[pred] += 1
            fn[ref] += 1
    labels = tuple(dict.fromkeys([*references, *predictions]))
    return Counts(tp, fp, fn, labels)


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _scores(counts: Counts, label: Hashable | None) -> tuple[float, float, float]:
    if label is None:  # micro: pool the counts of every label
        tp, fp, fn = (sum(c.values()) for c in (counts.tp, counts.fp, counts.fn))
    else:
        tp, fp, fn = counts.tp[label], counts.fp[label], counts.fn[label]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return precision, recall, _f1(precision, recall)


def precision_recall_f1(
    predictions: Sequence[Any], references: Sequence[Any], average: Literal["macro", "micro"]
) -> tuple[float, float, float]:
    """Macro- or micro-averaged precision, recall and F1."""
    counts = count(predictions, references)
    if average == "micro":
        return _scores(counts, None)
    if not counts.labels:
        return 0.0, 0.0, 0.0
    per_label = [_scores(counts, label) for label in counts.labels]
    n = len(per_label)
    return tuple(sum(s[i] for s in per_label) / n for i in range(3))  # type: ignore[return-value]


class Accuracy(Metric):
    """The share of predictions equal to their reference."""

    name = "accuracy"
    description = "Share of examples whose predicted label is the reference label"
    tasks = LABEL_TASKS

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{"accuracy": value}``."""
        hits = count(predictions, references).tp
        return {self.name: _ratio(sum(hits.values()), len(references))}


class _Averaged(Metric):
    average: ClassVar[Literal["macro", "micro"]]
    index: ClassVar[int]
    tasks = LABEL_TASKS

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{name: value}``."""
        return {self.name: precision_recall_f1(predictions, references, self.average)[self.index]}


class PrecisionMacro(_Averaged):
    """Precision per label, averaged with equal weight per label."""

    name, average, index = "precision_macro", "macro", 0
    description = "Precision averaged over labels, each label weighing the same"


class RecallMacro(_Averaged):
    """Recall per label, averaged with equal weight per label."""

    name, average, index = "recall_macro", "macro", 1
    description = "Recall averaged over labels, each label weighing the same"


class F1Macro(_Averaged):
    """F1 per label, averaged with equal weight per label."""

    name, average, index = "f1_macro", "macro", 2
    description = "F1 averaged over labels, each label weighing the same"


class PrecisionMicro(_Averaged):
    """Precision over pooled counts (equals accuracy for single-label classification)."""

    name, average, index = "precision_micro", "micro", 0
    description = "Precision over the pooled counts of all labels"


class RecallMicro(_Averaged):
    """Recall over pooled counts (equals accuracy for single-label classification)."""

    name, average, index = "recall_micro", "micro", 1
    description = "Recall over the pooled counts of all labels"


class F1Micro(_Averaged):
    """F1 over pooled counts (equals accuracy for single-label classification)."""

    name, average, index = "f1_micro", "micro", 2
    description = "F1 over the pooled counts of all labels"


BUILTIN_METRICS: tuple[type[Metric], ...] = (
    Accuracy,
    PrecisionMacro,
    RecallMacro,
    F1Macro,
    PrecisionMicro,
    RecallMicro,
    F1Micro,
)


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in metrics (the token-classification and generation ones too)."""
    for metric in (*BUILTIN_METRICS, *ENTITY_METRICS, *GENERATION_METRICS):
        register(metric)
