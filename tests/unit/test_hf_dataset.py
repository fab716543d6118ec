"""The `hf` dataset plugin, offline: local files through `datasets.load_dataset`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import FolderDatasetContext

from tuneboard.builtin.hf_dataset import HfDataset, HfParams
from tuneboard.sdk.contracts import TOKEN_CLASSIFICATION, TextExample, TokenExample
from tuneboard.sdk.errors import ConfigError, DataError
from tuneboard.sdk.params import build_params

datasets = pytest.importorskip("datasets")


def load(folder: Path, task: str = "sequence-classification", **values: Any) -> dict[str, Any]:
    values.setdefault("cache_dir", "cache")  # keep the datasets cache inside the test folder
    params = build_params(HfParams, values, "tuneboard.toml: [experiments.x.dataset] (hf)")
    return HfDataset(params).load(FolderDatasetContext(folder, task))


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows))


def test_csv_files_by_split_with_a_builder(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "train.csv", [("good film", "pos"), ("bad film", "neg")])
    write_csv(tmp_path / "data" / "dev.csv", [("fine", "pos")])
    splits = load(
        tmp_path,
        path="csv",
        data_files={"train": "data/train.csv", "dev": "data/dev.csv"},
    )
    assert set(splits) == {"train", "validation"}  # "dev" is taken as validation
    assert splits["train"] == [TextExample("good film", "pos"), TextExample("bad film", "neg")]
    assert splits["validation"] == [TextExample("fine", "pos")]


def test_a_local_folder_with_split_mapping_and_slices(tmp_path: Path) -> None:
    rows = [(f"text {i}", "pos" if i % 2 else "neg") for i in range(10)]
    write_csv(tmp_path / "corpus" / "train.csv", rows)
    write_csv(tmp_path / "corpus" / "test.csv", rows[:4])
    splits = load(
        tmp_path,
        path="corpus",
        splits={"train": "train[:6]", "validation": "train[6:]", "test": "test"},
    )
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [6, 4, 4]
    assert splits["validation"][0] == TextExample("text 6", "neg")


def test_class_labels_become_names_and_pairs_are_read(tmp_path: Path) -> None:
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "contradiction"]),
        }
    )
    table = {"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [1, 0]}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / "train.parquet"))
    test = {"premise": ["e"], "hypothesis": ["f"], "label": [-1]}  # GLUE-style: no label
    datasets.Dataset.from_dict(test, features=features).to_parquet(str(tmp_path / "test.parquet"))
    splits = load(
        tmp_path,
        path="parquet",
        data_files={"train": "train.parquet", "test": "test.parquet"},
        text_column="premise",
        text_pair_column="hypothesis",
    )
    assert splits["train"] == [
        TextExample("a", "contradiction", "c"),
        TextExample("b", "entailment", "d"),
    ]
    assert splits["test"] == [TextExample("e", None, "f")]


def test_token_classification_from_json_lines(tmp_path: Path) -> None:
    rows = [{"tokens": ["Maria", "visited", "Oslo"], "ner_tags": ["B-PER", "O", "B-LOC"]}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load(tmp_path, TOKEN_CLASSIFICATION, path="json", data_files="train.jsonl")
    assert splits["train"] == [TokenExample(("Maria", "visited", "Oslo"), ("B-PER", "O", "B-LOC"))]


def test_errors_name_the_problem(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", [("good", "pos")])
    with pytest.raises(DataError, match=r"no column 'sentence' \(columns: text, label\)"):
        load(tmp_path, path="csv", data_files="train.csv", text_column="sentence")
    with pytest.raises(DataError, match=r"key 'data_files': file not found: nope\.csv"):
        load(tmp_path, path="csv", data_files="nope.csv")
    with pytest.raises(DataError, match=r"has no 'train' split \(it has test\)"):
        load(tmp_path, path="csv", data_files={"test": "train.csv"})
    with pytest.raises(DataError, match="dataset 'hf': cannot load 'csv': "):
        load(tmp_path, path="csv", data_files="train.csv", splits={"train": "nope"})
    with pytest.raises(ConfigError, match="key 'splits': 'dev' is not a split"):
        load(tmp_path, path="csv", splits={"train": "train", "dev": "x"})
    with pytest.raises(ConfigError, match="key 'splits' must say which split is train"):
        load(tmp_path, path="csv", splits={"test": "test"})


def test_without_the_datasets_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(
        DataError, match=r"needs the `datasets` package: pip install 'tuneboard\[hf\]'"
    ):
        load(tmp_path, path="csv", data_files="train.csv")
