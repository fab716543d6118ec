"""The plugin manager: discovery, failures reported by name, allow/block lists, caching."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tuneboard import Metric, PipelineState, Stage, StageContext, param
from tuneboard.plugins import (
    ALLOW_ENV,
    BLOCK_ENV,
    BUILTIN_ENTRY_POINTS,
    PluginRegistry,
    clear_cache,
    load_plugins,
)
from tuneboard.sdk.errors import PluginError

REPO = Path(__file__).resolve().parents[2]

STAGE_PLUGIN = """
from __future__ import annotations

from dataclasses import dataclass
from tuneboard import Stage, hookimpl, param

__version__ = "1.2.3"

@dataclass
class Params:
    lr: float = param(1e-3, "learning rate", min=0)

class {cls}(Stage[Params]):
    name = "{stage}"
    Params = Params

    def run(self, ctx, state):
        return state

@hookimpl
def register_stages(register):
    register({cls})
"""


def stage_plugin(stage: str) -> str:
    """Source of a project plugin file that registers one stage called `stage`."""
    return STAGE_PLUGIN.format(cls=stage.title().replace("_", ""), stage=stage)


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cached registries and no allow/block lists from the environment."""
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    clear_cache()
    yield
    clear_cache()


def project(tmp_path: Path, **files: str) -> Path:
    """A project folder whose plugins/ holds `files` (stem -> source)."""
    folder = tmp_path / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    for stem, source in files.items():
        (folder / f"{stem}.py").write_text(textwrap.dedent(source))
    return tmp_path


def load(root: Path) -> PluginRegistry:
    return load_plugins(root, entry_points=False)


# --- discovery ------------------------------------------------------------------------------


def test_project_plugin_is_discovered(tmp_path: Path) -> None:
    root = project(tmp_path, echo=stage_plugin("echo"))
    registry = load(root)
    assert registry.failures == []
    assert list(registry.stages) == ["echo"]
    assert registry.stage("echo").name == "echo"
    (info,) = registry.plugins
    assert info.name == "echo"
    assert info.source == "project"
    assert info.location == str(root.resolve() / "plugins" / "echo.py")
    assert info.version == "1.2.3"
    assert info.provides == {"stage": ["echo"]}
    assert info.hooks == ["register_stages"]
    assert registry.provider("stage", "echo") is info


def test_underscore_files_and_missing_folder(tmp_path: Path) -> None:
    assert load(tmp_path).plugins == []
    root = project(tmp_path, _helper="raise RuntimeError('never imported')")
    assert load_plugins(root, entry_points=False, reload=True).failures == []


def test_broken_plugins_are_reported_and_others_load(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        good=stage_plugin("good"),
        syntax="def broken(:\n    pass\n",
        raising="raise RuntimeError('no GPU driver')\n",
        exits="import sys\nsys.exit(3)\n",
        missing_dep="import not_a_module_anywhere\n",
    )
    registry = load(root)
    assert list(registry.stages) == ["good"]
    errors = {f.name: f.error for f in registry.failures}
    assert set(errors) == {"syntax", "raising", "missing_dep", "exits"}
    assert errors["exits"].startswith("SystemExit: 3")
    assert errors["syntax"].startswith("SyntaxError: ")
    assert "line 1" in errors["syntax"]
    assert errors["raising"].startswith("RuntimeError: no GPU driver (at ")
    assert "ModuleNotFoundError" in errors["missing_dep"]
    assert all("\n" not in error for error in errors.values())
    failure = next(f for f in registry.failures if f.name == "raising")
    assert failure.source == "project"
    assert failure.location.endswith("raising.py")


def test_misspelt_hook_is_reported(tmp_path: Path) -> None:
    source = """
        from tuneboard import hookimpl

        @hookimpl
        def register_stage(register):
            pass
    """
    registry = load(project(tmp_path, typo=source, good=stage_plugin("good")))
    (failure,) = registry.failures
    assert failure.name == "typo"
    assert failure.error.startswith(
        "unknown hook 'register_stage' (did you mean 'register_stages'?); hooks tuneboard knows:"
    )
    assert list(registry.stages) == ["good"]
    assert [p.name for p in registry.plugins] == ["good"]


def test_hook_with_wrong_arguments_is_reported(tmp_path: Path) -> None:
    source = """
        from tuneboard import hookimpl

        @hookimpl
        def register_stages(regster):
            pass
    """
    (failure,) = load(project(tmp_path, args=source)).failures
    assert "regster" in failure.error
    assert "\n" not in failure.error


def test_registration_hook_that_raises(tmp_path: Path) -> None:
    source = """
        from tuneboard import hookimpl

        @hookimpl
        def register_metrics(register):
            raise ValueError("bad table")
    """
    (failure,) = load(project(tmp_path, raises=source)).failures
    assert failure.error.startswith("register_metrics raised ValueError: bad table")


