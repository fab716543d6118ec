"""Everything that can be checked without training is checked before a run is written.

A model config transformers refuses, `top_k` above the model's layers, a device torch does not
see, a tokenizer that is nowhere on this machine, a non-finite or absurd number: `tuneboard
run` (and a sweep, and the app's launch) refuses each with exit 2 and one line naming the key,
and writes no run row and no run folder. A property test mutates the sample project's file:
loading it either succeeds with every number finite and in range, or raises `ConfigError`
naming the file.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.reliability.conftest import ProjectFactory, experiment, query, toml_key, toml_value
from tuneboard.cli import main
from tuneboard.config import load_project
from tuneboard.plugins import load_plugins
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import INT_LIMIT, describe_params
from tuneboard.store import Store

STAGE = {"plugin": "finetune", "epochs": 1, "max_steps": 1, "batch_size": 8}
TOP_K = {**STAGE, "train": "top_k"}
SWEEP = '\n[experiments.base.sweep]\nparameters = { "stages.0.top_k" = [1, 5] }\n'
Edit = Callable[[str], str]


def _devices(devices: str) -> Edit:
    return lambda text: text.replace('devices = ["cpu"]', f"devices = {devices}", 1)


# case -> (stage table, --set overrides, an edit of the file, a fragment of the message)
CASES: dict[str, tuple[dict[str, Any], list[str], Edit | None, str]] = {
    "hidden size not a multiple of the heads": (
        STAGE,
        ["model.config.hidden_size=33"],
        None,
        "[experiments.base.model]: key 'config'",
    ),
    "unknown model_type": (
        STAGE,
        ['model.config.model_type="no-such-type"'],
        None,
        "[experiments.base.model]: key 'config'",
    ),
    "negative size": (
        STAGE,
        ["model.config.hidden_size=-4"],
        None,
        "key 'config': hidden_size must be at least 1",
    ),
    "top_k above the layers": (
        TOP_K,
        ["stages.0.top_k=5"],
        None,
        "[experiments.base.stages.0] (finetune): key 'top_k' must be at most the model's 2",
    ),
    "top_k above the layers in a sweep point": (
        TOP_K,
        [],
        lambda text: text + SWEEP,
        "key 'top_k' must be at most the model's 2 layers, got 5",
    ),
    "a tokenizer folder that does not exist": (
        STAGE,
        ['model.tokenizer="./no-such-folder"'],
        None,
        "[experiments.base.model]: key 'tokenizer'",
    ),
    "a Hugging Face id that is not cached, offline": (
        STAGE,
        ['model.tokenizer="nobody-here/no-such-tokenizer"'],
        None,
        "key 'tokenizer': 'nobody-here/no-such-tokenizer' is not a local folder",
    ),
    "a device torch does not see": (STAGE, [], _devices('["cuda:99"]'), "key 'devices'"),
    "lr = inf in the file": (
        {**STAGE, "lr": math.inf},
        [],
        None,
        "[experiments.base]: key 'stages.0.lr': inf is not a valid value",
    ),
    "lr = inf from --set": (STAGE, ["stages.0.lr=inf"], None, "key 'lr' must be a finite"),
    "epochs near 2**63": (
        STAGE,
        ["stages.0.epochs=9223372036854775000"],
        None,
        "key 'epochs' must be <= ",
    ),
    "inf inside the model config": (
        STAGE,
        ["model.config.layer_norm_eps=inf"],
        None,
        "key 'model.config.layer_norm_eps'",
    ),
    "a project count past any sane value": (
        STAGE,
        [],
        lambda text: text.replace("cpu_slots = 1", "cpu_slots = 9223372036854775807", 1),
        "[project]: key 'cpu_slots' must be <= ",
    ),
}


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hugging Face Hub off limits, as on a machine without network."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def runs_written(root: Path) -> tuple[int, bool]:
    """The rows of the runs table and whether the runs folder exists."""
    [(count,)] = query(root, "SELECT count(*) FROM runs")
    return count, (root / ".tuneboard" / "runs").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_refused_before_a_run_is_written(
    case: str,
    make_project: ProjectFactory,
    monkeypatch: pytest.MonkeyPatch,
    offline_hub: None,
) -> None:
    stage, overrides, edit, expected = CASES[case]
    root = make_project(experiment("base", stage))
    if edit is not None:
        text = (root / "tuneboard.toml").read_text(encoding="utf-8")
        (root / "tuneboard.toml").write_text(edit(text), encoding="utf-8")
    with Store(root / ".tuneboard" / "tuneboard.duckdb") as store:
        store.create_run("earlier", "base", {}, status="completed")
    monkeypatch.chdir(root)
    sets = [arg for override in overrides for arg in ("--set", override)]
    result = CliRunner().invoke(main, ["run", "base", "-q", *sets])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert lines[0].startswith(("error: tuneboard.toml: ", "error: --set ")), lines[0]
    assert len(lines[0]) < 500, lines[0]  # another library's message is cut
    assert runs_written(root) == (1, False)


def test_the_apps_launch_refuses_before_writing(make_project: ProjectFactory) -> None:
    from tuneboard.engine.engine import Engine
    from tuneboard.tui.launching import launch_all

    root = make_project(experiment("base", {**TOP_K, "top_k": 3}))
    project = load_project(root)
    registry = load_plugins(root)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    try:
        config = project.experiment("base", registry)
        with pytest.raises(ConfigError, match="key 'top_k' must be at most the model's 2 layers"):
            launch_all(engine, [config])
    finally:
        engine.shutdown()
        store.close()
    assert runs_written(root) == (0, False)


# --- mutations of the sample project's file ------------------------------------------------

SAMPLE = tomllib.loads((SAMPLES / "sentiment" / "tuneboard.toml").read_text(encoding="utf-8"))
REGISTRY = load_plugins(None)
# Numbers past any sane setting, of each type (an int where a float goes is taken as a float).
WILD_INTS = [2**31, 2**62, 2**63 - 1, -(2**63), 0, -1]
WILD_FLOATS = [math.inf, 1e308, -math.inf, math.nan, 1e-320, -1e308]
STAGE_NUMBERS = {"epochs": WILD_INTS, "max_steps": WILD_INTS, "batch_size": WILD_INTS,
                 "patience": WILD_INTS, "top_k": WILD_INTS, "grad_accum": WILD_INTS,
                 "lr": WILD_FLOATS, "warmup_ratio": WILD_FLOATS, "weight_decay": WILD_FLOATS}  # fmt: skip
garbage = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
plain = st.one_of(
    garbage,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(st.sampled_from(["plugin", "x"]), garbage, max_size=2),
)

Path_ = tuple[str | int, ...]


def paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key and list item below `node`, as a path of keys and indexes."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from paths(value, (*prefix, key))


def tables(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every table below `node` (itself included)."""
    if isinstance(node, dict):
        yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, dict | list):
            yield from tables(value, (*prefix, key))


