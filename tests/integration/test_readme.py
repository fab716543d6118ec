"""The README's examples work as written: its tuneboard.toml validates, its plugin runs."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, CliRunner
from tuneboard.config import load_project
from tuneboard.plugins import load_plugins

README = (REPO / "README.md").read_text(encoding="utf-8")


def code_block(language: str, first_line: str) -> str:
    """The README's fenced block in `language` whose first line starts with `first_line`."""
    for block in re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"no {language} block starting with {first_line!r} in the README")


def test_quick_start_is_two_make_commands_that_exist() -> None:
    quick = code_block("sh", "make demo")
    assert [line.split()[1] for line in quick.splitlines()] == ["demo", "test"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_reference_toml_example_validates(sentiment_project: Path) -> None:
    (sentiment_project / "tuneboard.toml").write_text(code_block("toml", "[project]"))
    project = load_project(sentiment_project)
    config = project.experiment("multistep", load_plugins(project.root))
    assert [stage.plugin for stage in config.stages] == [
        "finetune",
        "finetune",
        "evaluate",
        "export",
    ]


@pytest.mark.slow
def test_plugin_example_runs_in_a_project(cli: CliRunner, sentiment_project: Path) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "shout.py").write_text(code_block("python", "# plugins/shout.py"))
    toml = (sentiment_project / "tuneboard.toml").read_text()
    toml = toml.replace(
        '[[experiments.tiny.stages]]\nplugin = "finetune"',
        '[[experiments.tiny.stages]]\nplugin = "shout"\ntimes = 2\n\n[[experiments.tiny.stages]]\nplugin = "finetune"',
        1,
    )
    (sentiment_project / "tuneboard.toml").write_text(toml)
    listed = cli("plugins", "--json", cwd=sentiment_project)
    assert '"shout"' in listed.stdout
    done = cli("run", "tiny", "--quiet", "--set", "stages.1.epochs=1", cwd=sentiment_project)
    assert done.returncode == 0, done.stdout + done.stderr
    con = duckdb.connect(str(sentiment_project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    messages = [m for (m,) in con.execute("SELECT message FROM events").fetchall()]
    con.close()
    assert "added !! to 320 texts" in messages


def test_plugin_command_example_works_in_a_project(cli: CliRunner, sentiment_project: Path) -> None:
    plugins = sentiment_project / "plugins"
    plugins.mkdir()
    (plugins / "notes.py").write_text(code_block("python", "# plugins/notes.py"))
    helped = cli("--help", cwd=sentiment_project)
    assert "note " in helped.stdout and helped.stderr == ""
    done = cli("note", "lr 3e-5 overfits", cwd=sentiment_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "noted in notes.md\n"
    assert (sentiment_project / "notes.md").read_text().endswith(": lr 3e-5 overfits\n")
