"""Labels, the automatic split, tokenisation caching and dynamically padded batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import one_torch_thread, toy_examples, toy_state

from tuneboard import IGNORE_INDEX, split_prefix
from tuneboard.engine.data import (
    auto_split,
    batch_order,
    batches,
    encode,
    infer_labels,
    split_features,
)
from tuneboard.sdk.contracts import TOKEN_CLASSIFICATION, TextExample, TokenExample
from tuneboard.sdk.errors import DataError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def texts(*labels: str) -> list[Any]:
    return [TextExample(f"text {i}", label) for i, label in enumerate(labels)]


def test_labels_are_sorted_numerically_when_numeric() -> None:
    assert infer_labels({"train": texts("10", "2", "1", "2")}) == ["1", "2", "10"]
    assert infer_labels({"train": texts("pos", "neg", "neutral")}) == ["neg", "neutral", "pos"]
    assert infer_labels({"train": texts("b", "10", "a")}) == ["10", "a", "b"]


def test_unseen_labels_name_the_split() -> None:
    splits = {"train": texts("a", "b"), "validation": texts("a"), "test": texts("c", "d", "a")}
    with pytest.raises(DataError, match=r"test split has labels never seen in train: 'c', 'd'"):
        infer_labels(splits)


def test_one_label_is_not_a_classification_task() -> None:
    with pytest.raises(DataError, match="at least two labels"):
        infer_labels({"train": texts("a", "a")})


def test_token_labels() -> None:
    splits: dict[str, list[Any]] = {"train": [TokenExample(("a", "b"), ("O", "B-X"))]}
    assert infer_labels(splits) == ["B-X", "O"]


def test_auto_split_is_seeded_7_2_1_partition() -> None:
    examples = texts(*(str(i % 3) for i in range(100)))
    splits = auto_split(examples, seed=7)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [70, 20, 10]
    together = [e for s in splits.values() for e in s]
    assert sorted(together, key=lambda e: e.text) == sorted(examples, key=lambda e: e.text)
    assert auto_split(examples, seed=7) == splits
    assert auto_split(examples, seed=8)["test"] != splits["test"]
    small = auto_split(texts("a", "b", "a", "b", "a"), seed=0)
    assert [len(small[s]) for s in ("train", "validation", "test")] == [4, 1, 0]


def test_split_prefixes() -> None:
    assert [split_prefix(s) for s in ("train", "validation", "test")] == ["train", "val", "test"]


def test_features_are_cached_per_split_and_tokenizer() -> None:
    state = toy_state()
    first = split_features(state, "train", 32)
    assert split_features(state, "train", 32) is first
    assert split_features(state, "train", 16) is not first
    state.splits["train"] = list(state.splits["train"])  # a new list, e.g. from augmentation
    second = split_features(state, "train", 32)
    assert second is not first
    state.splits["train"].append(state.splits["train"][0])  # changed in place
    assert split_features(state, "train", 32) is not second
    with pytest.raises(DataError, match=r"no 'nope' split in the dataset \(splits: test, train"):
        split_features(state, "nope", 32)
    state.splits["test"] = []
    with pytest.raises(DataError, match="the 'test' split is empty"):
        split_features(state, "test", 32)


def test_encode_truncates_and_pads_once() -> None:
    state = toy_state()
    examples = [TextExample("good", "pos"), TextExample("bad " * 50, "neg")]
    features = encode(examples, state.tokenizer, state.labels, max_length=12)
    assert features.input_ids.shape == (2, 12)
    assert features.lengths.tolist() == [3, 12]  # [CLS] good [SEP]
    assert features.labels.tolist() == [1, 0]
    assert features.token_type_ids is None
    assert (features.input_ids[0, 3:] == state.tokenizer.pad_token_id).all()


def test_text_pairs_get_token_types() -> None:
    state = toy_state()
    features = encode([TextExample("a b", "pos", text_pair="c")], state.tokenizer, state.labels, 16)
    assert features.token_type_ids is not None
    assert features.token_type_ids[0, : features.lengths[0]].tolist() == [0, 0, 0, 0, 1, 1]


def test_token_classification_tags_first_subword_only() -> None:
    state = toy_state()
    example = TokenExample(("tokenization", "is", "fun"), ("B", "O", "B"))
    features = encode([example], state.tokenizer, ["B", "O"], 32, TOKEN_CLASSIFICATION)
    n = int(features.lengths[0])
    tags = features.labels[0, :n].tolist()
    assert tags[0] == tags[-1] == IGNORE_INDEX  # [CLS], [SEP]
    assert [t for t in tags if t != IGNORE_INDEX] == [0, 1, 0]
    assert n > 5  # "tokenization" is split, its continuation is ignored


def test_batches_pad_to_the_longest_row_of_each_batch() -> None:
    state = toy_state()
    examples = [TextExample("good " * n, "pos") for n in (1, 8, 2, 3)]
    features = encode(examples, state.tokenizer, state.labels, 32)
    order = batch_order(features, shuffle=False, seed=0)
    assert features.lengths[order].tolist() == [10, 5, 4, 3]  # longest first
    out = list(batches(features, 2, order, "cpu"))
    assert [b["input_ids"].shape[1] for b in out] == [10, 4]
    assert out[1]["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert out[0]["labels"].tolist() == [1, 1]


def test_shuffled_order_is_seeded() -> None:
    state = toy_state()
    features = encode(toy_examples(20), state.tokenizer, state.labels, 32)
    a = batch_order(features, shuffle=True, seed=3)
    assert np.array_equal(a, batch_order(features, shuffle=True, seed=3))
    assert not np.array_equal(a, batch_order(features, shuffle=True, seed=4))
    assert sorted(a.tolist()) == list(range(20))
