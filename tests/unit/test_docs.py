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
