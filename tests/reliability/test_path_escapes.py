"""Nothing a user types can make tuneboard write outside the project's `.tuneboard/` folder:
not experiment or stage names, not the export stage's folder (in the file or by `--set`), not
`tuneboard show ../../x`, not the project's own paths. (The bad-input corpus runs the CLI
cases; these check the same walls one level down, and the ones the CLI can't reach.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import RecordingContext
from tuneboard.builtin.export import ExportParams, run_export
from tuneboard.cli import main
from tuneboard.config import load_project
from tuneboard.engine.engine import new_run_id
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, PipelineState
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.params import build_params
from tuneboard.store import Store

ESCAPING_FOLDERS = ["../x", "../../../tmp/x", "/tmp/x", "a/../../x", "..", ".", "", " "]


@pytest.mark.parametrize("folder", ESCAPING_FOLDERS)
def test_export_folder_must_stay_inside_the_run(folder: str) -> None:
    with pytest.raises(ConfigError, match="key 'folder' must be a relative path inside"):
        build_params(ExportParams, {"folder": folder}, "stage 2 (export)")


@pytest.mark.parametrize("folder", ["export", "models/best", "./out", "a.b-c_d"])
def test_export_folders_inside_the_run_are_fine(folder: str) -> None:
    assert build_params(ExportParams, {"folder": folder}, "x").folder == folder


def test_export_refuses_a_folder_that_a_link_leads_out_of(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ctx = RecordingContext(tmp_path)
    (ctx.run_dir / "export").symlink_to(outside)
    state = PipelineState(SEQUENCE_CLASSIFICATION, ["a", "b"], {}, model=object(), tokenizer=1)
    with pytest.raises(ConfigError, match="not inside the run's folder"):
        run_export(ExportParams(folder="export"), ctx, state)
    assert list(outside.iterdir()) == []


def test_run_ids_are_plain_folder_names() -> None:
    for _ in range(100):
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", new_run_id())


@pytest.mark.parametrize(
    "run_id", ["../../x", "../runs", "/etc/passwd", "' OR 1=1 --", "%", "_", "20261123*"]
)
def test_show_takes_ids_not_paths(
    run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tuneboard.toml").write_text('[project]\nname = "p"\n')
    with Store(tmp_path / ".tuneboard" / "tuneboard.duckdb") as store:
        store.create_run("20261123-000000-abcd", "e", {}, status="completed")
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["show", run_id])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: no run matches {run_id!r}\n"
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("database", "../db.duckdb"),
        ("database", "/tmp/db.duckdb"),
        ("runs_dir", "../runs"),
        ("runs_dir", "."),
        ("runs_dir", "a/../.."),
    ],
)
def test_project_paths_stay_inside_the_project(tmp_path: Path, key: str, value: str) -> None:
    (tmp_path / "tuneboard.toml").write_text(f'[project]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=f"key '{key}' must be a path inside the project"):
        load_project(tmp_path)
