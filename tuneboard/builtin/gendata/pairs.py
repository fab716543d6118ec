"""The `pairs` dataset plugin: source/target pairs in CSV, TSV or JSON-lines files, for
translation, summarisation and other text-to-text tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuneboard import DataError, Dataset, DatasetContext, GenerationExample, Splits, param
from tuneboard.builtin.gendata.common import check_generation_task, load_splits
from tuneboard.builtin.textfiles import (
    check_columns,
    delimited_rows,
    jsonl_objects,
    read_text,
    text_cell,
)

FileFormat = Literal["auto", "csv", "tsv", "jsonl"]
EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass
class PairsParams:
    """Where the files are, what kind they are, and which columns hold source and target."""

    train: str = param(help="File with the training pairs (relative to the project folder)")
    validation: str | None = param(None, help="File with the validation pairs (optional)")
    test: str | None = param(None, help="File with the test pairs (optional)")
    source_column: str = param("source", help="Column (or JSON key) holding the input text")
    target_column: str = param("target", help="Column (or JSON key) holding the output text")
    format: FileFormat = param(
        "auto",
        help="csv, tsv (with a header row) or jsonl; auto goes by each file's extension "
        "(.csv, .tsv/.tab, .jsonl/.ndjson)",
    )
    encoding: str = param("utf-8", help="Text encoding of the files")


class PairsDataset(Dataset[PairsParams]):
    """CSV, TSV or JSON-lines source/target pairs -> GenerationExample(prompt, response)."""

    name = "pairs"
    description = "Source/target pairs in CSV, TSV or JSON-lines files (translation, summaries)"
    Params = PairsParams

    def load(self, ctx: DatasetContext) -> Splits:
        """Read each named file into a split of `GenerationExample`s."""
        check_generation_task(self.name, ctx.task)
        p = self.params
        files = {"train": p.train, "validation": p.validation, "test": p.test}
        return load_splits(ctx, files, self._examples)

    def _examples(self, path: Path, key: str) -> list[GenerationExample]:
        p = self.params
        examples: list[GenerationExample] = []
        for line, row in self._rows(path, key):
            if not examples:
                check_columns(path, line, row, (p.source_column, p.target_column))
            source = self._cell(path, line, row, p.source_column, "source")
            target = self._cell(path, line, row, p.target_column, "target")
            examples.append(GenerationExample(prompt=source, response=target))
        return examples

    def _rows(self, path: Path, key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
        fmt = self.params.format
        if fmt == "auto":
            found = EXTENSIONS.get(path.suffix.lower())
            if found is None:
                raise DataError(
                    f"key {key!r}: cannot tell the format of {path.name} from its extension; "
                    "set the dataset's format to csv, tsv or jsonl"
                )
            fmt = found
        text = read_text(path, self.params.encoding)
        if fmt == "jsonl":
            return jsonl_objects(path, text)
        return delimited_rows(path, text, "," if fmt == "csv" else "\t")

    @staticmethod
    def _cell(path: Path, line: int, row: Mapping[str, Any], column: str, what: str) -> str:
        value = text_cell(path, line, row, column, what)
        if not value.strip():
            raise DataError(f"{path}: line {line}: empty {what} in column {column!r}")
        return value
