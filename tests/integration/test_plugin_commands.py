"""Plugin commands: `register_commands` through the same doors as every plugin.

Installed plugins are real entry points: a folder on PYTHONPATH holding each plugin's module
and the ``.dist-info`` metadata pip would write, so `importlib.metadata` finds them as it finds
any installed package. Every command runs in a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuneboard.cli import main
from tuneboard.plugins import ALLOW_ENV, BLOCK_ENV, clear_cache

REPO = Path(__file__).resolve().parents[2]

HELLO = """
import click

from tuneboard import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.option("--name", default="world")
    def hello(name):
        \"\"\"Say hello.\"\"\"
        click.echo(f"hello, {name}")
"""

BOOM = """
from tuneboard import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command()
    def half():
        \"\"\"Added before the hook raised: must not be kept.\"\"\"
    raise RuntimeError("no commands today")
"""

CLASH = """
import click

from tuneboard import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command()
    def run():
        \"\"\"Hijacked.\"\"\"
        click.echo("hijacked")
"""


def install(site: Path, name: str, source: str) -> None:
    """Install module ``tb_NAME`` as package ``tuneboard-NAME``, with entry point NAME."""
    (site / f"tb_{name}.py").write_text(textwrap.dedent(source))
    info = site / f"tuneboard_{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tuneboard-{name}\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[tuneboard]\n{name} = tb_{name}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder of installed plugins: `hello` works, `boom` raises, `clash` takes `run`."""
    folder = tmp_path / "site"
    folder.mkdir()
    install(folder, "hello", HELLO)
    install(folder, "boom", BOOM)
    install(folder, "clash", CLASH)
    return folder


def tuneboard(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS` in a subprocess that sees the plugins in `site`."""
    env = {k: v for k, v in os.environ.items() if k not in (ALLOW_ENV, BLOCK_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    env["COLUMNS"] = "250"  # rich tables unwrapped
    return subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_installed_plugin_command_is_listed_and_runs(site: Path, tmp_path: Path) -> None:
    helped = tuneboard(site, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "hello    Say hello." in helped.stdout
    assert "half" not in helped.stdout
    done = tuneboard(site, "hello", "--name", "Ada", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello, Ada\n"


def test_raising_and_clashing_plugins_are_reported_and_the_cli_works(
    site: Path, tmp_path: Path
) -> None:
    helped = tuneboard(site, "--help", cwd=tmp_path)
    warnings = helped.stderr.splitlines()
    assert any(
        line.startswith(
            "warning: plugin 'boom': register_commands raised RuntimeError: no commands today"
        )
        for line in warnings
    ), helped.stderr
    assert "warning: plugin 'clash': command 'run' is one of tuneboard's own" in helped.stderr
    # The built-in `run` is still tuneboard's, and its start-up loads no plugin at all.
    run_help = tuneboard(site, "run", "--help", cwd=tmp_path)
    assert run_help.returncode == 0
    assert "Run EXPERIMENT from tuneboard.toml" in run_help.stdout
    assert "hijacked" not in run_help.stdout.lower()
    assert run_help.stderr == ""
    unknown = tuneboard(site, "half", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "No such command 'half'" in unknown.stderr

    listed = tuneboard(site, "plugins", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    by_name = {p["name"]: p for p in document["plugins"]}
    assert {"hello", "boom", "clash"} <= set(by_name)  # their other parts still load
    assert by_name["hello"]["hooks"] == ["register_commands"]
    errors = {(f["name"], f["source"], f["error"].split(" (at ")[0]) for f in document["failures"]}
    assert (
        "boom",
        "entry point",
        "register_commands raised RuntimeError: no commands today",
    ) in errors
    clash = "command 'run' is one of tuneboard's own; the plugin's is left out"
    assert ("clash", "entry point", clash) in errors

    table = tuneboard(site, "plugins", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "hooks: register_commands" in table.stdout
    assert "✗ boom (entry point, tb_boom)" in table.stdout


# --- a project's own plugins/ folder --------------------------------------------------------


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cached registries and no allow/block lists from the environment."""
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    clear_cache()
    yield
    clear_cache()


def hi_plugin(greeting: str) -> str:
    """A project plugin file adding `tuneboard hi`, which prints `greeting`."""
    return textwrap.dedent(
        f"""
        import click
        from tuneboard import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hi():
                click.echo({greeting!r})
        """
    )


def test_project_plugin_commands_and_a_clash_between_plugins(
    tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "plugins").mkdir(parents=True)
    (project / "tuneboard.toml").write_text("")
    (project / "plugins" / "a_first.py").write_text(hi_plugin("from a_first"))
    (project / "plugins" / "b_second.py").write_text(hi_plugin("from b_second"))
    runner = CliRunner()

    named = runner.invoke(main, ["--project", str(project), "hi"])
    assert named.exit_code == 0, named.output
    assert named.stdout == "from a_first\n"
    assert "warning: plugin 'b_second': command 'hi' is already added by plugin 'a_first'" in (
        named.stderr
    )

    monkeypatch.chdir(project)  # the current folder's project counts too
    assert runner.invoke(main, ["hi"]).stdout == "from a_first\n"
    monkeypatch.chdir(tmp_path)  # outside a project: no such command, and nothing breaks
    outside = runner.invoke(main, ["hi"])
    assert outside.exit_code == 2
    assert "No such command 'hi'" in outside.stderr
