"""The `augment` stage: seeded text augmentation of the training split (EDA-style).

Four operations, each making a changed copy of an example: swap two words, delete words,
insert a word (a synonym of a word of the text, or a copy of one), and replace words by
synonyms from a user-given file. For token classification the units are words outside
entities and whole entities: entities move as a block with their tags, are never deleted or
replaced, and inserted words are tagged ``O``, so BIO tags stay valid. Standard library only.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from tuneboard import (
    TOKEN_CLASSIFICATION,
    ConfigError,
    DataError,
    Example,
    PipelineState,
    Stage,
    StageContext,
    TextExample,
    TokenExample,
    param,
)
from tuneboard.builtin.entities import entity_spans

Operation = Literal["swap", "delete", "insert", "synonym"]
OPERATIONS: tuple[Operation, ...] = ("swap", "delete", "insert", "synonym")
OUTSIDE = "O"

Unit = list[tuple[str, str | None]]
"""A word outside entities, or a whole entity: its words with their tags (None for texts)."""

_WORD = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


@dataclass
class AugmentParams:
    """Parameters of the `augment` stage."""

    operations: list[Operation] = param(
        ["swap", "delete", "insert"],
        "Operations to draw from, one per new example: swap words, delete words, insert a "
        "word, replace words by synonyms (synonym needs the synonyms file)",
    )
    ratio: float = param(
        0.5,
        "New examples to try to make, as a share of the training split (1.0 doubles it)",
        min=0,
        max=100,
    )
    changes: float = param(
        0.1, "Share of an example's words each operation changes (at least one)", min=0, max=1
    )
    synonyms: str | None = param(
        None,
        "File of synonyms, one 'word<TAB>synonym,synonym' per line (relative to the project "
        "folder); used by synonym and insert",
    )

    def __post_init__(self) -> None:
        if not self.operations:
            raise ValueError("key 'operations' must name at least one operation")
        if "synonym" in self.operations and not self.synonyms:
            raise ValueError("key 'operations': 'synonym' needs key 'synonyms' (a synonyms file)")


class Augment(Stage[AugmentParams]):
    """Seeded augmentation of the training split: swap, delete, insert, synonym replacement."""

    name = "augment"
    Params = AugmentParams
    description = "Add changed copies of training examples (word swaps, deletions, synonyms)"

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Add the new examples to the train split; log `augment/added`."""
        p = self.params
        return run_augment(p.operations, p.ratio, p.changes, p.synonyms, ctx, state)


