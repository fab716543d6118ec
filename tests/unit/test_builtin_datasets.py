"""The csv, tsv and jsonl dataset plugins: reading, column mapping and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FolderDatasetContext

from tuneboard.builtin.datasets import (
    CsvDataset,
    JsonlDataset,
    TableParams,
    TsvDataset,
    register_datasets,
)
from tuneboard.sdk.contracts import TOKEN_CLASSIFICATION, TextExample
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.params import build_params, describe_params


def load(cls: Any, folder: Path, **values: Any) -> dict[str, list[Any]]:
    params = build_params(TableParams, values, "test")
    return cls(params).load(FolderDatasetContext(folder))


def test_csv_with_all_splits(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text('text,label\n"good, really",1\nbad,0\n', encoding="utf-8")
    (tmp_path / "val.csv").write_text("text,label\nfine,1\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("text,label\nawful,0\n", encoding="utf-8")
    splits = load(CsvDataset, tmp_path, train="train.csv", validation="val.csv", test="test.csv")
    assert splits == {
        "train": [TextExample("good, really", "1"), TextExample("bad", "0")],
        "validation": [TextExample("fine", "1")],
        "test": [TextExample("awful", "0")],
    }


def test_tsv_column_mapping_pairs_and_alternative_names(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("y\tsentence\th\na\tone\ttwo\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("y\tcontent\th\nb\tthree\tfour\n", encoding="utf-8")
    splits = load(
        TsvDataset,
        tmp_path,
        train="train.tsv",
        validation="dev.tsv",
        text_column=["sentence", "content"],
        text_pair_column="h",
        label_column="y",
    )
    assert splits["train"] == [TextExample("one", "a", text_pair="two")]
    assert splits["validation"] == [TextExample("three", "b", text_pair="four")]


def test_jsonl_converts_numeric_labels_and_skips_blank_lines(tmp_path: Path) -> None:
    rows = [{"body": "yes", "y": 1}, {"body": "no", "y": 0.5}, {"body": "hm", "y": "x"}]
    text = "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n"
    (tmp_path / "d.jsonl").write_text(text, encoding="utf-8")
    splits = load(JsonlDataset, tmp_path, train="d.jsonl", text_column="body", label_column="y")
    assert [(e.text, e.label) for e in splits["train"]] == [
        ("yes", "1"),
        ("no", "0.5"),
        ("hm", "x"),
    ]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes("\ufefftext,label\nok,1\n".encode())
    assert load(CsvDataset, tmp_path, train="t.csv")["train"] == [TextExample("ok", "1")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "t.csv",
            b"sentence,label\nhi,1\n",
            r"t.csv: line 2: no column text \(columns found: sentence, label\)",
        ),
        ("t.csv", b"text,label\nok,1\n\xff\xfe bad,0\n", r"t.csv: line 3: not valid utf-8"),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1}\n{"text": "b",\n',
            r"t.jsonl: line 2: not valid JSON",
        ),
        (
            "t.jsonl",
            b'{"text": "a", "label": 1}\n[1, 2]\n',
            r"t.jsonl: line 2: expected a JSON object",
        ),
        ("t.jsonl", b'{"text": "a"}\n', r"t.jsonl: line 1: no column label"),
        ("t.jsonl", b'{"text": "a", "label": 1}\n{"label": 1}\n', r"line 2: no value in text"),
        ("t.jsonl", b'{"text": 3, "label": 1}\n', r"line 1: text column 'text' must be text"),
        ("t.csv", b"text,label\nok,\n", r"t.csv: line 2: missing or empty label"),
        ("t.csv", b"text,label\nok,1,extra\n", r"t.csv: line 2: 3 fields but the header has 2"),
        ("t.csv", b"", r"t.csv: empty file"),
        ("t.csv", b"text,label\n", r"t.csv: no examples"),
        ("t.jsonl", b"\n\n", r"t.jsonl: no examples"),
    ],
)
def test_bad_files_give_one_line_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    cls = JsonlDataset if name.endswith(".jsonl") else CsvDataset
    with pytest.raises(DataError, match=message) as info:
        load(cls, tmp_path, train=name)
    assert "\n" not in str(info.value)


def test_line_numbers_count_multiline_csv_records(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('text,label\n"two\nlines",1\nok,\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 4: missing or empty label"):
        load(CsvDataset, tmp_path, train="t.csv")


def test_missing_file_and_wrong_task(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="key 'validation': file not found"):
        (tmp_path / "t.csv").write_text("text,label\nok,1\n", encoding="utf-8")
        load(CsvDataset, tmp_path, train="t.csv", validation="nope.csv")
    params = build_params(TableParams, {"train": "t.csv"}, "test")
    with pytest.raises(DataError, match="supports only sequence-classification"):
        CsvDataset(params).load(FolderDatasetContext(tmp_path, task=TOKEN_CLASSIFICATION))


def test_registration_and_parameter_help() -> None:
    registered: list[type] = []
    register_datasets(registered.append)
    assert [d.name for d in registered][:5] == ["csv", "tsv", "jsonl", "conll", "hf"]
    specs = describe_params(TableParams)
    assert all(spec.help for spec in specs)
    assert [s.name for s in specs if s.required] == ["train"]
