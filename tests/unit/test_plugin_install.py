"""The parts of plugin installing that need no pip: commands, refusals, what changed; and
lifecycle hooks called one plugin at a time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tuneboard import hookimpl
from tuneboard.plugins import PluginRegistry
from tuneboard.plugins.install import (
    InstallOptions,
    Listing,
    compare,
    install_command,
    parse_install_line,
)
from tuneboard.sdk.errors import PluginError


def test_install_command_runs_pip_of_this_interpreter(tmp_path: Path) -> None:
    options = InstallOptions(upgrade=True, no_deps=True, no_build_isolation=True)
    command = install_command(["tuneboard-foo>=1.0", str(tmp_path)], options)
    assert command == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--upgrade",
        "--no-deps",
        "--no-build-isolation",
        "tuneboard-foo>=1.0",
        str(tmp_path.resolve()),
    ]
    editable = install_command([str(tmp_path)], InstallOptions(editable=True), python="/py")
    assert editable == ["/py", "-m", "pip", "install", "--editable", str(tmp_path.resolve())]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "name a package, a wheel or a folder to install"),
        (["--index-url=http://evil"], "not a package name and no such file or folder"),
        (["foo; rm -rf /"], "not a package name and no such file or folder"),
        (["./missing-folder"], "no such file or folder: './missing-folder'"),
    ],
)
def test_install_command_refuses_what_is_not_a_package(targets: list[str], message: str) -> None:
    with pytest.raises(PluginError, match=message.replace("(", r"\(")):
        install_command(targets, InstallOptions())


def test_parse_install_line() -> None:
    targets, options = parse_install_line("-U --no-deps 'my plugins/pkg' tuneboard-foo")
    assert targets == ["my plugins/pkg", "tuneboard-foo"]
    assert options == InstallOptions(upgrade=True, no_deps=True)
    with pytest.raises(PluginError, match="unknown option '--index-url'; options: -U"):
        parse_install_line("--index-url x foo")
    with pytest.raises(PluginError, match="name a package"):
        parse_install_line("  --upgrade ")
    with pytest.raises(PluginError, match="cannot read"):
        parse_install_line("'unclosed")


def plugin(name: str, version: str, stages: list[str]) -> dict[str, object]:
    return {
        "name": name,
        "version": version,
        "source": "entry point",
        "location": f"{name}_module",
        "provides": {"stage": stages},
        "hooks": ["register_stages", "run_finished"],
        "distribution": f"tuneboard-{name}",
        "path": None,
    }


def test_compare_lists_added_changed_removed_and_failing() -> None:
    before = Listing({"old": plugin("old", "1", ["a"]), "same": plugin("same", "1", ["b"])})
    after = Listing(
        {"same": plugin("same", "2", ["b"]), "new": plugin("new", "0.1", ["c"])},
        {"bad": {"name": "bad", "location": "bad_module", "error": "ImportError: no"}},
    )
    change = compare(before, after)
    assert change.lines() == [
        "+ same (tuneboard-same 2): stage: b; hooks: run_finished",
        "+ new (tuneboard-new 0.1): stage: c; hooks: run_finished",
        "- old (tuneboard-old 1)",
        "✗ bad (bad_module): ImportError: no",
    ]
    assert compare(after, after).lines() == []


class Recorder:
    """A lifecycle plugin that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def run_finished(self, run_id: str, status: str) -> None:
        self.calls.append((run_id, status))


class Raiser:
    """A lifecycle plugin whose hook raises."""

    @hookimpl
    def run_finished(self, status: str) -> None:
        raise RuntimeError(f"cannot report {status}")


def test_lifecycle_hooks_are_called_one_plugin_at_a_time() -> None:
    registry = PluginRegistry()
    first, second = Recorder(), Recorder()
    for name, lifecycle_plugin in (("first", first), ("raiser", Raiser()), ("second", second)):
        registry._pm.register(lifecycle_plugin, name=name)
    failures = registry.call_lifecycle(
        "run_finished",
        run_id="r1",
        experiment="e",
        status="completed",
        error=None,
        metrics={},
        run_dir=Path("."),
        project_dir=Path("."),
    )
    # The plugin that raised is reported by name; the ones around it were still called.
    assert [(f.plugin, f.hook) for f in failures] == [("raiser", "run_finished")]
    assert failures[0].error.startswith("RuntimeError: cannot report completed (at ")
    assert first.calls == second.calls == [("r1", "completed")]
    with pytest.raises(ValueError, match="not a lifecycle hook"):
        registry.call_lifecycle("register_stages", register=print)