def read_synonyms(path: Path) -> dict[str, list[str]]:
    """Synonyms by lower-cased word from a file of ``word<TAB>syn1,syn2`` lines.

    Blank lines and lines starting with ``#`` are skipped. Raise `DataError` naming the file
    and line for a malformed line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"synonyms file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid utf-8 ({exc.reason})") from None
    synonyms: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, tab, rest = line.partition("\t")
        options = [s.strip() for s in rest.split(",") if s.strip()]
        if not tab or not word.strip() or not options:
            raise DataError(
                f"{path}: line {number}: expected 'word<TAB>synonym,synonym', got {line!r}"
            )
        synonyms.setdefault(word.strip().lower(), []).extend(options)
    return synonyms


def units_of(example: Example) -> list[Unit]:
    """The units an example is changed by: words, with each entity kept as one unit."""
    if isinstance(example, TextExample):
        return [[(word, None)] for word in example.text.split()]
    if not isinstance(example, TokenExample):
        raise DataError("augment: works on classification and NER examples, not generation ones")
    tags = example.tags or (OUTSIDE,) * len(example.tokens)
    starts = {start: end for _, start, end in entity_spans(tags)}
    units: list[Unit] = []
    i = 0
    while i < len(tags):
        end = starts.get(i, i) if tags[i] != OUTSIDE else i
        units.append([(example.tokens[k], tags[k]) for k in range(i, end + 1)])
        i = end + 1
    return units


def rebuild(example: Example, units: Sequence[Unit]) -> Example:
    """`example` with its words (and tags) replaced by those of `units`."""
    pairs = [pair for unit in units for pair in unit]
    if isinstance(example, TextExample):
        return replace(example, text=" ".join(word for word, _ in pairs))
    assert isinstance(example, TokenExample)
    tags = tuple(str(tag) for _, tag in pairs) if example.tags is not None else None
    return replace(example, tokens=tuple(word for word, _ in pairs), tags=tags)


def _is_word(unit: Unit) -> bool:
    """A single word outside any entity (the only units deleted or replaced)."""
    return len(unit) == 1 and unit[0][1] in (None, OUTSIDE)


def _synonym_of(word: str, synonyms: Mapping[str, list[str]], rng: random.Random) -> str | None:
    match = _WORD.match(word)
    assert match is not None
    before, core, after = match.groups()
    options = [s for s in synonyms.get(core.lower(), []) if s.lower() != core.lower()]
    if not core or not options:
        return None
    choice = rng.choice(options)
    if core[0].isupper():
        choice = choice[0].upper() + choice[1:]
    return before + choice + after


def _words(text: str, tag: str | None) -> Unit:
    return [(word, tag) for word in text.split()]


def apply(
    operation: Operation,
    units: list[Unit],
    count: int,
    rng: random.Random,
    synonyms: Mapping[str, list[str]],
) -> list[Unit]:
    """A changed copy of `units`: `operation` applied `count` times (as far as it can be)."""
    out = list(units)
    words = [i for i, unit in enumerate(out) if _is_word(unit)]
    if operation == "swap" and len(out) >= 2:
        for _ in range(count):
            i, j = rng.sample(range(len(out)), 2)
            out[i], out[j] = out[j], out[i]
    elif operation == "delete" and len(out) >= 2 and words:
        gone = set(rng.sample(words, min(count, len(words), len(out) - 1)))
        out = [unit for i, unit in enumerate(out) if i not in gone]
    elif operation == "insert" and words:
        for _ in range(count):
            word, tag = out[rng.choice(words)][0]
            new = _synonym_of(word, synonyms, rng) or word
            out.insert(rng.randrange(len(out) + 1), _words(new, tag))
            words = [i for i, unit in enumerate(out) if _is_word(unit)]
    elif operation == "synonym":
        candidates = [i for i in words if _synonym_of(out[i][0][0], synonyms, rng) is not None]
        for i in rng.sample(candidates, min(count, len(candidates))):
            word, tag = out[i][0]
            out[i] = _words(_synonym_of(word, synonyms, rng) or word, tag)
    return out


def augment_examples(
    examples: Sequence[Example],
    operations: Sequence[Operation],
    ratio: float,
    changes: float,
    rng: random.Random,
    synonyms: Mapping[str, list[str]],
) -> tuple[list[Example], Counter[str]]:
    """New examples, ``round(ratio * len(examples))`` tries, each a copy of a source example
    (taken in a shuffled order, cycling) changed by one operation chosen at random; a copy the
    operation could not change is dropped. Also return how many each operation added."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    added: list[Example] = []
    counts: Counter[str] = Counter()
    for k in range(round(ratio * len(examples))):
        source = examples[order[k % len(order)]]
        operation = rng.choice(list(operations))
        units = units_of(source)
        count = max(1, round(changes * sum(len(unit) for unit in units)))
        new = rebuild(source, apply(operation, units, count, rng, synonyms))
        if new != source:
            added.append(new)
            counts[operation] += 1
    return added, counts


def run_augment(
    operations: Sequence[Operation],
    ratio: float,
    changes: float,
    synonyms_file: str | None,
    ctx: StageContext,
    state: PipelineState,
) -> PipelineState:
    """Add augmented copies of training examples to the train split; log how many."""
    train = state.splits.get("train")
    if not train:
        raise DataError("augment: the 'train' split is missing or empty")
    token_task = state.task == TOKEN_CLASSIFICATION
    if "insert" in operations and token_task and OUTSIDE not in state.labels:
        raise ConfigError(f"augment: 'insert' tags new words {OUTSIDE!r}, not a label here")
    synonyms = read_synonyms(ctx.project_file(synonyms_file, "synonyms")) if synonyms_file else {}
    rng = random.Random(ctx.seed)
    added, counts = augment_examples(train, operations, ratio, changes, rng, synonyms)
    state.splits["train"] = [*train, *added]
    ctx.log({"augment/added": float(len(added))}, 0)
    ctx.progress(1, 1, "augmented")
    detail = ", ".join(f"{op} {counts[op]}" for op in operations)
    ctx.event(f"added {len(added)} augmented examples to {len(train)} ({detail})")
    return state
