"""Token ids and loss labels for generation examples, with truncation that is reported.

numpy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tuneboard import IGNORE_INDEX, ChatTurn, DataError, Example, Features, GenerationExample
from tuneboard.builtin.generation.templates import (
    Template,
    is_document,
    segments,
    uses_chat_template,
)


def generation_examples(examples: Sequence[Example]) -> list[GenerationExample]:
    """`examples`, checked to be generation examples (DataError naming the first that is not)."""
    for i, example in enumerate(examples):
        if not isinstance(example, GenerationExample):
            raise DataError(
                f"example {i} is a {type(example).__name__}, not a generation example: use a "
                "generation dataset (chat, pairs, corpus) with this task"
            )
    return list(examples)  # type: ignore[arg-type]  # checked above


def eos_text(tokenizer: Any) -> str:
    """The end-of-sequence token's text ("" when the tokenizer has none)."""
    return str(tokenizer.eos_token or "")


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """`text` as token ids, without the special tokens the tokenizer would add around it."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


@dataclass
class _Truncation:
    """Counts of what `max_length` cut, for one line in the run's events."""

    max_length: int
    total: int = 0
    prompts: int = 0
    responses: int = 0
    documents: int = 0
    chunks: int = 0

    def notes(self) -> tuple[str, ...]:
        out = []
        if self.prompts or self.responses:
            out.append(
                f"{self.prompts + self.responses} of {self.total} examples are longer than "
                f"max_length {self.max_length}: {self.prompts} prompts cut at the start, "
                f"{self.responses} responses cut at the end (no response is dropped whole)"
            )
        if self.documents:
            out.append(
                f"{self.documents} documents longer than max_length {self.max_length} were "
                f"cut into {self.chunks} pieces"
            )
        return tuple(out)


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    trained: list[bool] = field(default_factory=list)

    def add(self, ids: Sequence[int], trained: bool) -> None:
        self.ids.extend(ids)
        self.trained.extend([trained] * len(ids))


def encode_causal(
    examples: Sequence[Example],
    tokenizer: Any,
    max_length: int,
    template: Template,
    train_on_prompt: bool,
    packing: bool = False,
) -> Features:
    """Features for a causal LM: the whole text as input; labels on the replies only (or on
    everything with `train_on_prompt`). Documents longer than `max_length` are cut into
    pieces; a longer conversation loses the start of its prompt first, and then the end of
    its response, so some of every response stays."""
    cut = _Truncation(max_length)
    rows: list[_Row] = []
    eos = eos_text(tokenizer)
    for i, example in enumerate(generation_examples(examples)):
        cut.total += 1
        row = _Row()
        pieces = segments(example, tokenizer, template, eos)
        row.add(bos_ids(tokenizer, template, is_document(example)), False)
        for text, trained in pieces:
            row.add(token_ids(tokenizer, text), trained)
        if is_document(example):
            row.add(token_ids(tokenizer, eos), True)
            row.trained = [True] * len(row.ids)
            rows.extend(_chunks(row, max_length, cut))
            continue
        if not any(row.trained):
            raise DataError(f"example {i}: nothing to learn (no response or assistant turn)")
        rows.append(_truncate(row, max_length, cut))
    labels_rows = [
        [
            t if (trained or train_on_prompt) else IGNORE_INDEX
            for t, trained in zip(r.ids, r.trained, strict=True)
        ]
        for r in rows
    ]
    pad = pad_id(tokenizer)
    if packing:
        return _packed(rows, labels_rows, max_length, pad, cut.notes())
    input_ids, lengths = pad_rows([r.ids for r in rows], pad)
    labels, _ = pad_rows(labels_rows, IGNORE_INDEX)
    return Features(input_ids, lengths, labels, None, pad, notes=cut.notes())


