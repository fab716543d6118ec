"""Make sure the package is installed before its tests run, the way users install it.

When you work on a copy of this package, `pip install -e .` once and this does nothing. When
it is not installed (tuneboard's own CI), tuneboard's `installed_package` builds it from this
folder into a scratch environment, importable for these tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tuneboard.testing import installed_package

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """tuneboard-example is installed (in a scratch environment when it was not)."""
    with installed_package(PACKAGE, tmp_path_factory.mktemp("tuneboard-example")):
        yield
