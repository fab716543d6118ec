"""Built-in generation metrics: exact match, BLEU, chrF and ROUGE-1/2/L.

For the generation tasks (``causal-lm``, ``seq2seq``) a metric gets the generated strings as
predictions and the reference strings as references. BLEU and chrF are sacrebleu's corpus
scores, ROUGE is rouge-score's; both libraries are imported inside `compute`, so loading the
plugins (and so the CLI) does not pay for them.

Scales: ``exact_match`` is a share (0-1, like ``accuracy``); ``bleu``, ``chrf`` and the ROUGE
values are on sacrebleu's 0-100 scale.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from tuneboard import CAUSAL_LM, SEQ2SEQ, DataError, Metric

GENERATION = (CAUSAL_LM, SEQ2SEQ)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def texts(
    name: str, predictions: Sequence[Any], references: Sequence[Any]
) -> tuple[list[str], list[str]]:
    """The predictions and references as lists of strings, checked for metric `name`.

    Raises `DataError` when there is nothing to score, the two lengths differ, or an item is
    not a string.
    """
    if not predictions:
        raise DataError(
            f"metric {name!r}: no generations to score (the split is empty or no outputs were "
            "generated; check eval_generate_samples)"
        )
    if len(predictions) != len(references):
        raise DataError(
            f"metric {name!r}: {len(predictions)} generations for {len(references)} references"
        )
    for kind, items in (("generation", predictions), ("reference", references)):
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise DataError(
                    f"metric {name!r}: {kind} {index} is a {type(item).__name__}, not a string "
                    "(generation metrics score text)"
                )
    return list(predictions), list(references)


def normalise_whitespace(text: str) -> str:
    """`text` without surrounding whitespace and with each internal run of it as one space."""
    return " ".join(text.split())


class ExactMatch(Metric):
    """The share of generations equal to their reference, whitespace aside (case counts)."""

    name = "exact_match"
    description = (
        "Share of generations equal to the reference after trimming surrounding whitespace "
        "and collapsing internal whitespace (case-sensitive); 0-1"
    )
    tasks = GENERATION

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{"exact_match": share}``."""
        preds, refs = texts(self.name, predictions, references)
        hits = sum(
            normalise_whitespace(p) == normalise_whitespace(r)
            for p, r in zip(preds, refs, strict=True)
        )
        return {self.name: hits / len(preds)}


class Bleu(Metric):
    """Corpus BLEU as sacrebleu computes it (its defaults: 13a tokenisation, exp smoothing)."""

    name = "bleu"
    description = "Corpus BLEU (sacrebleu defaults: 13a tokenisation, exponential smoothing); 0-100"
    tasks = GENERATION

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{"bleu": score}``."""
        from sacrebleu import BLEU

        preds, refs = texts(self.name, predictions, references)
        return {self.name: float(BLEU().corpus_score(preds, [refs]).score)}


class Chrf(Metric):
    """Corpus chrF as sacrebleu computes it (character 6-grams, beta 2)."""

    name = "chrf"
    description = "Corpus chrF (sacrebleu defaults: character 6-grams, beta 2); 0-100"
    tasks = GENERATION

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``{"chrf": score}``."""
        from sacrebleu import CHRF

        preds, refs = texts(self.name, predictions, references)
        return {self.name: float(CHRF().corpus_score(preds, [refs]).score)}


def _unspaced(char: str) -> bool:
    """Whether `char` belongs to a script written without spaces between words (CJK, kana)."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x2FA1F  # CJK extensions B and on
    )


class UnicodeWords:
    """A rouge-score tokenizer that keeps the words of every script.

    rouge-score's default tokenizer keeps only ``[a-z0-9]``, so text in any other script has no
    tokens and scores 0. This one NFKC-normalises and lowercases the text, then takes runs of
    letters, marks and digits (Unicode categories L, M, N) as words; every other character
    separates words. CJK ideographs and kana, written without spaces, count one token per
    character. No stemming. On ASCII text it gives the same tokens as rouge-score's default
    tokenizer without stemming.
    """

    def tokenize(self, text: str) -> list[str]:
        """The words of `text`."""
        spaced = []
        for char in unicodedata.normalize("NFKC", text).lower():
            if _unspaced(char):
                spaced.append(f" {char} ")
            elif unicodedata.category(char)[0] in "LMN":
                spaced.append(char)
            else:
                spaced.append(" ")
        return "".join(spaced).split()


class Rouge(Metric):
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score), averaged over examples."""

    name = "rouge"
    description = (
        "ROUGE-1/2/L F-measure (rouge-score, Unicode word tokens, no stemming), mean over "
        "examples, 0-100, as rouge1, rouge2 and rougeL; rouge repeats rougeL"
    )
    tasks = GENERATION

    def compute(
        self, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str]
    ) -> dict[str, float]:
        """Return ``rouge1``, ``rouge2``, ``rougeL`` and ``rouge`` (= ``rougeL``), 0-100.

        ``rouge`` is there so that a plain ``metrics = ["rouge"]`` has a value under the
        metric's own name, which the default monitor (``val/rouge``) and headline need.
        """
        from rouge_score.rouge_scorer import RougeScorer  # type: ignore[import-untyped]

        preds, refs = texts(self.name, predictions, references)
        scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=UnicodeWords())
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for pred, ref in zip(preds, refs, strict=True):
            scores = scorer.score(ref, pred)  # rouge-score takes the target first
            for kind in ROUGE_TYPES:
                totals[kind] += scores[kind].fmeasure
        values = {kind: 100.0 * total / len(preds) for kind, total in totals.items()}
        values[self.name] = values["rougeL"]
        return values


GENERATION_METRICS: tuple[type[Metric], ...] = (ExactMatch, Bleu, Chrf, Rouge)
