"""The chat, pairs and corpus dataset plugins for generation tasks: every layout read from
real files, one-line errors naming file, line and key, and the resume round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FolderDatasetContext

from tuneboard.builtin.datasets import register_datasets
from tuneboard.builtin.gendata import ChatDataset, CorpusDataset, PairsDataset
from tuneboard.engine.resume import read_splits, write_splits
from tuneboard.sdk.contracts import (
    CAUSAL_LM,
    SEQ2SEQ,
    SEQUENCE_CLASSIFICATION,
    ChatTurn,
    GenerationExample,
    TextExample,
)
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.params import build_params, describe_params


def load(cls: Any, folder: Path, task: str = CAUSAL_LM, **values: Any) -> dict[str, list[Any]]:
    params = build_params(cls.Params, values, "test")
    return cls(params).load(FolderDatasetContext(folder, task=task))


def jsonl(path: Path, *records: Any) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path.name


CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
]
TURNS = (ChatTurn("system", "Be brief."), ChatTurn("user", "Hi"), ChatTurn("assistant", "Hello."))


def test_chat_reads_each_layout_telling_them_apart_per_file(tmp_path: Path) -> None:
    files = {
        "train": jsonl(tmp_path / "pr.jsonl", {"prompt": "2+2?", "response": "4"}),
        "validation": jsonl(
            tmp_path / "alpaca.jsonl",
            {"instruction": "Translate", "input": "chat", "output": "cat"},
            {"instruction": "Say hi", "input": "", "output": "hi"},
            {"instruction": "Say yo", "output": "yo"},
        ),
        "test": jsonl(tmp_path / "messages.jsonl", {"messages": CHAT}),
    }
    assert load(ChatDataset, tmp_path, **files) == {
        "train": [GenerationExample("2+2?", "4")],
        "validation": [
            GenerationExample("Translate\n\nchat", "cat"),
            GenerationExample("Say hi", "hi"),
            GenerationExample("Say yo", "yo"),
        ],
        "test": [GenerationExample(messages=TURNS)],
    }
    sharegpt = [
        {"from": f, "value": t["content"]}
        for f, t in zip(["system", "human", "gpt"], CHAT, strict=True)
    ]
    name = jsonl(tmp_path / "sharegpt.jsonl", {"conversations": sharegpt})
    for fmt in ("auto", "sharegpt"):
        splits = load(ChatDataset, tmp_path, task=SEQ2SEQ, train=name, format=fmt)
        assert splits == {"train": [GenerationExample(messages=TURNS)]}


def test_chat_keys_and_roles_are_mapped(tmp_path: Path) -> None:
    jsonl(tmp_path / "q.jsonl", {"q": "a?", "a": "b"})
    splits = load(ChatDataset, tmp_path, train="q.jsonl", prompt_key="q", response_key="a")
    assert splits["train"] == [GenerationExample("a?", "b")]
    turns = [{"who": "customer", "text": "hi"}, {"who": "agent", "text": "yo"}]
    jsonl(tmp_path / "m.jsonl", {"turns": turns})
    splits = load(
        ChatDataset,
        tmp_path,
        train="m.jsonl",
        messages_key="turns",
        role_key="who",
        content_key="text",
        roles={"customer": "user", "agent": "assistant"},
    )
    assert splits["train"] == [
        GenerationExample(messages=(ChatTurn("user", "hi"), ChatTurn("assistant", "yo")))
    ]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [{"prompt": "a", "response": "b"}, {"prompt": "c", "answer": "d"}],
            r"t.jsonl: line 2: key 'response': missing \(keys found: prompt, answer\)$",
        ),
        ([{"prompt": "a", "response": 3}], r"line 1: key 'response': must be text, got 3"),
        ([{"prompt": "a", "response": " "}], r"line 1: key 'response': empty"),
        ([{"prompt": None, "response": "b"}], r"line 1: key 'prompt': no value \(null\)"),
        ([{"text": "a"}], r"line 1: cannot tell the format: no key 'prompt', 'messages'"),
        ([{"instruction": "", "output": "x"}], r"line 1: key 'instruction': empty"),
        ([{"instruction": "a", "input": 1, "output": "x"}], r"key 'input': must be text"),
        ([{"messages": []}], r"line 1: key 'messages': must be a non-empty list of turns"),
        ([{"messages": ["hi"]}], r"key 'messages': turn 1 must be an object, got 'hi'"),
        (
            [{"messages": [{"role": "bot", "content": "x"}]}],
            r"key 'messages': turn 1: role 'bot' is not system, user or assistant",
        ),
        (
            [{"messages": [{"role": "user", "content": None}]}],
            r"key 'messages': turn 1: 'content' must be text, got None",
        ),
        (
            [
                {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "assistant", "content": ""},
                    ]
                }
            ],
            r"line 1: key 'messages': no assistant turn with content",
        ),
        (
            [{"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]}],
            r"key 'conversations': turn 2: role 'bot' is not system, user or assistant",
        ),
    ],
)
def test_chat_bad_records_are_named_by_file_line_and_key(
    tmp_path: Path, records: list[Any], message: str
) -> None:
    jsonl(tmp_path / "t.jsonl", *records)
    with pytest.raises(DataError, match=message) as info:
        load(ChatDataset, tmp_path, train="t.jsonl")
    assert "\n" not in str(info.value)
    assert str(tmp_path / "t.jsonl") in str(info.value)


def test_chat_shares_the_jsonl_and_encoding_errors(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_bytes(b'{"prompt": "a", "response": "b"}\n\n{"prompt": \n')
    with pytest.raises(DataError, match=r"t.jsonl: line 3: not valid JSON"):
        load(ChatDataset, tmp_path, train="t.jsonl")
    (tmp_path / "t.jsonl").write_bytes(b'{"prompt": "a", "response": "b"}\n{"prompt": "\xff"}\n')
    with pytest.raises(DataError, match=r"t.jsonl: line 2: not valid utf-8"):
        load(ChatDataset, tmp_path, train="t.jsonl")


def test_empty_splits_wrong_task_and_bad_roles_are_refused(tmp_path: Path) -> None:
    good = jsonl(tmp_path / "good.jsonl", {"prompt": "a", "response": "b"})
    (tmp_path / "empty.jsonl").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty.jsonl: no examples \(split 'validation' is empty"):
        load(ChatDataset, tmp_path, train=good, validation="empty.jsonl")
    with pytest.raises(DataError, match="dataset 'chat' is for generation tasks"):
        load(ChatDataset, tmp_path, task=SEQUENCE_CLASSIFICATION, train=good)
    with pytest.raises(DataError, match=r"key 'roles': 'bot' maps to 'robot'"):
        load(ChatDataset, tmp_path, train=good, roles={"bot": "robot"})
    (tmp_path / "blank.txt").write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"blank.txt: no examples \(split 'train' is empty"):
        load(CorpusDataset, tmp_path, train="blank.txt")


def test_pairs_read_csv_tsv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(
        'source,target\n"Hello, world",Bonjour le monde\ncat,chat\n', encoding="utf-8"
    )
    (tmp_path / "dev.tsv").write_text("target\tsource\nchien\tdog\n", encoding="utf-8")
    jsonl(tmp_path / "test.jsonl", {"source": "bird", "target": "oiseau", "id": 3})
    splits = load(
        PairsDataset, tmp_path, SEQ2SEQ, train="train.csv", validation="dev.tsv", test="test.jsonl"
    )
    assert splits == {
        "train": [
            GenerationExample("Hello, world", "Bonjour le monde"),
            GenerationExample("cat", "chat"),
        ],
        "validation": [GenerationExample("dog", "chien")],
        "test": [GenerationExample("bird", "oiseau")],
    }
    (tmp_path / "news.txt").write_text("article\tsummary\nlong text\tshort\n", encoding="utf-8")
    splits = load(
        PairsDataset,
        tmp_path,
        train="news.txt",
        format="tsv",
        source_column="article",
        target_column="summary",
    )
    assert splits == {"train": [GenerationExample("long text", "short")]}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.csv", "src,target\na,b\n", r"t.csv: line 2: no column source \(columns found: src"),
        ("t.csv", "source,target\na,b\nc,\n", r"t.csv: line 3: empty target in column 'target'"),
        ("t.csv", "source,target\na,b\nc\n", r"t.csv: line 3: no value in target column"),
        ("t.jsonl", '{"source": "a", "target": 2}\n', r"line 1: target column 'target' must be"),
        ("t.txt", "source,target\na,b\n", r"key 'train': cannot tell the format of t.txt"),
        ("t.csv", "source,target\n", r"t.csv: no examples \(split 'train' is empty\)"),
    ],
)
def test_pairs_bad_records_are_named_by_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        load(PairsDataset, tmp_path, SEQ2SEQ, train=name)
    assert "\n" not in str(info.value)


def test_corpus_splits_documents_three_ways(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(
        "\n\nFirst doc,\nline two.\n\n \n\nSecond doc.\r\n\r\n", encoding="utf-8"
    )
    (tmp_path / "b.txt").write_text("Third doc.\n", encoding="utf-8")

    def documents(split_on: str) -> list[str | None]:
        splits = load(CorpusDataset, tmp_path, train=["a.txt", "b.txt"], split_on=split_on)
        assert set(splits) == {"train"}
        assert all(e.prompt == "" for e in splits["train"])
        return [e.response for e in splits["train"]]

    assert documents("blank_line") == ["First doc,\nline two.", "Second doc.", "Third doc."]
    assert documents("line") == ["First doc,", "line two.", "Second doc.", "Third doc."]
    assert documents("file") == ["First doc,\nline two.\n\n \n\nSecond doc.", "Third doc."]
    splits = load(CorpusDataset, tmp_path, train="a.txt", validation="b.txt")
    assert splits["validation"] == [GenerationExample("", "Third doc.")]


def test_resume_round_trips_generation_examples(tmp_path: Path) -> None:
    jsonl(tmp_path / "c.jsonl", {"messages": CHAT}, {"messages": CHAT[1:]})
    jsonl(tmp_path / "p.jsonl", {"prompt": "p", "response": "r"})
    splits: Any = load(ChatDataset, tmp_path, train="c.jsonl", validation="p.jsonl")
    splits["validation"] += [GenerationExample("", "doc", weight=0.5), GenerationExample("q")]
    splits["test"] = [TextExample("t", "pos")]
    write_splits(tmp_path / "splits.jsonl", splits)
    back = read_splits(tmp_path / "splits.jsonl")
    assert back == splits
    assert isinstance(back["train"][0].messages, tuple)
    assert hash(back["train"][0]) == hash(splits["train"][0])


def test_registered_with_parameter_help() -> None:
    registered: list[Any] = []
    register_datasets(registered.append)
    assert {ChatDataset, PairsDataset, CorpusDataset} <= set(registered)
    for cls in (ChatDataset, PairsDataset, CorpusDataset):
        specs = describe_params(cls.Params)
        assert all(spec.help for spec in specs)
        assert [s.name for s in specs if s.required] == ["train"]


DOC_EXAMPLES = {
    # first line of the block in docs/configuration.md: what its files hold
    "# Instruction tuning": {
        "data/train.jsonl": json.dumps({"instruction": "Add", "input": "2, 2", "output": "4"}),
        "data/validation.jsonl": json.dumps({"messages": CHAT}),
    },
    "# Translation pairs": {
        "data/train.tsv": "en\tfr\ncat\tchat\n",
        "data/test.tsv": "en\tfr\ndog\tchien\n",
    },
    "# Continued pretraining": {
        "corpus/manuals.txt": "Step one.\n\nStep two.\n",
        "corpus/tickets.txt": "Printer down.\n",
        "corpus/held_out.txt": "Reset it.\n",
    },
}


@pytest.mark.parametrize("first_line", DOC_EXAMPLES)
def test_the_documented_examples_validate_and_load(tmp_path: Path, first_line: str) -> None:
    import tomllib

    from tests.integration.test_readme import code_block

    block = tomllib.loads(code_block("toml", first_line, "docs/configuration.md"))
    (table,) = (experiment["dataset"] for experiment in block["experiments"].values())
    cls = {c.name: c for c in (ChatDataset, PairsDataset, CorpusDataset)}[table.pop("plugin")]
    for name, content in DOC_EXAMPLES[first_line].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content + "\n", encoding="utf-8")
    splits = load(cls, tmp_path, **table)
    assert set(splits) == {"train", *(k for k in ("validation", "test") if k in table)}
    assert all(isinstance(e, GenerationExample) for rows in splits.values() for e in rows)
