"""Built-in dataset plugins: CSV, TSV and JSON-lines files of texts and labels.

The CoNLL plugin for token classification (`tuneboard.builtin.conll`), the Hugging Face one
(`tuneboard.builtin.hf_dataset`) and those for generation tasks (`tuneboard.builtin.gendata`)
are registered here too.

Standard library only. Every error is one line naming the file (and the line where known).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tuneboard import (
    DataError,
    Dataset,
    DatasetContext,
    Splits,
    TextExample,
    hookimpl,
    param,
)
from tuneboard.builtin.conll import ConllDataset
from tuneboard.builtin.gendata import ChatDataset, CorpusDataset, PairsDataset
from tuneboard.builtin.prompt_classification import LABEL_TASKS
from tuneboard.builtin.textfiles import (
    check_columns,
    delimited_rows,
    jsonl_objects,
    read_text,
    text_cell,
)

Row = Mapping[str, Any]


@dataclass
class TableParams:
    """Where the files are and which columns hold the text and the label."""

    train: str = param(help="File with the training examples (relative to the project folder)")
    validation: str | None = param(None, help="File with the validation examples (optional)")
    test: str | None = param(None, help="File with the test examples (optional)")
    text_column: str | list[str] = param(
        "text", help="Column holding the text; a list gives alternatives, the first found is used"
    )
    text_pair_column: str | None = param(
        None, help="Column holding a second text, for pair tasks such as entailment (optional)"
    )
    label_column: str = param("label", help="Column holding the label (numbers become text)")
    encoding: str = param("utf-8", help="Text encoding of the files")


class TableDataset(Dataset[TableParams]):
    """Shared reading logic of the tabular dataset plugins."""

    Params = TableParams
    suffix: ClassVar[str]

    def load(self, ctx: DatasetContext) -> Splits:
        """Read each named file into a split of `TextExample`s."""
        if ctx.task not in LABEL_TASKS:
            raise DataError(f"dataset {self.name!r} supports only {', '.join(LABEL_TASKS)}")
        p = self.params
        splits: Splits = {}
        for split, name in (("train", p.train), ("validation", p.validation), ("test", p.test)):
            if name is not None:
                splits[split] = list(self._examples(ctx.resolve(name, split)))
        return splits

    def _examples(self, path: Path) -> Iterator[TextExample]:
        p = self.params
        text = read_text(path, p.encoding)
        texts = [p.text_column] if isinstance(p.text_column, str) else list(p.text_column)
        columns: tuple[str, str | None, str] | None = None
        count = 0
        for line, row in self.rows(path, text):
            if columns is None:
                columns = _pick_columns(path, line, row, texts, p.text_pair_column, p.label_column)
            text_col, pair_col, label_col = columns
            yield TextExample(
                text=text_cell(path, line, row, text_col, "text"),
                label=_label(path, line, row, label_col),
                text_pair=None
                if pair_col is None
                else text_cell(path, line, row, pair_col, "text"),
            )
            count += 1
        if count == 0:
            raise DataError(f"{path}: no examples (empty file)")

    @abstractmethod
    def rows(self, path: Path, text: str) -> Iterator[tuple[int, Row]]:
        """Yield `(line number, row)` for each record of the file's decoded `text`."""


def _pick_columns(
    path: Path, line: int, row: Row, texts: list[str], pair: str | None, label: str
) -> tuple[str, str | None, str]:
    found = [c for c in texts if c in row]
    wanted = [found[0] if found else " or ".join(texts)]
    check_columns(path, line, row, [*wanted, *(c for c in (pair, label) if c is not None)])
    return found[0], pair, label


def _label(path: Path, line: int, row: Row, column: str) -> str:
    value = row.get(column)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{path}: line {line}: missing or empty label in column {column!r}")


class _DelimitedDataset(TableDataset):
    delimiter: ClassVar[str]

    def rows(self, path: Path, text: str) -> Iterator[tuple[int, Row]]:
        """Yield rows keyed by the header, with the line each record starts on."""
        return delimited_rows(path, text, self.delimiter)


class CsvDataset(_DelimitedDataset):
    """Comma-separated files with a header row."""

    name = "csv"
    description = "CSV files with a header row: a text column and a label column"
    delimiter = ","


class TsvDataset(_DelimitedDataset):
    """Tab-separated files with a header row."""

    name = "tsv"
    description = "Tab-separated files with a header row: a text column and a label column"
    delimiter = "\t"


class JsonlDataset(TableDataset):
    """JSON-lines files: one object per line."""

    name = "jsonl"
    description = "JSON-lines files: one object per line with a text and a label field"

    def rows(self, path: Path, text: str) -> Iterator[tuple[int, Row]]:
        """Yield each non-blank line's object with its line number."""
        return jsonl_objects(path, text)


@hookimpl
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    """Register the built-in dataset plugins."""
    from tuneboard.builtin.hf_dataset import HfDataset  # imports `datasets` only when loading

    generation = (ChatDataset, PairsDataset, CorpusDataset)
    for dataset in (CsvDataset, TsvDataset, JsonlDataset, ConllDataset, HfDataset, *generation):
        register(dataset)
