"""The docs match the code: every hook documented, the generated reference up to date."""

from __future__ import annotations

from pathlib import Path

from tuneboard.plugins import load_plugins
from tuneboard.plugins.reference import hook_names, reference
from tuneboard.sdk import hookspecs

REPO = Path(__file__).resolve().parents[2]


def test_every_hook_has_a_docstring() -> None:
    names = hook_names()
    assert names, "no hooks found"
    undocumented = [
        name for name in names if len((getattr(hookspecs, name).__doc__ or "").strip()) < 40
    ]
    assert undocumented == []


def test_every_hook_is_in_the_reference() -> None:
    text = (REPO / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    missing = [name for name in hook_names() if f"### `{name}(" not in text]
    assert missing == []


def test_reference_is_up_to_date() -> None:
    expected = reference(load_plugins(None))
    actual = (REPO / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/REFERENCE.md is stale: run `python -m tuneboard.plugins.reference > docs/REFERENCE.md`"
    )


def test_every_builtin_parameter_has_help() -> None:
    from tuneboard.sdk.params import describe_params

    registry = load_plugins(None)
    missing = [
        f"{kind}.{name}.{spec.name}"
        for kind, plugins in (
            ("stage", registry.stages),
            ("dataset", registry.datasets),
            ("strategy", registry.strategies),
        )
        for name, cls in plugins.items()
        for spec in describe_params(cls.Params)
        if not spec.help
    ]
    assert missing == []


def test_every_public_name_is_documented_in_the_reference() -> None:
    import inspect

    import tuneboard
    from tuneboard.plugins.reference import VALUE_NOTES, public_names

    names = public_names()
    assert {"Stage", "StageContext", "Training", "TrainParams", "RunJob"} <= set(names)
    undocumented = [
        name
        for name in names
        if name not in VALUE_NOTES and len(inspect.getdoc(getattr(tuneboard, name)) or "") < 20
    ]
    assert undocumented == []
    text = (REPO / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    missing = [name for name in names if f"### `{name}" not in text]
    assert missing == []


def test_the_public_sdk_imports_no_heavy_framework_and_nothing_internal() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tuneboard\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual', 'numpy') if m in sys.modules]\n"
        # tuneboard.startup: the program's start-up Ctrl-C handler, a few lines of stdlib.
        "inner = sorted(m for m in sys.modules if m.startswith('tuneboard.')"
        " and not m.startswith('tuneboard.sdk') and m != 'tuneboard.startup')\n"
        "print(heavy, inner)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_the_readme_development_map_names_every_package() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    development = readme[readme.index("## Development") :]
    packages = sorted(p.parent.name for p in (REPO / "tuneboard").glob("*/__init__.py"))
    plugins = sorted(
        p.name for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").exists()
    )
    assert len(packages) >= 10
    missing = [f"{name}/" for name in packages if f"  {name}/" not in development]
    missing += [name for name in plugins if name not in development]
    assert missing == []
