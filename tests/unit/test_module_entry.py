"""`python -m tuneboard` runs the command line, as the `tuneboard` script does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tuneboard


def test_python_dash_m_tuneboard_runs_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tuneboard", "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(Path(tuneboard.__file__).parent.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "lineage" in done.stdout and "compare" in done.stdout
