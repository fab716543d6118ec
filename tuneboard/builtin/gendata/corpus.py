"""The `corpus` dataset plugin: plain-text files of documents, for continued pretraining."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tuneboard import (
    DataError,
    Dataset,
    DatasetContext,
    GenerationExample,
    Splits,
    StageContext,
    param,
)
from tuneboard.builtin.gendata.common import check_generation_task, load_splits
from tuneboard.builtin.textfiles import read_text

SplitOn = Literal["blank_line", "line", "file"]


@dataclass
class CorpusParams:
    """Where the text files are and how they divide into documents."""

    train: str | list[str] = param(
        help="Text file (or list of files) for training (relative to the project folder)"
    )
    validation: str | list[str] | None = param(None, help="Text file(s) for validation")
    test: str | list[str] | None = param(None, help="Text file(s) for testing")
    split_on: SplitOn = param(
        "blank_line",
        help="What ends a document: blank_line (one or more blank lines), line (every line "
        "is a document) or file (each file is one document)",
    )
    encoding: str = param("utf-8", help="Text encoding of the files")


class CorpusDataset(Dataset[CorpusParams]):
    """Plain-text documents -> GenerationExample(prompt="", response=document)."""

    name = "corpus"
    description = "Plain-text files of documents, for continued pretraining of a language model"
    Params = CorpusParams

    def load(self, ctx: DatasetContext) -> Splits:
        """Read each split's files into `GenerationExample`s, one per non-empty document."""
        check_generation_task(self.name, ctx.task)
        p = self.params
        files = {"train": p.train, "validation": p.validation, "test": p.test}
        return load_splits(ctx, files, self._examples)

    def _examples(self, path: Path, key: str) -> list[GenerationExample]:
        found = documents(read_text(path, self.params.encoding), self.params.split_on)
        return [GenerationExample(prompt="", response=document) for document in found]


def documents(text: str, split_on: SplitOn) -> Iterator[str]:
    """The non-empty documents of `text` (line endings made ``\\n``; blank lines at a
    document's start and end dropped)."""
    lines = text.splitlines()
    if split_on == "line":
        yield from (line for line in lines if line.strip())
        return
    if split_on == "file":
        while lines and not lines[-1].strip():
            lines.pop()
        start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
        if lines[start:]:
            yield "\n".join(lines[start:])
        return
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line)
        elif current:
            yield "\n".join(current)
            current = []


@dataclass
class CorpusFileParams:
    """The keys of a stage that trains on a corpus file of its own (`clm`, `mlm`)."""

    corpus: str | None = param(
        None, "A text file of documents to train on (relative to the project folder)"
    )
    split_on: SplitOn = param(
        "blank_line", "What ends a document in the corpus file: blank_line, line or file"
    )
    corpus_validation: float = param(
        0.05, "Share of the corpus's documents held out to measure val/loss", min=0, max=0.5
    )


def corpus_split(ctx: StageContext, params: CorpusFileParams) -> tuple[list[str], list[str]]:
    """The corpus file's documents, shuffled with the stage's seed and cut into training and
    held-out ones; `DataError` naming the file when it holds none."""
    assert params.corpus is not None
    path = ctx.project_file(params.corpus, "corpus")
    found = list(documents(read_text(path, "utf-8"), params.split_on))
    if not found:
        raise DataError(f"{path}: no documents in the corpus file")
    random.Random(ctx.seed).shuffle(found)
    held = round(len(found) * params.corpus_validation)
    held = min(held, len(found) - 1)
    return found[held:], found[:held]
