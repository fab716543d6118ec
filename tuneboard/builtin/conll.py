"""The `conll` dataset plugin: CoNLL-style files of tokens and tags, for token classification.

One token per line with its tag in the last column (columns separated by spaces or tabs),
a blank line between sentences, ``-DOCSTART-`` lines skipped. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tuneboard import (
    TOKEN_CLASSIFICATION,
    DataError,
    Dataset,
    DatasetContext,
    Splits,
    TokenExample,
    param,
)
from tuneboard.builtin.textfiles import read_text

DOCSTART = "-DOCSTART-"


@dataclass
class ConllParams:
    """Where the CoNLL files are and how they are encoded."""

    train: str = param(help="File with the training sentences (relative to the project folder)")
    validation: str | None = param(None, help="File with the validation sentences (optional)")
    test: str | None = param(None, help="File with the test sentences (optional)")
    encoding: str = param("utf-8", help="Text encoding of the files")


class ConllDataset(Dataset[ConllParams]):
    """Token-per-line files: the token in the first column, its tag in the last."""

    name = "conll"
    Params = ConllParams
    description = "CoNLL files: a token and its tag per line, a blank line between sentences"

    def load(self, ctx: DatasetContext) -> Splits:
        """Read each named file into a split of `TokenExample`s."""
        if ctx.task != TOKEN_CLASSIFICATION:
            raise DataError(f"dataset {self.name!r} supports only {TOKEN_CLASSIFICATION}")
        p = self.params
        splits: Splits = {}
        for split, name in (("train", p.train), ("validation", p.validation), ("test", p.test)):
            if name is not None:
                splits[split] = list(read_conll(ctx.resolve(name, split), p.encoding))
        return splits


def read_conll(path: Path, encoding: str = "utf-8", tags: bool = True) -> list[TokenExample]:
    """The sentences of a CoNLL file.

    With `tags` (the default) every token line needs a tag in its last column; without, a
    line's first column is its token and sentences come back untagged. Raise `DataError`
    naming the file and line for a malformed line, and for a file without sentences.
    """
    sentences = list(_sentences(path, read_text(path, encoding), tags))
    if not sentences:
        raise DataError(f"{path}: no sentences (empty file)")
    return sentences


def _sentences(path: Path, text: str, tags: bool) -> Iterator[TokenExample]:
    tokens: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if not columns or columns[0] == DOCSTART:
            if tokens:
                yield TokenExample(tuple(tokens), tuple(labels) if tags else None)
            tokens, labels = [], []
            continue
        if tags and len(columns) < 2:
            raise DataError(
                f"{path}: line {number}: expected a token and its tag separated by whitespace, "
                f"got {line.strip()!r}"
            )
        tokens.append(columns[0])
        labels.append(columns[-1])
    if tokens:
        yield TokenExample(tuple(tokens), tuple(labels) if tags else None)