INVALID = {
    "not_subclass": (
        "class Thing:\n    name = 'thing'\n",
        "stage class Thing is not a subclass of tuneboard.Stage",
    ),
    "no_name": (
        "class Thing(Stage):\n    def run(self, ctx, state):\n        return state\n",
        "stage class Thing needs a `name`",
    ),
    "bad_name": (
        "class Thing(Stage):\n    name = 'a b'\n"
        "    def run(self, ctx, state):\n        return state\n",
        "stage class Thing needs a `name`",
    ),
    "params_not_dataclass": (
        "class Thing(Stage):\n    name = 'thing'\n    Params = dict\n"
        "    def run(self, ctx, state):\n        return state\n",
        "stage 'thing': `Params` must be a dataclass",
    ),
    "abstract": (
        "class Thing(Stage):\n    name = 'thing'\n",
        "stage 'thing' does not implement run",
    ),
    "bad_default": (
        "from dataclasses import dataclass\n"
        "@dataclass\nclass P:\n    lr: float = param('fast')\n"
        "class Thing(Stage):\n    name = 'thing'\n    Params = P\n"
        "    def run(self, ctx, state):\n        return state\n",
        "stage 'thing': default of Params: key 'lr' must be a number",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_class_is_reported(tmp_path: Path, case: str) -> None:
    body, expected = INVALID[case]
    source = (
        "from tuneboard import Stage, hookimpl, param\n"
        + body
        + "@hookimpl\ndef register_stages(register):\n    register(Thing)\n"
    )
    registry = load(project(tmp_path, bad=source, good=stage_plugin("good")))
    (failure,) = registry.failures
    assert failure.name == "bad"
    assert expected in failure.error
    assert list(registry.stages) == ["good"]


def test_duplicate_stage_name_fails_the_later_plugin(tmp_path: Path) -> None:
    registry = load(project(tmp_path, a_first=stage_plugin("echo"), b_second=stage_plugin("echo")))
    assert registry.provider("stage", "echo").name == "a_first"
    (failure,) = registry.failures
    assert failure.name == "b_second"
    assert failure.error == "stage 'echo' is already provided by plugin 'a_first'"


# --- allow / block ----------------------------------------------------------------------------


def test_block_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, a=stage_plugin("a"), b=stage_plugin("b"))
    monkeypatch.setenv(BLOCK_ENV, " b ,unknown")
    registry = load(root)
    assert list(registry.stages) == ["a"]
    assert registry.skipped == ["b"]


def test_allow_list_and_block_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, a=stage_plugin("a"), b=stage_plugin("b"), c=stage_plugin("c"))
    monkeypatch.setenv(ALLOW_ENV, "a,b")
    assert sorted(load(root).stages) == ["a", "b"]
    monkeypatch.setenv(BLOCK_ENV, "a")
    registry = load(root)
    assert list(registry.stages) == ["b"]
    assert sorted(registry.skipped) == ["a", "c"]


def test_builtins_can_be_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, ",".join(BUILTIN_ENTRY_POINTS))
    registry = load_plugins()
    assert set(BUILTIN_ENTRY_POINTS) <= set(registry.skipped)
    assert not [p for p in registry.plugins if p.source == "built-in"]


# --- caching ----------------------------------------------------------------------------------


def test_loading_twice_returns_the_same_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, echo=stage_plugin("echo"))
    first = load(root)
    assert load(root) is first
    assert load(root / "plugins" / "..") is first  # the same folder, spelt differently
    assert load_plugins(root, entry_points=False, reload=True) is not first
    monkeypatch.setenv(BLOCK_ENV, "echo")
    assert load(root).stages == {}
    clear_cache()
    monkeypatch.delenv(BLOCK_ENV)
    assert load(root) is not first
    assert list(load(root).stages) == ["echo"]


def test_two_projects_with_the_same_file_name_do_not_clash(tmp_path: Path) -> None:
    one = project(tmp_path / "one", shared=stage_plugin("one"))
    two = project(tmp_path / "two", shared=stage_plugin("two"))
    assert list(load(one).stages) == ["one"]
    assert list(load(two).stages) == ["two"]
    assert load(one).stage("one").__module__ != load(two).stage("two").__module__


# --- the registry -----------------------------------------------------------------------------


@dataclass
class EchoParams:
    """Parameters of a stage used in these tests."""

    lr: float = param(1e-3, "learning rate")


class Echo(Stage[EchoParams]):
    """A stage that hands the state on."""

    name = "echo"
    Params = EchoParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        return state


class Finetune(Echo):
    """Another one."""

    name = "finetune"


class Accuracy(Metric):
    """A metric."""

    name = "accuracy"

    def compute(self, predictions: Any, references: Any, label_names: Any) -> dict[str, float]:
        return {"accuracy": 1.0}


