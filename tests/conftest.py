"""Shared fixtures: a throwaway copy of a sample project, and the CLI run as users run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_projects"


@pytest.fixture
def sentiment_project(tmp_path: Path) -> Path:
    """A fresh copy of the sentiment sample project (without any database)."""
    target = tmp_path / "sentiment"
    shutil.copytree(SAMPLES / "sentiment", target, ignore=shutil.ignore_patterns(".tuneboard"))
    return target


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli() -> CliRunner:
    """Run `tuneboard ARGS...` in a subprocess, the way a user does; returns the finished process."""

    def run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "tuneboard.cli", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
