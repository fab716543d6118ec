"""Label sets, the automatic split, tokenisation once per split, and padded batches.

Label and split helpers are pure Python. numpy and torch are imported inside the functions
that tokenise and batch, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tuneboard.sdk.contracts import (
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    Example,
    PipelineState,
    Splits,
    TextExample,
    TokenExample,
)
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.tasks import Task
from tuneboard.sdk.training import IGNORE_INDEX, Features

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

_CACHE_KEY = "tuneboard.features"


# --- labels and splits ---------------------------------------------------------------------


def example_labels(example: Example) -> tuple[str, ...]:
    """The label names an example carries (one for a text, one per token for a sentence)."""
    if isinstance(example, TokenExample):
        return example.tags or ()
    if isinstance(example, TextExample):
        return () if example.label is None else (example.label,)
    return ()


def infer_labels(splits: Splits) -> list[str]:
    """The label names of the training split, sorted (numerically when all look numeric).

    Raise `DataError` when validation or test carry labels that train never has, naming the
    labels and the split, or when train has fewer than two labels.
    """
    train = {label for ex in splits.get("train", []) for label in example_labels(ex)}
    for split in ("validation", "test"):
        unseen = {label for ex in splits.get(split, []) for label in example_labels(ex)} - train
        if unseen:
            names = ", ".join(repr(label) for label in _sorted_labels(unseen))
            raise DataError(f"{split} split has labels never seen in train: {names}")
    if len(train) < 2:
        found = ", ".join(repr(label) for label in sorted(train)) or "none"
        raise DataError(f"train split needs at least two labels to classify; found {found}")
    return _sorted_labels(train)


def _sorted_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=lambda label: (float(label), label))
    except ValueError:
        return sorted(labels)


def auto_split(examples: Sequence[Example], seed: int) -> Splits:
    """Shuffle `examples` with `seed` and cut them 7:2:1 into train, validation and test."""
    if not examples:
        raise DataError("no examples to split")
    order = list(examples)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val = round(n * 0.2)
    n_test = round(n * 0.1)
    n_train = n - n_val - n_test
    return {
        "train": order[:n_train],
        "validation": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


# --- features ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CacheEntry:
    examples: list[Example]
    count: int
    tokenizer: Any
    labels: tuple[str, ...]
    features: Features


def split_features(
    state: PipelineState, split: str, max_length: int, task: Task[Any] | None = None
) -> Features:
    """The features of `split`, tokenised once and cached in `state.extras`.

    `task` (the experiment's task plugin; None for classification) encodes the examples.

    The cache entry is reused while the split's example list, the tokenizer object, the
    labels and `max_length` are unchanged, so later stages do not tokenise again. Raise
    `DataError` when the split is missing or empty.
    """
    splits, tokenizer, labels = state.splits, state.tokenizer, state.labels
    if split not in splits:
        available = ", ".join(sorted(splits)) or "none"
        raise DataError(f"no {split!r} split in the dataset (splits: {available})")
    examples = splits[split]
    if not examples:
        raise DataError(f"the {split!r} split is empty")
    cache: dict[tuple[str, int, str], _CacheEntry] = state.extras.setdefault(_CACHE_KEY, {})
    key = (split, max_length, state.task)
    entry = cache.get(key)
    if (
        entry is not None
        and entry.examples is examples
        and entry.count == len(examples)
        and entry.tokenizer is tokenizer
        and entry.labels == tuple(labels)
    ):
        return entry.features
    if task is not None:
        features = task.encode(examples, tokenizer, max_length)
    else:
        features = encode(examples, tokenizer, labels, max_length, state.task)
    cache[key] = _CacheEntry(examples, len(examples), tokenizer, tuple(labels), features)
    return features


def encode(
    examples: Sequence[Example],
    tokenizer: Any,
    labels: Sequence[str],
    max_length: int,
    task: str = SEQUENCE_CLASSIFICATION,
) -> Features:
    """Tokenise `examples` (truncated to `max_length`) into padded arrays with label ids."""
    if task == TOKEN_CLASSIFICATION:
        return _encode_tokens(examples, tokenizer, labels, max_length)
    return _encode_texts(examples, tokenizer, labels, max_length)


def _label_ids(labels: Sequence[str]) -> dict[str, int]:
    return {label: i for i, label in enumerate(labels)}


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad) if pad is not None else 0


def _encode_texts(
    examples: Sequence[Example], tokenizer: Any, labels: Sequence[str], max_length: int
) -> Features:
    import numpy as np

    texts: list[str] = []
    pairs: list[str] = []
    label_ids: list[int] = []
    ids = _label_ids(labels)
    has_pairs = any(isinstance(ex, TextExample) and ex.text_pair is not None for ex in examples)
    for i, ex in enumerate(examples):
        if not isinstance(ex, TextExample):
            raise DataError(f"example {i} is not a text example (task is sequence classification)")
        texts.append(ex.text)
        pairs.append(ex.text_pair or "")
        label_ids.append(_label_id(ids, ex.label, i))
    encoded = tokenizer(
        texts,
        pairs if has_pairs else None,
        truncation=True,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=has_pairs,
    )
    pad_id = _pad_id(tokenizer)
    input_ids, lengths = _pad(encoded["input_ids"], pad_id)
    token_types = _pad(encoded["token_type_ids"], 0)[0] if has_pairs else None
    return Features(input_ids, lengths, np.asarray(label_ids, dtype=np.int64), token_types, pad_id)


def _encode_tokens(
    examples: Sequence[Example], tokenizer: Any, labels: Sequence[str], max_length: int
) -> Features:
    import numpy as np

    ids = _label_ids(labels)
    words: list[list[str]] = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, TokenExample):
            raise DataError(f"example {i} is not a token example (task is token classification)")
        words.append(list(ex.tokens))
    encoded = tokenizer(
        words,
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    pad_id = _pad_id(tokenizer)
    input_ids, lengths = _pad(encoded["input_ids"], pad_id)
    tags = np.full(input_ids.shape, IGNORE_INDEX, dtype=np.int64)
    for row, ex in enumerate(examples):
        assert isinstance(ex, TokenExample)
        previous = None
        for position, word in enumerate(encoded.word_ids(row)):
            # Only the first sub-word of each word carries the word's tag.
            if word is not None and word != previous and ex.tags is not None:
                tags[row, position] = _label_id(ids, ex.tags[word], row)
            previous = word
    return Features(input_ids, lengths, tags, None, pad_id)


def _label_id(ids: dict[str, int], label: str | None, index: int) -> int:
    if label is None:
        return IGNORE_INDEX
    try:
        return ids[label]
    except KeyError:
        raise DataError(
            f"example {index}: label {label!r} is not one of the model's labels"
        ) from None


def _pad(rows: Sequence[Sequence[int]], value: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, lengths


# --- batches -------------------------------------------------------------------------------


GROUP_BATCHES = 50
"""With length grouping, rows are sorted by length within groups of this many batches."""


def batch_order(
    features: Features, shuffle: bool, seed: int, group_batch_size: int = 0
) -> np.ndarray:
    """The row order of one pass: a seeded permutation, or longest-first for evaluation.

    With `shuffle` and `group_batch_size > 0`, rows of similar length share a batch (so a
    batch pads little) while the order stays random: the permutation is cut into groups of
    `GROUP_BATCHES` batches, each group is sorted by length and cut into batches of
    `group_batch_size`, and those batches are shuffled (a short last batch stays last).
    Features with ``group > 1`` are ordered by whole groups (by their longest row), and
    `group_batch_size` counts groups; the order returned is always of rows.
    """
    import numpy as np

    size = features.group
    if size == 1:
        return _unit_order(features.lengths, shuffle, seed, group_batch_size)
    # Features whose rows come in groups (a preference pair): order the groups by their
    # longest row, then list each group's rows together.
    lengths = features.lengths.reshape(-1, size).max(axis=1)
    units = _unit_order(lengths, shuffle, seed, group_batch_size)
    rows: np.ndarray = (units[:, None] * size + np.arange(size)).reshape(-1)
    return rows


def _unit_order(lengths: np.ndarray, shuffle: bool, seed: int, group_batch_size: int) -> np.ndarray:
    """`batch_order` over units (rows, or groups of rows) of these lengths."""
    import numpy as np

    if not shuffle:
        # Longest first: similar lengths share a batch (little padding) and memory peaks early.
        return np.argsort(-lengths, kind="stable")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if group_batch_size <= 0:
        return order
    size = group_batch_size
    group = GROUP_BATCHES * size
    parts = [order[i : i + group] for i in range(0, len(order), group)]
    grouped = np.concatenate([p[np.argsort(-lengths[p], kind="stable")] for p in parts])
    full = len(grouped) // size * size
    whole = grouped[:full].reshape(-1, size)[rng.permutation(full // size)]
    return np.concatenate([whole.reshape(-1), grouped[full:]])


def batches(
    features: Features, batch_size: int, order: np.ndarray, device: str, multiple: int = 1
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield model inputs for `batch_size` rows at a time, in `order`, padded per batch.

    Each batch is cut to its own longest row (dynamic padding), rounded up to a multiple of
    `multiple` (but not past the split's padded width) so that a GPU sees few distinct shapes
    and reuses its kernels, and moved to `device`. Packed features get `position_ids` instead
    of an attention mask.

    On CUDA the next batch is built ahead, in pinned memory, on a background thread while the
    current one trains, and copied without blocking the host.
    """
    if device.startswith("cuda"):
        with contextlib.closing(
            prefetched(_host_batches(features, batch_size, order, multiple, device))
        ) as ahead:
            for batch in ahead:
                yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        return
    for batch in _host_batches(features, batch_size, order, multiple, None):
        yield batch if device == "cpu" else {k: v.to(device) for k, v in batch.items()}


def _host_batches(
    features: Features, batch_size: int, order: np.ndarray, multiple: int, pin: str | None
) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of `batches` in host memory; pinned for the CUDA device `pin`, if set."""
    import numpy as np
    import torch

    index = torch.device(pin).index if pin else None
    if index is not None:
        # Runs on the prefetching thread: pinning there must not start a CUDA context on
        # GPU 0 when the run is on another one (a rank of a multi-GPU run).
        torch.cuda.set_device(index)

    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        lengths = features.lengths[rows]
        width = _rounded(int(lengths.max()), multiple, features.input_ids.shape[1])
        batch = {"input_ids": torch.from_numpy(features.input_ids[rows, :width])}
        if features.position_ids is not None:
            batch["position_ids"] = torch.from_numpy(features.position_ids[rows, :width])
        else:
            mask = np.arange(width) < lengths[:, None]
            batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        if features.token_type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(features.token_type_ids[rows, :width])
        labels = features.labels[rows]
        if features.label_lengths is not None:
            label_width = int(features.label_lengths[rows].max())
            label_width = _rounded(label_width, multiple, labels.shape[1])
            labels = np.ascontiguousarray(labels[:, :label_width])
        elif labels.ndim == 2:
            # Contiguous, since models flatten token labels with .view().
            labels = np.ascontiguousarray(labels[:, :width])
        batch["labels"] = torch.from_numpy(labels)
        if pin:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        yield batch


def _rounded(width: int, multiple: int, limit: int) -> int:
    """`width` rounded up to a multiple of `multiple`, at most `limit`."""
    if multiple <= 1:
        return width
    return min(-(-width // multiple) * multiple, limit)


def pad_multiple(setting: int | str, device: str) -> int:
    """The multiple batch widths are rounded up to: `setting`, or for ``"auto"`` 8 on CUDA
    (tensor-core tiles, and fewer shapes to compile kernels for) and 1 elsewhere (where padding
    only costs compute)."""
    if setting == "auto":
        return 8 if device.startswith("cuda") else 1
    return int(setting)


_DONE = object()


def prefetched(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield `items` in order while a background thread produces up to `depth` ahead.

    An error raised while producing is raised here, at the item it replaced. Closing the
    iterator (or leaving a loop over it) stops and joins the thread.
    """
    ahead: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((None, error))

    thread = threading.Thread(target=produce, name="tuneboard-batches", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ahead.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def num_batches(n: int, batch_size: int) -> int:
    """How many batches of `batch_size` cover `n` rows."""
    return -(-n // batch_size)
