"""Plugins are code, so `tuneboard plugins` shows where each one comes from: its package and
version, and the file its code was loaded from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.reliability.conftest import HERE
from tuneboard.cli import main


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tuneboard.toml").write_text('[project]\nname = "p"\n')
    (tmp_path / "plugins").mkdir()
    shutil.copy(HERE / "fault_plugins.py", tmp_path / "plugins" / "faults.py")
    return tmp_path


def test_plugins_json_names_package_version_and_file(project: Path) -> None:
    result = CliRunner().invoke(main, ["plugins", "--json", "--project", str(project)])
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    for name in ("builtin_stages", "builtin_datasets", "builtin_metrics", "builtin_strategies"):
        info = plugins[name]
        assert info["source"] == "built-in" and info["distribution"] == "tuneboard"
        assert info["version"] and Path(info["path"]).is_file()
    faults = plugins["faults"]
    assert faults["source"] == "project"
    assert faults["path"] == faults["location"] == str(project / "plugins" / "faults.py")
    assert "ticker" in faults["provides"]["stage"]


def test_plugins_table_shows_origin(project: Path) -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, ["plugins", "--project", str(project)])
    assert result.exit_code == 0, result.output
    for header in ("plugin", "package", "version", "source", "location"):
        assert header in result.stdout
    assert "stages.py" in result.stdout and "faults.py" in result.stdout
