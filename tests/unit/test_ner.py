"""Token classification: the CoNLL dataset, entity-level metrics, and training a tiny NER model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FolderDatasetContext, one_torch_thread
from multistep_helpers import PluginContext, toy_ner_state

from tuneboard import TrainParams
from tuneboard.builtin.conll import ConllDataset, ConllParams, read_conll
from tuneboard.builtin.entities import EntityF1, TokenAccuracy, entity_scores, entity_spans
from tuneboard.builtin.evaluate import Evaluate, EvaluateParams
from tuneboard.builtin.finetune import Finetune
from tuneboard.engine.context import metric_higher_is_better
from tuneboard.plugins import load_plugins
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION, TokenExample
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.params import build_params, describe_params


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


# --- the conll dataset ----------------------------------------------------------------------

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O


Peter\tB-PER
Blackburn\tI-PER
-DOCSTART- O
Lisbon B-LOC"""


def load(folder: Path, task: str = TOKEN_CLASSIFICATION, **values: str) -> dict[str, list]:
    params = build_params(ConllParams, values, "test (conll)")
    return dict(ConllDataset(params).load(FolderDatasetContext(folder, task=task)))


def test_conll_reads_sentences_tags_in_the_last_column(tmp_path: Path) -> None:
    (tmp_path / "train.conll").write_text(CONLL, encoding="utf-8")
    (tmp_path / "test.conll").write_text("Oslo B-LOC\n", encoding="utf-8")
    splits = load(tmp_path, train="train.conll", test="test.conll")
    assert splits == {
        "train": [
            TokenExample(
                ("EU", "rejects", "German", "call", "."), ("B-ORG", "O", "B-MISC", "O", "O")
            ),
            TokenExample(("Peter", "Blackburn"), ("B-PER", "I-PER")),
            TokenExample(("Lisbon",), ("B-LOC",)),
        ],
        "test": [TokenExample(("Oslo",), ("B-LOC",))],
    }


def test_conll_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_text("Oslo B-LOC\nis O\nnice\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"bad\.conll: line 3: expected a token and its tag .*'nice'"
    ):
        load(tmp_path, train="bad.conll")
    (tmp_path / "empty.conll").write_text("-DOCSTART- O\n\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.conll: no sentences"):
        load(tmp_path, train="empty.conll")
    (tmp_path / "latin.conll").write_bytes("Oslo O\nK\xf6ln B-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.conll: line 2: not valid utf-8"):
        load(tmp_path, train="latin.conll")
    assert load(tmp_path, train="latin.conll", encoding="latin-1")["train"][0].tokens[1] == "Köln"
    with pytest.raises(DataError, match="key 'validation': file not found"):
        load(tmp_path, train="latin.conll", validation="nope.conll", encoding="latin-1")
    with pytest.raises(DataError, match="supports only token-classification"):
        load(tmp_path, task=SEQUENCE_CLASSIFICATION, train="latin.conll")


def test_conll_without_tags_reads_tokens_only(tmp_path: Path) -> None:
    path = tmp_path / "raw.conll"
    path.write_text("Maria\nvisited Lisbon\n\nOk\n", encoding="utf-8")
    assert read_conll(path, tags=False) == [
        TokenExample(("Maria", "visited")),
        TokenExample(("Ok",)),
    ]


# --- entity metrics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        # BIO / IOB2
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
        # IOB1: I- starts an entity; B- only separates two adjacent entities of one type
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # a type change inside a span ends one entity and starts another
        (["B-PER", "I-LOC", "I-LOC", "I-PER"], [("PER", 0, 0), ("LOC", 1, 2), ("PER", 3, 3)]),
        # IOBES and BILOU
        (["S-PER", "B-LOC", "E-LOC", "U-ORG"], [("PER", 0, 0), ("LOC", 1, 2), ("ORG", 3, 3)]),
        (["B-LOC", "L-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 2, 2)]),
        (["O", "O"], []),
        (["PER", "PER", "O"], [("PER", 0, 1)]),
    ],
)
def test_entity_spans(tags: list[str], spans: list[tuple[str, int, int]]) -> None:
    assert entity_spans(tags) == spans


