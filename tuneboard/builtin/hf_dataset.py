"""The `hf` dataset plugin: anything `datasets.load_dataset` loads, for either task.

A name on the Hugging Face Hub (for users with a network), a builder such as ``csv``,
``json`` or ``parquet`` with `data_files`, or a local folder of data files. `datasets` is an
optional dependency (``pip install 'tuneboard[hf]'``), imported only when the data is loaded.
Class-label columns become their label names; a missing label (none, or -1 as in GLUE's test
splits) is allowed outside the training split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneboard import (
    SPLITS,
    TOKEN_CLASSIFICATION,
    DataError,
    Dataset,
    DatasetContext,
    Example,
    Splits,
    TextExample,
    TokenExample,
    param,
)
from tuneboard.sdk.files import private_folder, project_path, readable_file, readable_path

DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}
_REMOTE = ("://", "*", "?", "[")


@dataclass
class HfParams:
    """Parameters of the `hf` dataset."""

    path: str = param(
        help='What to load: a dataset on the Hugging Face Hub (e.g. "imdb"), a builder (csv, '
        "json, parquet, text) with data_files, or a local folder (relative to the project)"
    )
    name: str | None = param(None, 'The dataset\'s configuration (e.g. "sst2" of "glue")')
    data_files: str | list[str] | dict[str, Any] | None = param(
        None,
        "Data files, relative to the project folder: one, a list, or a table of split name -> "
        "file(s)",
    )
    splits: dict[str, str] = param(
        {},
        "The dataset's split for each of train, validation, test, slices allowed, e.g. "
        '{ validation = "dev", test = "test[:500]" } (default: train, validation (or valid, '
        "dev), test, where present)",
    )
    text_column: str = param("text", "Column holding the text (sequence classification)")
    text_pair_column: str | None = param(None, "Column holding a second text, for pair tasks")
    label_column: str = param("label", "Column holding the label (class labels become names)")
    tokens_column: str = param("tokens", "Column of words (token classification)")
    tags_column: str = param("ner_tags", "Column of tags, one per word (token classification)")
    revision: str | None = param(None, "Version of a Hub dataset (a branch, tag or commit)")
    cache_dir: str | None = param(
        None, "Cache folder, relative to the project (default: the datasets library's own)"
    )

    def __post_init__(self) -> None:
        for ours, theirs in self.splits.items():
            if ours not in SPLITS:
                raise ValueError(f"key 'splits': {ours!r} is not a split; use {', '.join(SPLITS)}")
            if not isinstance(theirs, str) or not theirs.strip():
                raise ValueError(f"key 'splits': {ours} must name a split, got {theirs!r}")
        if self.splits and "train" not in self.splits:
            raise ValueError("key 'splits' must say which split is train")


class HfDataset(Dataset[HfParams]):
    """Load splits with `datasets.load_dataset` (optional dependency `datasets`)."""

    name = "hf"
    Params = HfParams
    description = "Anything datasets.load_dataset loads: a Hub name, a builder, a local folder"

    def load(self, ctx: DatasetContext) -> Splits:
        """Load the splits and turn their rows into examples."""
        datasets = _import_datasets()
        p = self.params
        kwargs: dict[str, Any] = {"name": p.name, "revision": p.revision}
        if p.data_files is not None:
            kwargs["data_files"] = _resolve_files(p.data_files, ctx.project_dir)
        if p.cache_dir is not None:
            where = "dataset 'hf': key 'cache_dir'"
            cache = project_path(ctx.project_dir, p.cache_dir, "dataset 'hf'", "cache_dir")
            kwargs["cache_dir"] = str(private_folder(cache, ctx.project_dir, where))
        source = _source(p.path, ctx.project_dir)
        try:
            if p.splits:
                loaded = {
                    ours: datasets.load_dataset(source, split=theirs, **kwargs)
                    for ours, theirs in p.splits.items()
                }
            else:
                loaded = _default_splits(datasets.load_dataset(source, **kwargs), p.path)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"dataset 'hf': cannot load {p.path!r}: {_one_line(exc)}") from None
        return {
            split: _examples(table, split, p, ctx.task, p.path) for split, table in loaded.items()
        }


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "dataset 'hf' needs the `datasets` package: pip install 'tuneboard[hf]'"
        ) from None
    datasets.disable_progress_bars()
    return datasets


def _source(path: str, project_dir: Path) -> str:
    """A local folder or file (relative to the project) as an absolute path, else `path`."""
    local = project_dir / Path(path).expanduser()
    if path.strip() and local.exists():
        return str(readable_path(project_dir, path, "dataset 'hf'", "path"))
    return path


def _resolve_files(files: str | list[str] | dict[str, Any], project_dir: Path) -> Any:
    if isinstance(files, dict):
        return {split: _resolve_files(value, project_dir) for split, value in files.items()}
    if isinstance(files, list):
        return [_resolve_files(value, project_dir) for value in files]
    if not isinstance(files, str) or any(mark in files for mark in _REMOTE):
        return files  # a URL or a glob pattern: for the datasets library to expand
    return str(readable_file(project_dir, files, "dataset 'hf'", "data_files"))


def _default_splits(loaded: Any, path: str) -> dict[str, Any]:
    available = list(loaded)
    chosen: dict[str, Any] = {}
    for ours, names in DEFAULT_SPLITS.items():
        found = next((name for name in names if name in loaded), None)
        if found is not None:
            chosen[ours] = loaded[found]
    if "train" not in chosen:
        raise DataError(
            f"dataset 'hf': {path!r} has no 'train' split (it has {', '.join(available)}); "
            'say which to use, e.g. splits = { train = "' + (available or ["..."])[0] + '" }'
        )
    return chosen


def _examples(table: Any, split: str, p: HfParams, task: str, path: str) -> list[Example]:
    where = f"dataset 'hf' ({path}, {split} split)"
    token_level = task == TOKEN_CLASSIFICATION
    needed = [p.tokens_column, p.tags_column] if token_level else [p.text_column, p.label_column]
    if p.text_pair_column and not token_level:
        needed.append(p.text_pair_column)
    columns = list(table.column_names)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{where}: no column {', '.join(map(repr, missing))} (columns: {', '.join(columns)})"
        )
    if len(table) == 0:
        raise DataError(f"{where}: no examples")
    label_column = p.tags_column if token_level else p.label_column
    names = _class_names(table.features[label_column])
    labels = list(table[label_column])
    if token_level:
        tokens = list(table[p.tokens_column])
        return [
            TokenExample(tuple(map(str, words)), _tags(tags, names, where, row, split))
            for row, (words, tags) in enumerate(zip(tokens, labels, strict=True))
        ]
    texts = list(table[p.text_column])
    pairs = list(table[p.text_pair_column]) if p.text_pair_column else [None] * len(texts)
    out: list[Example] = []
    for row, (text, pair, label) in enumerate(zip(texts, pairs, labels, strict=True)):
        if not isinstance(text, str):
            raise DataError(f"{where}: row {row}: text must be a string, got {text!r}")
        name = _label_name(label, names)
        if name is None and split == "train":
            raise DataError(f"{where}: row {row}: missing label in column {label_column!r}")
        out.append(TextExample(text, name, None if pair is None else str(pair)))
    return out


def _class_names(feature: Any) -> Sequence[str] | None:
    """The label names of a class-label column (or of a list of class labels)."""
    for candidate in (feature, getattr(feature, "feature", None)):
        names = getattr(candidate, "names", None)
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def _label_name(value: Any, names: Sequence[str] | None) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if names is not None and isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else None
    return str(value).strip()


def _tags(
    values: Any, names: Sequence[str] | None, where: str, row: int, split: str
) -> tuple[str, ...] | None:
    tags = [_label_name(value, names) for value in values]
    if any(tag is None for tag in tags):
        if split == "train":
            raise DataError(f"{where}: row {row}: a word has no tag")
        return None
    return tuple(str(tag) for tag in tags)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
