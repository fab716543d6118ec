"""Start-up discipline: the core never imports Textual; nothing imports torch until a run starts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tuneboard"
CORE = [
    "config",
    "plugins",
    "review",
    "ui",
    "sdk",
    "engine",
    "store",
    "builtin",
]
HEAVY = ("torch", "transformers", "textual", "peft")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_textual() -> None:
    files = []
    for entry in CORE:
        target = PACKAGE / entry
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    offenders = [str(f.relative_to(PACKAGE)) for f in files if "textual" in imported_modules(f)]
    assert offenders == []


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
