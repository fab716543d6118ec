"""A small instruction task written for the causal-LM benchmark: prompt/response pairs.

Four kinds of instruction, drawn with a seeded RNG so every run sees the same examples:
what number comes after another, which of two numbers is larger, the sum of two digits, and
repeating three words. Every response is lower-case words or numbers (what a BERT-style
uncased tokenizer gives back unchanged), so exact match measures the model, not the
tokenizer's decoding.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

Pair = tuple[str, str]
"""(prompt, response)."""

WORDS = (
    *("apple", "river", "stone", "cloud", "green", "paper", "light", "storm", "horse", "glass"),
    *("music", "table", "winter", "garden", "silver", "bread", "candle", "forest", "orange"),
    "window",
)


def _one(rng: random.Random) -> Pair:
    kind = rng.randrange(4)
    if kind == 0:
        n = rng.randrange(0, 99)
        return f"what number comes after {n}?", str(n + 1)
    if kind == 1:
        a, b = rng.sample(range(100), 2)
        return f"which is larger, {a} or {b}?", str(max(a, b))
    if kind == 2:
        a, b = rng.randrange(10), rng.randrange(10)
        return f"add {a} and {b}.", str(a + b)
    words = rng.sample(WORDS, 3)
    return f"repeat these words: {' '.join(words)}", " ".join(words)


def make_pairs(n: int, seed: int = 0) -> list[Pair]:
    """`n` distinct prompt/response pairs, the same for the same `seed`."""
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    while len(seen) < n:
        prompt, response = _one(rng)
        seen.setdefault(prompt, response)
    return list(seen.items())


def split_pairs(pairs: Sequence[Pair], validation: int, test: int) -> dict[str, list[Pair]]:
    """The last `test` pairs as test, the `validation` before them as validation, the rest
    as train (the pairs come in random order already)."""
    cut = len(pairs) - validation - test
    return {
        "train": list(pairs[:cut]),
        "validation": list(pairs[cut : cut + validation]),
        "test": list(pairs[cut + validation :]),
    }


def write_jsonl(path: Path, pairs: Sequence[Pair]) -> None:
    """`pairs` as JSON lines of ``{"prompt": ..., "response": ...}`` (the `chat` dataset)."""
    lines = (json.dumps({"prompt": p, "response": r}) for p, r in pairs)
    path.write_text("".join(line + "\n" for line in lines))
