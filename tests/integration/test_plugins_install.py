"""`tuneboard plugins install / uninstall` for real: pip in tuneboard's own interpreter.

Every install goes into a scratch virtual environment layered over the test environment
(`tuneboard.testing.ScratchEnv`), and tuneboard runs there as `<scratch>/bin/python -m
tuneboard.cli`, so pip installs where that tuneboard loads plugins from — and nothing is
installed into the environment the other tests use.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from tuneboard.cli import main
from tuneboard.testing import ScratchEnv, ThrowawayProject

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugins" / "tuneboard-example"
OFFLINE = ("--no-deps", "--no-build-isolation")  # no index and no build downloads in tests


@pytest.fixture(autouse=True)
def example_not_installed_here() -> None:
    """These tests install the example themselves; a copy already installed would show through."""
    try:
        importlib.metadata.distribution("tuneboard-example")
    except importlib.metadata.PackageNotFoundError:
        return
    pytest.fail("tuneboard-example is installed in the test environment: pip uninstall it first")


def copy_example(tmp_path: Path) -> Path:
    """A clean copy of the example package (setuptools writes build/ into what it builds)."""
    target = tmp_path / "tuneboard-example"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(EXAMPLE, target, ignore=ignore)
    return target


def tuneboard(
    env: ScratchEnv, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`tuneboard ARGS...` run by the scratch environment's interpreter."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_PLUGINS")}
    return subprocess.run(
        [env.python, "-m", "tuneboard.cli", *args],
        cwd=cwd,
        env={**environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def listed(env: ScratchEnv, project: Path) -> dict[str, dict[str, object]]:
    """The plugins `tuneboard plugins --json` lists, by name (failures under `failed:NAME`)."""
    done = tuneboard(env, "plugins", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    plugins = {p["name"]: p for p in document["plugins"]}
    plugins.update({f"failed:{f['name']}": f for f in document["failures"]})
    return plugins


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project whose experiment `calibrated` uses the example's `calibrate` stage."""
    throwaway = ThrowawayProject(tmp_path / "fresh")
    toml = throwaway.experiment_toml(
        "calibrated", [{"plugin": "calibrate"}, {"plugin": "evaluate", "split": "test"}]
    )
    (throwaway.root / "tuneboard.toml").write_text(
        f'[project]\nname = "fresh"\ndevices = ["cpu"]\n\n{toml}', encoding="utf-8"
    )
    return throwaway.root