def _packed(
    rows: Sequence[_Row],
    labels_rows: Sequence[list[int]],
    max_length: int,
    pad: int,
    notes: tuple[str, ...],
) -> Features:
    """Examples packed first-fit, longest first, into sequences of at most `max_length`.

    Positions restart at 0 with each example; its first token is never a target, so no
    example learns to follow the one before it.
    """
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(rows)), key=lambda i: -len(rows[i].ids)):
        size = len(rows[i].ids)
        place = next((b for b, free in enumerate(room) if free >= size), None)
        if place is None:
            bins.append([])
            room.append(max_length)
            place = len(bins) - 1
        bins[place].append(i)
        room[place] -= size
    ids, labels, positions = [], [], []
    for members in bins:
        ids.append([t for i in members for t in rows[i].ids])
        labels.append([t for i in members for t in [IGNORE_INDEX, *labels_rows[i][1:]]])
        positions.append([p for i in members for p in range(len(rows[i].ids))])
    input_ids, lengths = pad_rows(ids, pad)
    note = f"packed {len(rows)} examples into {len(bins)} sequences of up to {max_length} tokens"
    return Features(
        input_ids,
        lengths,
        pad_rows(labels, IGNORE_INDEX)[0],
        None,
        pad,
        notes=(*notes, note),
        position_ids=pad_rows(positions, 0)[0],
    )


def bos_ids(tokenizer: Any, template: Template, document: bool = False) -> list[int]:
    """The beginning-of-sequence token a text starts with: none when a chat template renders
    it (the template puts in its own special tokens; a `document` is never rendered) or the
    tokenizer has none."""
    chat = template != "plain" and not document
    if (chat and uses_chat_template(tokenizer, template)) or tokenizer.bos_token_id is None:
        return []
    return [tokenizer.bos_token_id]


def _chunks(row: _Row, max_length: int, cut: _Truncation) -> list[_Row]:
    if len(row.ids) <= max_length:
        return [row]
    cut.documents += 1
    pieces = []
    for start in range(0, len(row.ids), max_length):
        piece = _Row(row.ids[start : start + max_length], row.trained[start : start + max_length])
        if len(piece.ids) > 1:  # one token teaches a causal LM nothing
            pieces.append(piece)
    cut.chunks += len(pieces)
    return pieces


def _truncate(row: _Row, max_length: int, cut: _Truncation) -> _Row:
    if len(row.ids) <= max_length:
        return row
    start = row.trained.index(True)
    prompt, rest = start, len(row.ids) - start
    keep_prompt = max(max_length - rest, min(prompt, max_length // 2))
    if keep_prompt < prompt:
        cut.prompts += 1
    if rest > max_length - keep_prompt:
        cut.responses += 1
    begin = prompt - keep_prompt
    end = begin + max_length
    return _Row(row.ids[begin:end], row.trained[begin:end])


def encode_seq2seq(
    examples: Sequence[Example], tokenizer: Any, max_length: int, source_prefix: str
) -> Features:
    """Features for an encoder-decoder: the source as input, the target as labels (a width
    of its own, `label_lengths`)."""
    items = generation_examples(examples)
    sources = [source_prefix + source_text(example) for example in items]
    targets = [example.reference or "" for example in items]
    encoded = tokenizer(sources, truncation=True, max_length=max_length)["input_ids"]
    full = tokenizer(text_target=targets)["input_ids"]
    cut = sum(len(ids) > max_length for ids in full)
    # A cut target keeps its last token (the end of sequence): the model still learns to stop.
    target_ids = [
        [*ids[: max_length - 1], ids[-1]] if len(ids) > max_length else ids for ids in full
    ]
    pad = pad_id(tokenizer)
    input_ids, lengths = pad_rows(encoded, pad)
    labels, label_lengths = pad_rows(target_ids, IGNORE_INDEX)
    notes: tuple[str, ...] = ()
    if cut:
        notes = (f"{cut} of {len(items)} targets are longer than max_length {max_length}: cut",)
    return Features(input_ids, lengths, labels, None, pad, label_lengths=label_lengths, notes=notes)


def source_text(example: GenerationExample) -> str:
    """An encoder's input: the prompt, or the conversation before the reply as
    ``role: content`` lines."""
    if example.messages is None:
        return example.prompt
    return "\n".join(_line(turn) for turn in example.context())


def _line(turn: ChatTurn) -> str:
    return f"{turn.role}: {turn.content}"


def pad_id(tokenizer: Any) -> int:
    """The padding token's id (0 when the tokenizer has none)."""
    pad = tokenizer.pad_token_id
    return int(pad) if pad is not None else 0


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> tuple[Any, Any]:
    """`rows` as one ``[N, W]`` int64 array padded with `value`, and each row's length."""
    import numpy as np

    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, lengths
