"""Property-based tests of the two gates user input goes through.

The config parser: random but well-formed TOML documents, random bytes, and random edits of
the sample project's file only ever raise `ConfigError` / `PluginError`; a syntax error
always says the line and the column.

The SQL guard: random compositions of read and non-read statements are refused exactly when
one of them is not a read, and nothing any accepted or refused query does changes the
database (tests/reliability/test_sql_guard.py goes on with SQL text built from fragments).
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.reliability.conftest import toml_key, toml_value
from tests.reliability.sql_cases import ESCAPES, READS, WRITES, fill, snapshot
from tuneboard.config import load_project
from tuneboard.plugins import load_plugins
from tuneboard.sdk.errors import ConfigError, PluginError, QueryError
from tuneboard.store import Store, check_read_only, run_query

PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SAMPLE_TOML = (SAMPLES / "sentiment" / "tuneboard.toml").read_text(encoding="utf-8")
REGISTRY = load_plugins(None)

# --- the config parser ---------------------------------------------------------------------

KEYS = [
    "name", "database", "runs_dir", "devices", "cpu_slots", "slots_per_device", "model",
    "dataset", "plugin", "train", "stages", "metrics", "seed", "max_length", "task", "lr",
    "epochs", "folder", "source", "config", "tokenizer", "model_type", "x",
]  # fmt: skip
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["tsv", "finetune", "evaluate", "export", "../..", "/etc", "cpu", "auto"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=6))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
tables = st.dictionaries(keys, values, max_size=6)
documents = st.fixed_dictionaries(
    {},
    optional={
        "project": tables,
        "experiments": st.dictionaries(keys, tables | values, max_size=3),
        "extra": values,
    },
)


def render(document: dict[str, Any]) -> str:
    """TOML text of a document: one table per top-level key, everything else inline."""
    lines = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def only_config_errors(folder: Path) -> None:
    """Load the project and validate every experiment; only config errors may come out."""
    try:
        project = load_project(folder)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    for name in project.experiment_names:
        with contextlib.suppress(ConfigError, PluginError):
            project.experiment(name, REGISTRY)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@PROPERTIES
@given(document=documents)
def test_random_documents_raise_only_config_errors(folder: Path, document: dict[str, Any]) -> None:
    (folder / "tuneboard.toml").write_text(render(document), encoding="utf-8")
    only_config_errors(folder)


@PROPERTIES
@given(data=st.binary(max_size=200) | st.binary(max_size=40).map(SAMPLE_TOML.encode().__add__))
def test_random_bytes_raise_only_config_errors(folder: Path, data: bytes) -> None:
    (folder / "tuneboard.toml").write_bytes(data)
    only_config_errors(folder)


@PROPERTIES
@given(
    start=st.integers(0, len(SAMPLE_TOML)),
    cut=st.integers(0, 40),
    insert=st.text(max_size=8) | st.sampled_from(["[", "]", '"', "=", "\n[[", "{", "'''"]),
)
def test_edited_sample_files_raise_only_config_errors_with_positions(
    folder: Path, start: int, cut: int, insert: str
) -> None:
    text = SAMPLE_TOML[:start] + insert + SAMPLE_TOML[start + cut :]
    (folder / "tuneboard.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        tomllib.loads(text)
    except ValueError:
        with pytest.raises(
            ConfigError, match=r"^tuneboard\.toml: (line \d+, column \d+|at the end)"
        ):
            load_project(folder)
        return
    only_config_errors(folder)


# --- the SQL guard ---------------------------------------------------------------------------

statements = st.one_of(
    st.sampled_from(READS).map(lambda sql: (sql, True)),
    st.sampled_from(WRITES).map(lambda sql: (sql, False)),
    st.sampled_from(ESCAPES).map(lambda sql: (sql, True)),  # reads in form: the guard allows
)
decorations = st.sampled_from(["", " ", "\n", "  -- note\n", "/* c */ "])


@st.composite
def compositions(draw: st.DrawFn) -> tuple[str, bool]:
    """A multi-statement string and whether every statement in it is a read."""
    parts = draw(st.lists(statements, min_size=1, max_size=4))
    text = ""
    for sql, _ in parts:
        case = draw(st.sampled_from([str, str.lower, str.upper]))
        # Upper-casing would change string literals (file names); keep those as they are.
        body = sql if "'" in sql or '"' in sql else case(sql)
        text += draw(decorations) + body + draw(decorations) + ";"
    if draw(st.booleans()):
        text = text.rstrip(";")
    return text, all(is_read for _, is_read in parts)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(tmp_path_factory.mktemp("sql") / "tuneboard.duckdb", flush_interval=0.05)
    fill(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def before(store: Store) -> dict[str, Any]:
    return snapshot(store)


@settings(PROPERTIES, max_examples=60)
@given(case=compositions())
def test_random_compositions(store: Store, before: dict[str, Any], case: tuple[str, bool]) -> None:
    sql, all_reads = case
    refused_by_guard = False
    try:
        check_read_only(sql)
    except QueryError as error:
        refused_by_guard = True
        assert re.match(r"only read statements are allowed; statement \d+ is ", str(error))
    assert refused_by_guard == (not all_reads), sql
    with contextlib.suppress(QueryError):
        run_query(store, sql, limit=5)
    assert snapshot(store) == before, sql