def at(node: Any, path: Path_) -> Any:
    for key in path:
        node = node[key]
    return node


def numeric(document: dict[str, Any]) -> list[Path_]:
    """The paths of the document's numbers."""
    return [
        path
        for path in paths(document)
        if isinstance(at(document, path), int | float) and not isinstance(at(document, path), bool)
    ]


def stage_tables(document: dict[str, Any]) -> list[Path_]:
    """The paths of the document's stage tables."""
    return [path for path in tables(document) if len(path) == 4 and path[2] == "stages"]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """The sample's document with one to three random deletions, type swaps, wild numbers
    (on its own numbers, or on numeric keys it adds to a stage) and garbage strings."""
    document = copy.deepcopy(SAMPLE)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["number", "number", "add", "add", "delete", "swap", "garbage"])
        )
        candidates = {"number": numeric(document), "add": stage_tables(document)}.get(kind)
        every = candidates if candidates is not None else list(paths(document))
        if not every:
            continue
        path = draw(st.sampled_from(every))
        if kind == "add":
            key = draw(st.sampled_from(sorted(STAGE_NUMBERS)))
            at(document, path)[key] = draw(st.sampled_from(STAGE_NUMBERS[key]))
            continue
        parent, key = at(document, path[:-1]), path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "number":
            wild = WILD_INTS if isinstance(parent[key], int) else WILD_FLOATS
            parent[key] = draw(st.sampled_from(wild))
        elif kind == "garbage":
            parent[key] = draw(garbage)
        else:
            parent[key] = draw(plain)
    return document


def render(document: dict[str, Any]) -> str:
    """The document as TOML: one line per top-level key, everything inline."""
    return "".join(f"{toml_key(key)} = {toml_value(value)}\n" for key, value in document.items())


def assert_sane(params: Any, where: str) -> None:
    """Every number of a validated `Params` is finite and within its declared bounds."""
    if params is None:
        return
    for spec in describe_params(type(params)):
        value = getattr(params, spec.name)
        numbers = value if isinstance(value, list | tuple) else [value]
        for number in numbers:
            if not isinstance(number, int | float) or isinstance(number, bool):
                continue
            assert math.isfinite(number), (where, spec.name, number)
            low = spec.min if spec.min is not None else -INT_LIMIT
            high = spec.max if spec.max is not None else INT_LIMIT
            assert low <= number <= high, (where, spec.name, number)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutations")


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(document=mutated())
def test_mutated_sample_files_load_sane_or_fail_naming_the_file(
    folder: Path, document: dict[str, Any]
) -> None:
    (folder / "tuneboard.toml").write_text(render(document), encoding="utf-8")
    try:
        project = load_project(folder)
        assert 1 <= project.cpu_slots <= INT_LIMIT and 1 <= project.slots_per_device <= INT_LIMIT
        for name in project.experiment_names:
            config = project.experiment(name, REGISTRY)
            assert_sane(config.dataset.params, name)
            assert_sane(config.task_params, name)
            for stage in config.stages:
                assert_sane(stage.params, f"{name}.{stage.name}")
    except ConfigError as error:
        message = str(error)
        assert message.startswith("tuneboard.toml"), message
        assert "\n" not in message