def run_ids(project: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        return con.execute("SELECT run_id, status FROM runs ORDER BY created_at").fetchall()
    finally:
        con.close()


def metric(project: Path, run_id: str, name: str) -> float:
    con = duckdb.connect(str(project / ".tuneboard" / "tuneboard.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT value FROM metrics WHERE run_id = ? AND name = ?", [run_id, name]
        ).fetchone()
    finally:
        con.close()
    assert row is not None, name
    return float(row[0])


def test_install_from_folder_run_its_stage_and_uninstall(
    scratch_env: ScratchEnv, project: Path, tmp_path: Path
) -> None:
    assert "example" not in listed(scratch_env, project)
    before = tuneboard(scratch_env, "run", "calibrated", "-q", cwd=project)
    assert before.returncode == 2
    assert "unknown stage plugin 'calibrate'" in before.stderr

    package = copy_example(tmp_path)
    done = tuneboard(scratch_env, "plugins", "install", *OFFLINE, str(package), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    # pip's own output streams through, then what the new plugin provides.
    assert "Successfully installed tuneboard-example-0.1.0" in done.stdout
    assert (
        "+ example (tuneboard-example 0.1.0): stage: calibrate; hooks: run_finished" in done.stdout
    )
    assert (scratch_env.site_packages / "tuneboard_example").is_dir()
    info = listed(scratch_env, project)["example"]
    assert info["source"] == "entry point" and info["distribution"] == "tuneboard-example"

    # The new stage works in the fresh project, and its lifecycle hook wrote the summary.
    run = tuneboard(scratch_env, "run", "calibrated", "-q", cwd=project)
    assert run.returncode == 0, run.stdout + run.stderr
    ((run_id, status),) = run_ids(project)
    assert status == "completed"
    assert 0.05 <= metric(project, run_id, "calibration/temperature") <= 20
    summary = json.loads((project / ".tuneboard" / "runs" / run_id / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["metrics"]["test/accuracy"] == metric(project, run_id, "test/accuracy")

    gone = tuneboard(scratch_env, "plugins", "uninstall", "example", cwd=project)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "Successfully uninstalled tuneboard-example-0.1.0" in gone.stdout
    assert "- example (tuneboard-example 0.1.0)" in gone.stdout
    assert "example" not in listed(scratch_env, project)
    assert not (scratch_env.site_packages / "tuneboard_example").exists()
    again = tuneboard(scratch_env, "run", "calibrated", "-q", cwd=project)
    assert again.returncode == 2 and "unknown stage plugin 'calibrate'" in again.stderr


def test_install_from_a_built_wheel(scratch_env: ScratchEnv, project: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    scratch_env.pip("wheel", *OFFLINE, "--wheel-dir", str(wheels), str(copy_example(tmp_path)))
    (wheel,) = wheels.glob("tuneboard_example-0.1.0-*.whl")

    done = tuneboard(scratch_env, "plugins", "install", *OFFLINE, str(wheel), cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "+ example (tuneboard-example 0.1.0): stage: calibrate" in done.stdout
    assert "calibrate" in listed(scratch_env, project)["example"]["provides"]["stage"]  # type: ignore[index]

    # Uninstalling by the package's name works as well as by the plugin's.
    gone = tuneboard(scratch_env, "plugins", "uninstall", "tuneboard-example", cwd=project)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "example" not in listed(scratch_env, project)


BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tuneboard-broken"
version = "0.0.1"

[project.entry-points.tuneboard]
broken = "tuneboard_broken"
"""


def test_a_broken_plugin_package_gives_a_clear_error(
    scratch_env: ScratchEnv, project: Path, tmp_path: Path
) -> None:
    package = tmp_path / "tuneboard-broken"
    (package / "tuneboard_broken").mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent(BROKEN_PYPROJECT))
    (package / "tuneboard_broken" / "__init__.py").write_text("import not_a_module_anywhere\n")

    done = tuneboard(scratch_env, "plugins", "install", *OFFLINE, str(package), cwd=project)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert done.stderr.startswith(
        "error: plugin 'broken' was installed but does not load: ModuleNotFoundError: "
        "No module named 'not_a_module_anywhere'"
    )
    assert "tuneboard plugins uninstall broken" in done.stderr
    # Everything else still works, and the broken plugin can be removed by its name.
    assert "failed:broken" in listed(scratch_env, project)
    gone = tuneboard(scratch_env, "plugins", "uninstall", "broken", cwd=project)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "failed:broken" not in listed(scratch_env, project)


def test_pip_failures_are_one_line_errors(
    scratch_env: ScratchEnv, project: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-package"
    empty.mkdir()
    done = tuneboard(scratch_env, "plugins", "install", *OFFLINE, str(empty), cwd=project)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: pip install failed (exit status 1): ")
    assert "not installable" in done.stderr
    assert "ERROR:" in done.stdout  # pip's own output was shown as it came


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["install", "not a name!"],
            "not a package name and no such file or folder: 'not a name!'",
        ),
        (
            ["install", "-e", "tuneboard-foo"],
            "--editable needs a project folder, got 'tuneboard-foo'",
        ),
        (["uninstall", "tuneboard"], "'tuneboard' is tuneboard itself"),
        (["uninstall", "builtin_stages"], "'builtin_stages' is tuneboard itself"),
        (["uninstall", "pytest"], "package 'pytest' is not a tuneboard plugin"),
        (
            ["uninstall", "no-such-package"],
            "no installed plugin or package named 'no-such-package'",
        ),
    ],
)
def test_refused_before_pip_runs(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugins", *args[:1], "--project", str(tmp_path), *args[1:]])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_the_contrastive_package_installs_and_trains(
    scratch_env: ScratchEnv, tmp_path: Path
) -> None:
    """The SDK's proof: a package written only against `tuneboard`, installed the way users
    install plugins, trains in a fresh project."""
    throwaway = ThrowawayProject(tmp_path / "contrastive-project")
    stage = {"plugin": "contrastive", "epochs": 1, "batch_size": 8, "lam": 0.5}
    toml = throwaway.experiment_toml("supcon", [stage])
    (throwaway.root / "tuneboard.toml").write_text(
        f'[project]\nname = "c"\ndevices = ["cpu"]\n\n{toml}', encoding="utf-8"
    )
    package = tmp_path / "tuneboard-contrastive"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(REPO / "plugins" / "tuneboard-contrastive", package, ignore=ignore)
    done = tuneboard(scratch_env, "plugins", "install", *OFFLINE, str(package), cwd=throwaway.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "+ contrastive (tuneboard-contrastive 0.1.0): stage: contrastive" in done.stdout
    run = tuneboard(scratch_env, "run", "supcon", "-q", cwd=throwaway.root)
    assert run.returncode == 0, run.stdout + run.stderr
    ((run_id, status),) = run_ids(throwaway.root)
    assert status == "completed"
    assert 0.0 <= metric(throwaway.root, run_id, "val/centroid_accuracy") <= 1.0
