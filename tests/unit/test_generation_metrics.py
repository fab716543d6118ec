"""Built-in generation metrics against sacrebleu and rouge-score called directly (the oracles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rouge_score.rouge_scorer import RougeScorer
from sacrebleu.metrics import BLEU, CHRF

from tuneboard import CAUSAL_LM, SEQ2SEQ, DataError
from tuneboard.builtin.generation_metrics import (
    GENERATION_METRICS,
    Bleu,
    Chrf,
    ExactMatch,
    Rouge,
    UnicodeWords,
)
from tuneboard.engine.context import metric_higher_is_better
from tuneboard.plugins import load_plugins
from tuneboard.testing import plugin_registry

PREDS = [
    "the cat sat on the mat today",
    "a quick brown fox jumps over the dog",
    "hello world, this is a test sentence",
    "",
]
REFS = [
    "the cat is sitting on the mat today",
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a test sentence",
    "nothing was generated for this one",
]
NAMES = ("exact_match", "bleu", "chrf", "rouge")


def rouge_oracle(preds: list[str], refs: list[str], tokenizer: Any = None) -> dict[str, float]:
    """Mean ROUGE F-measures (0-100) from rouge-score itself."""
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tokenizer)
    scores = [scorer.score(ref, pred) for pred, ref in zip(preds, refs, strict=True)]
    return {k: 100 * sum(s[k].fmeasure for s in scores) / len(scores) for k in scores[0]}


class Whitespace:
    """Splits on whitespace only: the oracle's tokenizer for text written with spaces."""

    def tokenize(self, text: str) -> list[str]:
        """The whitespace-separated pieces of `text`."""
        return text.split()


def test_exact_match_trims_and_collapses_whitespace_and_keeps_case() -> None:
    preds = ["  the answer\t is\n 42 ", "The answer is 42", "", "the answer is 42"]
    refs = ["the answer is 42", "the answer is 42", "   ", "the answer is 4"]
    # hits: whitespace-only differences and two empty texts; misses: case, a cut-off digit
    assert ExactMatch().compute(preds, refs, []) == {"exact_match": 0.5}


def test_bleu_and_chrf_are_sacrebleus_corpus_scores() -> None:
    bleu = Bleu().compute(PREDS, REFS, [])
    chrf = Chrf().compute(PREDS, REFS, [])
    assert bleu == {"bleu": pytest.approx(BLEU().corpus_score(PREDS, [REFS]).score)}
    assert chrf == {"chrf": pytest.approx(CHRF().corpus_score(PREDS, [REFS]).score)}
    assert 0 < bleu["bleu"] < 100 and 0 < chrf["chrf"] < 100


def test_rouge_on_ascii_text_matches_rouge_scores_default_tokenizer() -> None:
    values = Rouge().compute(PREDS, REFS, [])
    expected = rouge_oracle(PREDS, REFS)
    assert values == {
        **{k: pytest.approx(v) for k, v in expected.items()},
        "rouge": values["rougeL"],
    }
    assert 0 < values["rouge2"] < values["rouge1"] < 100


def test_perfect_generations_score_the_top_of_each_scale() -> None:
    assert ExactMatch().compute(REFS[:3], REFS[:3], []) == {"exact_match": 1.0}
    assert Bleu().compute(REFS[:3], REFS[:3], [])["bleu"] == pytest.approx(100.0)
    assert Chrf().compute(REFS[:3], REFS[:3], [])["chrf"] == pytest.approx(100.0)
    values = Rouge().compute(REFS[:3], REFS[:3], [])
    assert values == dict.fromkeys(("rouge1", "rouge2", "rougeL", "rouge"), pytest.approx(100.0))


def test_empty_generations_score_zero_without_failing() -> None:
    refs = ["a reference with several words in it", "another one here too"]
    empty = ["", ""]
    assert Bleu().compute(empty, refs, []) == {"bleu": 0.0}
    assert Chrf().compute(empty, refs, []) == {"chrf": 0.0}
    assert Rouge().compute(empty, refs, []) == dict.fromkeys(
        ("rouge1", "rouge2", "rougeL", "rouge"), 0.0
    )
    assert ExactMatch().compute(empty, refs, []) == {"exact_match": 0.0}


