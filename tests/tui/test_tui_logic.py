"""The app's pure parts: metric families, config differences, the launch form's overrides,
SQL history files, table cells, and that the CLI starts without Textual."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tuneboard.config import load_project
from tuneboard.plugins import load_plugins
from tuneboard.sdk.errors import ConfigError
from tuneboard.store import RunRow
from tuneboard.tui.cells import headline_cell, progress_bar, status_cell
from tuneboard.tui.commands import id_hits
from tuneboard.tui.configs import config_differences, flatten_config, split_values, toml_literal
from tuneboard.tui.history import QueryHistory, SavedQueries
from tuneboard.tui.launch_form import (
    check_override,
    form_sections,
    override_for,
    variants,
)
from tuneboard.tui.metrics import default_metric, metric_families
from tuneboard.tui.run_columns import FITS, stage_text


def test_metric_families_put_splits_of_one_metric_together() -> None:
    names = [
        "test/accuracy",
        "train/lr",
        "val/loss",
        "val/accuracy",
        "train/loss",
        "train/samples_per_s",
        "test/loss",
        "val/f1_macro",
    ]
    assert metric_families(names) == {
        "loss": ["train/loss", "val/loss", "test/loss"],
        "accuracy": ["val/accuracy", "test/accuracy"],
        "f1_macro": ["val/f1_macro"],
        "lr": ["train/lr"],
        "samples_per_s": ["train/samples_per_s"],
    }


def test_default_metric_prefers_the_given_names_then_validation() -> None:
    names = ["test/accuracy", "train/loss", "train/lr", "val/loss"]
    assert default_metric(names, ["val/accuracy", "test/accuracy"]) == "test/accuracy"
    assert default_metric(names, [None]) == "val/loss"
    assert default_metric([], ["x"]) is None


def test_config_differences_show_only_keys_that_differ() -> None:
    a = {"seed": 1, "stages": [{"plugin": "finetune", "lr": 0.01}], "dataset": {"train": "t"}}
    b = {"seed": 1, "stages": [{"plugin": "finetune", "lr": 0.001, "epochs": 2}]}
    assert flatten_config(a) == {
        "seed": 1,
        "stages.0.plugin": "finetune",
        "stages.0.lr": 0.01,
        "dataset.train": "t",
    }
    assert config_differences([a, b]) == [
        ("stages.0.lr", ["0.01", "0.001"]),
        ("dataset.train", ['"t"', "—"]),
        ("stages.0.epochs", ["—", "2"]),
    ]


def test_toml_literals_and_split_values() -> None:
    assert toml_literal(["query", "value"]) == '["query", "value"]'
    assert toml_literal({"eps": 1.0, "a b": True}) == '{ eps = 1.0, "a b" = true }'
    assert toml_literal(float("inf")) == "inf"
    assert split_values("1e-3, 3e-4,[1, 2], 'a,b'") == ["1e-3", "3e-4", "[1, 2]", "'a,b'"]


@pytest.fixture
def tiny_form(sentiment_project: Path) -> tuple[object, object, dict[str, object]]:
    project = load_project(sentiment_project)
    registry = load_plugins(project.root)
    return project, registry, project.raw_experiment("tiny")


def test_form_sections_come_from_the_stage_declarations(
    tiny_form: tuple[object, object, dict[str, object]],
) -> None:
    _, registry, raw = tiny_form
    sections = form_sections(raw, registry)  # type: ignore[arg-type]
    assert [s.title for s in sections] == [
        "experiment",
        "stage 0 · finetune",
        "stage 1 · evaluate",
        "stage 2 · export",
    ]
    fields = {f.key: f for s in sections for f in s.fields}
    assert fields["stages.0.epochs"].initial == 8  # from tuneboard.toml
    assert fields["stages.0.weight_decay"].initial == 0.01  # the declared default
    assert fields["stages.0.scheduler"].kind == "select"
    assert fields["stages.0.lora_targets"].initial_text == "[]"
    assert fields["stages.0.dropout"].initial_text == ""
    assert fields["seed"].initial == 7


def test_a_task_plugin_gets_a_section_of_its_keys(
    tiny_form: tuple[object, object, dict[str, object]],
) -> None:
    _, registry, raw = tiny_form
    generation = {**raw, "task": "causal-lm", "metrics": ["exact_match"]}
    sections = form_sections(generation, registry)  # type: ignore[arg-type]
    assert [s.title for s in sections][:2] == ["experiment", "task · causal-lm"]
    fields = {f.key: f for s in sections for f in s.fields}
    assert fields["task.template"].kind == "select" and fields["task.template"].initial == "auto"
    assert override_for(fields["task.packing"], True) == "task.packing=true"
    assert check_override(generation, "task.packing=true", registry) is None  # type: ignore[arg-type]
    message = check_override(generation, 'task.template="fancy"', registry)  # type: ignore[arg-type]
    assert message is not None and "template" in message and "fancy" in message
    assert "task · " not in " ".join(s.title for s in form_sections(raw, registry))  # type: ignore[arg-type]


def test_overrides_are_checked_by_the_config_code(
    tiny_form: tuple[object, object, dict[str, object]],
) -> None:
    _, registry, raw = tiny_form
    fields = {f.key: f for s in form_sections(raw, registry) for f in s.fields}  # type: ignore[arg-type]
    epochs = fields["stages.0.epochs"]
    assert override_for(epochs, "8") is None
    assert override_for(epochs, " 2 ") == "stages.0.epochs=2"
    assert check_override(raw, "stages.0.epochs=2", registry) is None  # type: ignore[arg-type]
    message = check_override(raw, "stages.0.epochs=0", registry)  # type: ignore[arg-type]
    assert message == "key 'epochs' must be >= 1, got 0"
    assert override_for(fields["stages.0.scheduler"], "cosine") == 'stages.0.scheduler="cosine"'
    assert override_for(fields["stages.0.monitor"], "val/loss") == "stages.0.monitor=val/loss"
    assert check_override(raw, "stages.0.monitor=val/loss", registry) is None  # type: ignore[arg-type]


def test_variants_of_copies_and_a_grid(tiny_form: tuple[object, object, dict[str, object]]) -> None:
    _, _, raw = tiny_form
    runs = variants(
        raw, ["stages.0.epochs=1"], copies=2, grid_key="stages.0.lr", grid_values="0.1, 0.01"
    )
    assert [v.overrides for v in runs] == [
        ("stages.0.epochs=1", "stages.0.lr=0.1", "seed=7"),
        ("stages.0.epochs=1", "stages.0.lr=0.1", "seed=8"),
        ("stages.0.epochs=1", "stages.0.lr=0.01", "seed=7"),
        ("stages.0.epochs=1", "stages.0.lr=0.01", "seed=8"),
    ]
    assert runs[1].label == "lr=0.1, seed=8"
    assert [v.overrides for v in variants(raw, ["seed=3"])] == [("seed=3",)]
    with pytest.raises(ConfigError, match="comma-separated"):
        variants(raw, [], grid_key="stages.0.lr", grid_values=" ")


def test_history_and_saved_queries_are_private_files(tmp_path: Path) -> None:
    history = QueryHistory(tmp_path / ".tuneboard", limit=2)
    for sql in ("SELECT 1", "SELECT 2", "SELECT 1", "SELECT 3"):
        history.add(sql)
    assert history.entries() == ["SELECT 3", "SELECT 1"]
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600
    saved = SavedQueries(tmp_path / ".tuneboard")
    saved.save("best", "SELECT max(value) FROM metrics")
    saved.save("runs", "FROM runs")
    assert list(saved.entries()) == ["best", "runs"]
    saved.delete("best")
    assert saved.entries() == {"runs": "FROM runs"}
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o600
    history.path.write_text("not json")
    assert history.entries() == []


def _run(status: str, **fields: object) -> RunRow:
    values: dict[str, object] = {
        "run_id": "r1",
        "experiment": "tiny",
        "status": status,
        "config": {},
        "created_at": 0.0,
        "started_at": 10.0,
        "finished_at": None,
        "device": "cpu",
        "error": None,
        "headline": "test/accuracy",
        "headline_value": None,
        "sweep_id": None,
        "owner_host": None,
        "owner_pid": None,
        "owner_started": None,
        "current_stage": None,
        "progress": None,
    }
    values.update(fields)
    return RunRow(**values)  # type: ignore[arg-type]


def test_cells_carry_meaning_in_words_and_symbols() -> None:
    assert str(status_cell("failed", {"error": "#ff0000"})) == "✗ failed"
    assert progress_bar(0.5) == "████░░░░  50%"
    assert progress_bar(None) == ""
    running = _run("running", current_stage="finetune", progress=0.25)
    assert stage_text(running, FITS[0]) == "finetune ██░░░░░░  25%"
    assert stage_text(_run("completed"), FITS[0]) == ""
    assert headline_cell(_run("completed", headline_value=0.8125)) == "test/accuracy 0.8125"


def test_help_and_other_commands_do_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tuneboard.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_app_module_paints_before_importing_the_store() -> None:
    code = (
        "import sys\n"
        "import tuneboard.tui.app\n"
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'numpy', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_palette_finds_a_run_by_the_start_or_the_short_id_the_table_shows() -> None:
    runs = [_run("completed", run_id=i) for i in ("20261203-091404-1b7c", "20261203-091400-5d68")]
    assert [r.run_id for r in id_hits("5d68", runs)] == ["20261203-091400-5d68"]
    assert [r.run_id for r in id_hits("20261203-0914", runs)] == [r.run_id for r in runs]
    assert id_hits("tiny", runs) == []