def test_iob1_and_bio_of_the_same_entities_score_alike() -> None:
    iob1 = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]
    bio = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]]
    assert entity_scores(iob1, bio)["entity_f1"] == 1.0


def test_entity_scores_by_hand() -> None:
    references = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER(0-1), LOC(3)
        ["B-ORG", "O", "B-PER", "O"],  # ORG(0), PER(2)
    ]
    predictions = [
        ["B-PER", "O", "O", "B-LOC"],  # PER(0) wrong end, LOC(3) right
        ["B-ORG", "O", "B-LOC", "B-LOC"],  # ORG(0) right, LOC(2) wrong type, LOC(3) spurious
    ]
    # found 5, gold 4, correct 2 -> P 2/5, R 2/4
    values = EntityF1().compute(predictions, references, [])
    p, r = 2 / 5, 2 / 4
    assert values == pytest.approx(
        {
            "entity_precision": p,
            "entity_recall": r,
            "entity_f1": 2 * p * r / (p + r),
            # LOC: found 3, gold 1, correct 1 -> P 1/3 R 1 ; ORG 1/1 ; PER: found 1, gold 2, 0
            "entity_f1/LOC": 2 * (1 / 3) / (1 / 3 + 1),
            "entity_f1/ORG": 1.0,
            "entity_f1/PER": 0.0,
        }
    )
    assert TokenAccuracy().compute(predictions, references, []) == {"token_accuracy": 5 / 8}


def test_entity_scores_edge_cases() -> None:
    assert entity_scores([["O"]], [["O"]]) == {
        "entity_precision": 0.0,
        "entity_recall": 0.0,
        "entity_f1": 0.0,
    }
    with pytest.raises(ValueError, match="1 predicted sentences for 2 references"):
        entity_scores([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 predicted tags for 1 tokens"):
        entity_scores([["O", "O"]], [["O"]])


def test_plugins_are_registered_for_token_classification() -> None:
    registry = load_plugins(None)
    assert registry.dataset("conll") is ConllDataset
    for name in ("entity_f1", "token_accuracy"):
        assert registry.metric(name).tasks == (TOKEN_CLASSIFICATION,)
    assert metric_higher_is_better("val/entity_f1/PER", registry)
    assert all(spec.help for spec in describe_params(ConllParams))


# --- training -------------------------------------------------------------------------------


def test_finetune_and_evaluate_a_token_classifier(tmp_path: Path) -> None:
    state = toy_ner_state()
    # A word the tokenizer splits into several pieces still gets exactly one predicted tag.
    state.splits["test"][0] = TokenExample(
        ("Zyxwvutsr", "visited", "Oslo", "."), ("B-PER", "O", "B-LOC", "O")
    )
    assert len(state.tokenizer.tokenize("Zyxwvutsr")) > 1
    ctx = PluginContext(tmp_path, metric_names=("entity_f1", "token_accuracy"))
    params = build_params(
        TrainParams,
        {"epochs": 6, "batch_size": 8, "lr": 1e-2, "dropout": 0.0, "warmup_ratio": 0.0},
        "test",
    )
    Finetune(params).run(ctx, state)
    assert ctx.best is not None and ctx.best[2] == "val/entity_f1"
    assert ctx.series("val/entity_f1")[-1][1] >= 0.8
    losses = [v for _, v in ctx.series("train/loss")]
    assert losses[-1] < 0.5 * losses[0]

    Evaluate(EvaluateParams()).run(ctx, state)
    predictions, references = ctx.scored[-1]
    assert references[0] == ["B-PER", "O", "B-LOC", "O"]
    assert [len(p) for p in predictions] == [len(ex.tokens) for ex in state.splits["test"]]
    assert all(isinstance(tag, str) for sentence in predictions for tag in sentence)
    assert {"test/entity_f1", "test/entity_precision", "test/entity_recall"} <= set(state.metrics)
    assert "test/entity_f1/LOC" in state.metrics and state.metrics["test/token_accuracy"] > 0.8
