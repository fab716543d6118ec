"""The `augment` stage: each operation on texts and on tagged sentences, seeded, tags kept valid."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import RecordingContext
from multistep_helpers import toy_sentences

from tuneboard.builtin.augment import (
    Augment,
    AugmentParams,
    apply,
    read_synonyms,
    rebuild,
    units_of,
)
from tuneboard.builtin.entities import entity_spans
from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    PipelineState,
    TextExample,
    TokenExample,
)
from tuneboard.sdk.errors import ConfigError, DataError
from tuneboard.sdk.params import build_params, describe_params

SYNONYMS = "# word<TAB>synonyms\ngood\tfine,decent\nmovie\tfilm, picture\n\nvisited\ttoured\n"


def synonyms(tmp_path: Path) -> dict[str, list[str]]:
    (tmp_path / "synonyms.tsv").write_text(SYNONYMS, encoding="utf-8")
    return read_synonyms(tmp_path / "synonyms.tsv")


def change(example: Any, operation: str, count: int = 1, seed: int = 0, syn: Any = None) -> Any:
    units = units_of(example)
    return rebuild(example, apply(operation, units, count, random.Random(seed), syn or {}))


def test_synonym_file(tmp_path: Path) -> None:
    assert synonyms(tmp_path) == {
        "good": ["fine", "decent"],
        "movie": ["film", "picture"],
        "visited": ["toured"],
    }
    (tmp_path / "bad.tsv").write_text("good\tfine\nmovie film\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv: line 2: expected 'word<TAB>synonym,synonym'"):
        read_synonyms(tmp_path / "bad.tsv")
    with pytest.raises(DataError, match="synonyms file not found"):
        read_synonyms(tmp_path / "none.tsv")


def test_operations_on_a_text(tmp_path: Path) -> None:
    syn = synonyms(tmp_path)
    text = TextExample("A good movie, with a good plot", "pos", weight=2.0)
    words = text.text.split()
    swapped = change(text, "swap")
    assert sorted(swapped.text.split()) == sorted(words) and swapped.text != text.text
    assert (swapped.label, swapped.weight) == ("pos", 2.0)
    deleted = change(text, "delete", count=2)
    assert len(deleted.text.split()) == 5 and not Counter(deleted.text.split()) - Counter(words)
    inserted = change(text, "insert", syn=syn).text.split()
    assert len(inserted) == 8
    extra = set((Counter(inserted) - Counter(words)).keys())
    assert extra <= set(words) | {"fine", "decent", "film,", "picture,"}  # a copy or a synonym
    replaced = change(text, "synonym", count=3, syn=syn).text
    assert replaced.split()[0] == "A" and replaced.count(",") == 1
    assert "movie" not in replaced and "good" not in replaced  # all three candidates replaced
    assert change(TextExample("Good", "pos"), "synonym", syn=syn).text in {"Fine", "Decent"}
    # Nothing to do: the example comes back unchanged.
    assert change(TextExample("alone", "x"), "swap") == TextExample("alone", "x")
    assert change(text, "synonym") == text


def test_entities_move_as_blocks_and_tags_stay_valid(tmp_path: Path) -> None:
    syn = synonyms(tmp_path)
    sentence = TokenExample(
        ("Maria", "Okafor", "visited", "New", "Harwick", "and", "Oslo", "."),
        ("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-LOC", "O"),
    )
    assert [len(unit) for unit in units_of(sentence)] == [2, 1, 2, 1, 1, 1]

    def entities(example: TokenExample) -> Counter[tuple[str, tuple[str, ...]]]:
        assert example.tags is not None and len(example.tags) == len(example.tokens)
        spans = entity_spans(example.tags)
        return Counter((kind, example.tokens[a : b + 1]) for kind, a, b in spans)

    for seed in range(30):
        for operation in ("swap", "delete", "insert", "synonym"):
            new = change(sentence, operation, count=2, seed=seed, syn=syn)
            assert entities(new) == entities(sentence), (operation, new)
            for tag, prev in zip(new.tags[1:], new.tags, strict=False):  # BIO stays valid
                assert not tag.startswith("I-") or prev[2:] == tag[2:], new
            others = [tok for tok, tag in zip(new.tokens, new.tags, strict=True) if tag == "O"]
            assert set(others) <= {"visited", "toured", "and", "."}
    assert change(sentence, "synonym", syn=syn).tokens[2] == "toured"


def state_of(examples: list[Any], task: str, labels: list[str]) -> PipelineState:
    return PipelineState(task=task, labels=labels, splits={"train": list(examples)})


def run(tmp_path: Path, state: PipelineState, seed: int = 0, **values: Any) -> RecordingContext:
    ctx = RecordingContext(tmp_path, seed=seed)
    Augment(build_params(AugmentParams, values, "test (augment)")).run(ctx, state)
    return ctx


def test_stage_adds_examples_seeded_and_logs_them(tmp_path: Path) -> None:
    synonyms(tmp_path)
    sentences = toy_sentences(20)
    ops = ["swap", "delete", "insert", "synonym"]
    values = {"operations": ops, "ratio": 1.5, "synonyms": "synonyms.tsv"}
    state = state_of(sentences, TOKEN_CLASSIFICATION, ["B-LOC", "B-PER", "I-PER", "O"])
    ctx = run(tmp_path, state, **values)
    train = state.splits["train"]
    assert train[:20] == sentences
    added = len(train) - 20
    assert 20 < added <= 30
    assert ctx.series("augment/added") == [(0, added)]
    [(level, message)] = ctx.events
    assert level == "info" and message.startswith(f"added {added} augmented examples to 20 (swap ")

    again = state_of(sentences, TOKEN_CLASSIFICATION, ["B-LOC", "B-PER", "I-PER", "O"])
    run(tmp_path, again, **values)
    assert again.splits["train"] == train
    other = state_of(sentences, TOKEN_CLASSIFICATION, ["B-LOC", "B-PER", "I-PER", "O"])
    run(tmp_path, other, seed=1, **values)
    assert other.splits["train"] != train


def test_stage_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'synonym' needs key 'synonyms'"):
        build_params(AugmentParams, {"operations": ["synonym"]}, "test")
    with pytest.raises(ConfigError, match="at least one operation"):
        build_params(AugmentParams, {"operations": []}, "test")
    with pytest.raises(ConfigError, match="key 'operations' must be a list of"):
        build_params(AugmentParams, {"operations": ["shuffle"]}, "test")
    state = state_of([], SEQUENCE_CLASSIFICATION, ["neg", "pos"])
    with pytest.raises(DataError, match="'train' split is missing or empty"):
        run(tmp_path, state)
    tagged = state_of(toy_sentences(2), TOKEN_CLASSIFICATION, ["B-PER", "I-PER"])
    with pytest.raises(ConfigError, match="'insert' tags new words 'O'"):
        run(tmp_path, tagged)
    assert all(spec.help for spec in describe_params(AugmentParams))
