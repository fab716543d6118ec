"""The reproducibility record of a run: what is needed to run it again and get the same result.

Stored with the run when it is created (`runs.provenance`, JSON): the seed, every stage's
and the dataset's fully resolved parameters (defaults included), Python and package versions,
the size and SHA-256 of each data file the dataset read, the git commit of the project (and
whether tracked files had changes), and for runs of a sweep the values the sweep chose.
Nothing here imports torch: versions come from the installed packages' metadata.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuneboard.config import ExperimentConfig
from tuneboard.sdk.params import params_to_dict

# Distributions whose versions decide what a run computes; those not installed are left out.
PACKAGES = (
    "tuneboard",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "peft",
    "numpy",
    "duckdb",
)
GIT_TIMEOUT = 3.0

_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


@functools.cache
def package_versions() -> dict[str, str]:
    """Installed versions of `PACKAGES` (read from their metadata; nothing is imported)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so a sweep hashes it once."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        known = _digests.get(key)
    if known is not None:
        return known
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _digests_lock:
        _digests[key] = digest
    return digest


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in `folder`'s repository, and whether tracked files changed.

    None when `folder` is not in a git repository, git is not installed, or git does not
    answer within `GIT_TIMEOUT` seconds. Untracked files are not looked at (the run's own
    outputs usually are).
    """
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def model_packages(experiment: ExperimentConfig) -> dict[str, str]:
    """Versions of the packages that ship the model or tokenizer (`package:MODULE/...`)."""
    found: dict[str, str] = {}
    for source in (experiment.model.source, experiment.model.tokenizer):
        if not source or not source.startswith("package:"):
            continue
        module = source.removeprefix("package:").partition("/")[0].split(".")[0]
        for dist in importlib.metadata.packages_distributions().get(module, []):
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def build_record(
    experiment: ExperimentConfig,
    project_dir: Path,
    data_files: Sequence[tuple[str, Path]],
    *,
    sweep: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record of a run of `experiment` that reads `data_files` (key, path)."""
    files = []
    for key, path in data_files:
        shown = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
        files.append(
            {
                "key": key,
                "path": shown.as_posix(),
                "bytes": path.stat().st_size,
                "sha256": file_digest(path),
            }
        )
    record: dict[str, Any] = {
        "seed": experiment.seed,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {**package_versions(), **model_packages(experiment)},
        "data_files": files,
        "git": git_state(project_dir),
        "resolved": {
            "model": {
                "source": experiment.model.source,
                "tokenizer": experiment.model.tokenizer,
                "config": dict(experiment.model.config) if experiment.model.config else None,
            },
            "dataset": {
                "plugin": experiment.dataset.plugin,
                **params_to_dict(experiment.dataset.params),
            },
            "stages": [
                {"name": stage.name, "plugin": stage.plugin, **params_to_dict(stage.params)}
                for stage in experiment.stages
            ],
        },
    }
    if sweep is not None:
        record["sweep"] = dict(sweep)
    return record


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """The record as a few short lines for `tuneboard show`."""
    lines = []
    packages = record.get("packages") or {}
    versions = "  ".join(f"{name} {version}" for name, version in packages.items())
    lines.append(f"seed {record.get('seed')}  python {record.get('python')}  {versions}")
    git = record.get("git")
    if git:
        dirty = " (with uncommitted changes)" if git.get("dirty") else ""
        lines.append(f"git {git.get('commit')}{dirty}")
    else:
        lines.append("git: not a git repository")
    for item in record.get("data_files") or []:
        lines.append(
            f"data {item.get('key')}: {item.get('path')}  {item.get('bytes')} bytes  "
            f"sha256 {str(item.get('sha256'))[:16]}…"
        )
    sweep = record.get("sweep")
    if sweep:
        values = ", ".join(f"{k}={v}" for k, v in (sweep.get("values") or {}).items())
        lines.append(f"sweep {sweep.get('id')}: {values}")
    return lines