def test_rouge_scores_text_beyond_ascii() -> None:
    preds = ["Привет, мир! Как твои дела?", "ο γρήγορος σκύλος τρέχει", "我爱北京"]
    refs = ["привет мир как дела", "ο σκύλος τρέχει γρήγορα", "我爱上海"]
    # rouge-score's own tokenizer sees no words in these and scores every one 0
    assert rouge_oracle(preds, refs) == dict.fromkeys(("rouge1", "rouge2", "rougeL"), 0.0)
    values = Rouge().compute(preds, refs, [])
    # the oracle on the same text lowercased, punctuation removed, CJK spaced out by hand
    by_hand = ["привет мир как твои дела", "ο γρήγορος σκύλος τρέχει", "我 爱 北 京"]
    spaced_refs = [*refs[:2], "我 爱 上 海"]
    expected = rouge_oracle(by_hand, spaced_refs, Whitespace())
    assert {k: values[k] for k in expected} == {k: pytest.approx(v) for k, v in expected.items()}
    assert values["rouge1"] > 50


def test_unicode_words_keep_marks_and_normalise_forms() -> None:
    words = UnicodeWords()
    assert words.tokenize("नमस्ते, दुनिया!") == ["नमस्ते", "दुनिया"]  # vowel signs are marks
    assert words.tokenize("Cafe\u0301 CAFÉ") == ["café", "café"]  # NFD and NFC agree
    assert words.tokenize("日本語のテキストabc") == [
        "日",
        "本",
        "語",
        "の",
        "テ",
        "キ",
        "ス",
        "ト",
        "abc",
    ]
    assert words.tokenize("snake_case, 3.5 co-op") == ["snake", "case", "3", "5", "co", "op"]


@pytest.mark.parametrize("metric", GENERATION_METRICS, ids=lambda m: m.name)
def test_bad_inputs_are_data_errors(metric: type[Any]) -> None:
    with pytest.raises(DataError, match=f"metric '{metric.name}': no generations to score"):
        metric().compute([], [], [])
    with pytest.raises(DataError, match="2 generations for 1 references"):
        metric().compute(["a", "b"], ["a"], [])
    with pytest.raises(DataError, match="generation 1 is a int, not a string"):
        metric().compute(["a", 3], ["a", "b"], [])


def test_generation_metrics_are_registered_for_the_generation_tasks() -> None:
    registry = plugin_registry()
    for name in NAMES:
        metric = registry.metrics[name]
        assert metric.tasks == (CAUSAL_LM, SEQ2SEQ)
        assert metric.higher_is_better is True
        assert metric.description
        assert registry.provider("metric", name).name == "builtin_metrics"


def test_every_value_a_metric_returns_takes_that_metrics_direction(tmp_path: Path) -> None:
    # A project plugin re-registers each generation metric as lower-is-better: every name the
    # metric returns (rouge1, val/rougeL, ...) must then read as lower-is-better, so each name
    # resolves to the plugin that produced it.
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "flipped.py").write_text(
        "from tuneboard import hookimpl\n"
        "from tuneboard.builtin.generation_metrics import GENERATION_METRICS\n"
        "@hookimpl\n"
        "def register_metrics(register):\n"
        "    for metric in GENERATION_METRICS:\n"
        "        register(type(metric.__name__, (metric,), {'higher_is_better': False}))\n"
    )
    flipped = load_plugins(tmp_path, entry_points=False, reload=True)
    assert flipped.failures == []
    builtin = plugin_registry()
    for metric in GENERATION_METRICS:
        for name in metric().compute(PREDS, REFS, []):
            assert metric_higher_is_better(f"val/{name}", flipped) is False, name
            assert metric_higher_is_better(f"val/{name}", builtin) is True, name
