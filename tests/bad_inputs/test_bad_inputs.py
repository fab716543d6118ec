"""The bad-input corpus: every case is refused by `tuneboard` with exit status 2, one line on
stderr that says what is wrong (and where), no traceback, and no database written.

Each folder next to this file is a case (a project, or a folder lacking one); `cases.toml`
says the arguments, the expected fragment of the message, and what the test adds (files
linters must not see, lines too long to keep in the repository). Every case goes through
the CLI in this process (click's runner, fast); a sample of them also through a real
`tuneboard` subprocess, for what a user sees on their terminal.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import CliRunner as SubprocessRunner
from tuneboard.cli import main
from tuneboard.store import Store

HERE = Path(__file__).resolve().parent
CASES: dict[str, dict[str, Any]] = tomllib.loads((HERE / "cases.toml").read_text("utf-8"))
SUBPROCESS_SAMPLE = [
    "malformed_toml",
    "no_project_file",
    "non_utf8_data",
    "pickle_only_model",
    "export_folder_absolute_override",
]


def prepare(name: str, tmp_path: Path) -> Path:
    """A copy of the case's folder, with the test-made files, at a path of its own."""
    case = CASES[name]
    folder = tmp_path / name
    shutil.copytree(HERE / name, folder)
    generate = case.get("generate")
    if generate:
        target = folder / generate["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if "text" in generate:
            target.write_text(generate["text"], encoding="utf-8")
        else:
            line = generate["append"].replace("{long}", "x" * generate["chars"])
            with target.open("a", encoding="utf-8") as file:
                file.write(line)
    if case.get("existing_db"):
        with Store(folder / ".tuneboard" / "tuneboard.duckdb") as store:
            store.create_run("earlier", "tiny", {}, status="completed")
    return folder


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under the project's .tuneboard folder, with its content's hash."""
    state = folder / ".tuneboard"
    return {
        str(path.relative_to(state)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(state.rglob("*"))
        if path.is_file()
    }


def check(name: str, folder: Path, before: dict[str, str], code: int, stderr: str) -> None:
    case = CASES[name]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert case["expected"] in lines[0], lines[0]
    assert fingerprint(folder) == before  # nothing created, an existing database unchanged
    if not case.get("existing_db"):
        assert not (folder / ".tuneboard").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_in_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = prepare(name, tmp_path)
    before = fingerprint(folder)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(main, CASES[name]["args"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    check(name, folder, before, result.exit_code, result.stderr)


@pytest.mark.parametrize("name", SUBPROCESS_SAMPLE)
def test_bad_input_through_a_real_process(name: str, tmp_path: Path, cli: SubprocessRunner) -> None:
    folder = prepare(name, tmp_path)
    before = fingerprint(folder)
    done = cli(*CASES[name]["args"], cwd=folder)
    check(name, folder, before, done.returncode, done.stderr)


def test_every_case_folder_is_listed() -> None:
    folders = {path.name for path in HERE.iterdir() if path.is_dir() and path.name[0] != "_"}
    folders.discard("__pycache__")
    assert folders == set(CASES)
