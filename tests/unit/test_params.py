"""Parameters declared once as a dataclass: description, validation and conversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import build_params, describe_params, param

WHERE = "tuneboard.toml: [experiments.x.stages.0] (demo)"


@dataclass(kw_only=True)
class DemoParams:
    lr: float = param(5e-5, "peak learning rate", min=0.0)
    epochs: int = param(3, "passes over the training set", min=1, max=100)
    train: Literal["all", "head"] = param("all", "which parameters train")
    name: str | None = param(None, "an optional name")
    layers: list[str] = param(["query", "value"], "modules to adapt")
    path: str = param(help="a required file")


def test_describe_lists_fields_with_help_types_and_defaults() -> None:
    specs = {spec.name: spec for spec in describe_params(DemoParams)}
    assert list(specs) == ["lr", "epochs", "train", "name", "layers", "path"]
    assert specs["lr"].help == "peak learning rate"
    assert specs["lr"].type_name == "a number"
    assert specs["train"].choices == ("all", "head")
    assert specs["name"].type_name == "a string (or unset)"
    assert specs["layers"].default == ["query", "value"]
    assert specs["path"].required and not specs["lr"].required


def test_build_converts_ints_to_floats_and_fills_defaults() -> None:
    params = build_params(DemoParams, {"lr": 1, "path": "data.tsv"}, WHERE)
    assert params.lr == 1.0 and isinstance(params.lr, float)
    assert params.epochs == 3 and params.layers == ["query", "value"]


def test_list_defaults_are_not_shared() -> None:
    first = build_params(DemoParams, {"path": "a"}, WHERE)
    first.layers.append("key")
    assert build_params(DemoParams, {"path": "b"}, WHERE).layers == ["query", "value"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"path": "a", "lrr": 1e-3},
            "unknown key 'lrr' (did you mean 'lr'?); accepted keys: epochs, layers, lr",
        ),
        ({"path": "a", "epochs": "3"}, "key 'epochs' must be an integer, got '3'"),
        ({"path": "a", "epochs": 2.5}, "key 'epochs' must be an integer, got 2.5"),
        ({"path": "a", "epochs": True}, "key 'epochs' must be an integer, got True"),
        ({"path": "a", "epochs": 0}, "key 'epochs' must be >= 1, got 0"),
        ({"path": "a", "epochs": 101}, "key 'epochs' must be <= 100, got 101"),
        ({"path": "a", "train": "some"}, "key 'train' must be one of 'all', 'head', got 'some'"),
        ({"path": "a", "layers": "query"}, "key 'layers' must be a list of strings, got 'query'"),
        ({}, "missing required key 'path' (a required file)"),
    ],
)
def test_bad_values_name_the_place_and_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_params(DemoParams, values, WHERE)
    assert str(caught.value).startswith(WHERE + ": ")
    assert message in str(caught.value)