def test_from_classes_and_lookups() -> None:
    registry = PluginRegistry.from_classes([Echo, Finetune, Accuracy])
    assert registry.stages == {"echo": Echo, "finetune": Finetune}
    assert registry.metrics == {"accuracy": Accuracy}
    assert registry.metric("accuracy") is Accuracy
    assert registry.datasets == {} and registry.strategies == {}
    with pytest.raises(PluginError) as info:
        registry.stage("fintune")
    assert str(info.value) == (
        "unknown stage plugin 'fintune' (did you mean 'finetune'?); available: echo, finetune"
    )
    with pytest.raises(PluginError, match=r"^unknown dataset plugin 'tsv'; available: \(none\)$"):
        registry.dataset("tsv")


def test_from_classes_refuses_a_bad_class() -> None:
    class Nameless(Echo):
        name = ""

    with pytest.raises(PluginError, match="needs a `name`"):
        PluginRegistry.from_classes([Nameless])
    with pytest.raises(PluginError, match="is not a Stage"):
        PluginRegistry.from_classes([dict])


def test_unknown_name_mentions_failed_plugins(tmp_path: Path) -> None:
    registry = load(project(tmp_path, broken="raise ImportError('x')"))
    with pytest.raises(PluginError, match=r"plugins that failed to load: broken$"):
        registry.stage("anything")


def test_builtin_fallback_matches_pyproject() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert dict(BUILTIN_ENTRY_POINTS) == pyproject["project"]["entry-points"]["tuneboard"]


# --- a real installed entry point -------------------------------------------------------------

PACKAGE_MODULE = """
from dataclasses import dataclass
from tuneboard import Stage, hookimpl, param


@dataclass
class Params:
    steps: int = param(3, "how many", min=1)


class Tiny(Stage[Params]):
    name = "tiny_stage"
    Params = Params

    def run(self, ctx, state):
        return state


@hookimpl
def register_stages(register):
    register(Tiny)
"""

PACKAGE_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tuneboard-tiny"
version = "0.3.1"

[project.entry-points.tuneboard]
tiny = "tuneboard_tiny"

[tool.setuptools]
py-modules = ["tuneboard_tiny"]
"""

DUMP_REGISTRY = """
import dataclasses, json
from tuneboard.plugins import load_plugins
registry = load_plugins()
print(json.dumps({
    "plugins": [dataclasses.asdict(p) for p in registry.plugins],
    "failures": [dataclasses.asdict(f) for f in registry.failures],
    "stages": sorted(registry.stages),
}))
"""


def test_installed_entry_point_is_discovered(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text(PACKAGE_PYPROJECT)
    (package / "tuneboard_tiny.py").write_text(PACKAGE_MODULE)
    site = tmp_path / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--disable-pip-version-check"),
            *("--target", str(site), str(package)),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    env = {k: v for k, v in os.environ.items() if k not in (ALLOW_ENV, BLOCK_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-c", DUMP_REGISTRY],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    document = json.loads(done.stdout)
    assert "tiny_stage" in document["stages"]
    (tiny,) = [p for p in document["plugins"] if p["name"] == "tiny"]
    assert tiny["source"] == "entry point"
    assert tiny["distribution"] == "tuneboard-tiny"
    assert tiny["version"] == "0.3.1"
    assert tiny["location"] == "tuneboard_tiny"
    assert tiny["provides"] == {"stage": ["tiny_stage"]}
    assert tiny["hooks"] == ["register_stages"]
    assert not [f for f in document["failures"] if f["name"] == "tiny"]


# --- register_commands ------------------------------------------------------------------------


def test_commands_are_collected_once_per_plugin_and_a_raising_hook_is_reported(
    tmp_path: Path,
) -> None:
    calls = tmp_path / "calls.txt"
    root = project(
        tmp_path,
        greet=f"""
        import click
        from tuneboard import hookimpl

        @hookimpl
        def register_commands(cli):
            with open({str(calls)!r}, "a") as f:
                f.write("greet\\n")

            @cli.command()
            def hi():
                click.echo("hi")
        """,
        broken="""
        from tuneboard import hookimpl

        @hookimpl
        def register_commands(cli):
            raise ValueError("nope")
        """,
    )
    registry = load(root)
    assert registry.failures == []  # a raising register_commands does not fail the load
    found = registry.commands()
    assert registry.commands() is found
    assert calls.read_text() == "greet\n"
    assert list(found.by_plugin) == ["greet"]
    assert list(found.by_plugin["greet"]) == ["hi"]
    (failure,) = found.failures
    assert (failure.plugin, failure.hook) == ("broken", "register_commands")
    assert failure.error.startswith("ValueError: nope")
    (greet,) = [p for p in registry.plugins if p.name == "greet"]
    assert greet.describe() == "hooks: register_commands"
