"""Make sure the package is installed before its tests run, the way users install it.

When you work on a copy of this package, `pip install -e .` once and this does nothing. When
it is not installed (tuneboard's own CI), it is built from this folder and installed into a
scratch environment layered over the current one (tuneboard's `scratch_env` helper), and
made importable for these tests only.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.testing import ScratchEnv

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """tuneboard-contrastive is installed (in a scratch environment when it was not)."""
    try:
        importlib.metadata.distribution("tuneboard-contrastive")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        yield
        return
    scratch = tmp_path_factory.mktemp("tuneboard-contrastive")
    # Build from a clean copy: setuptools writes build/ and *.egg-info into the folder it builds.
    source = scratch / "source"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = ScratchEnv(scratch / "venv")
    env.install(source)
    with env.activate():
        yield
