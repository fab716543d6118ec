"""Import discipline: the layers' import contracts hold (and break when a module reaches across
a layer); nothing imports torch until a run starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tuneboard"
PLUGIN_PACKAGES = ("tuneboard-example", "tuneboard-ray", "tuneboard-slurm", "tuneboard-contrastive")
HEAVY = ("torch", "transformers", "textual", "peft", "sacrebleu", "rouge_score", "nltk")


def test_cli_and_plugin_loading_do_not_import_heavy_frameworks() -> None:
    code = (
        "import sys\n"
        "import tuneboard, tuneboard.cli, tuneboard.engine.engine, tuneboard.store, tuneboard.config\n"
        "from tuneboard.plugins import load_plugins\n"
        "load_plugins()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


PLUGIN_SOURCES = [REPO / "plugins" / name / "src" for name in PLUGIN_PACKAGES]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the import contracts of `root`'s pyproject.toml over `root`'s packages."""
    paths = [str(root), *map(str, PLUGIN_SOURCES)]
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--config", "pyproject.toml"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "reach"),
    [
        ("builtin/finetune.py", "from tuneboard.engine import training"),
        ("sdk/training.py", "from tuneboard.config import ModelSpec"),
        ("store/sql.py", "import tuneboard.engine.runner"),
        ("engine/runner.py", "import textual"),
    ],
)
def test_reaching_across_a_layer_breaks_a_contract(tmp_path: Path, module: str, reach: str) -> None:
    shutil.copytree(PACKAGE, tmp_path / "tuneboard", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "tuneboard" / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n\ndef _reach() -> None:\n    {reach}\n"
    )
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
    assert " 0 broken" not in done.stdout and " broken." in done.stdout
