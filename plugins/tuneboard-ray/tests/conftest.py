"""Fixtures for the Ray executor's tests: Ray and this plugin installed, and one local Ray head.

`ray_env` is a Python that has tuneboard, ``ray[default]`` and this plugin. Where the running
Python has Ray and the plugin already (``pip install -e 'plugins/tuneboard-ray[test]'``), it
is that one. Otherwise Ray is installed from the package index into a scratch environment
layered over the running one (tuneboard's `ScratchEnv`: the project's own environment is not
changed), kept under the running environment's folder so that only the first session pays
for it (about 20 s), and the plugin is installed into it from a copy of this folder. The
tests are skipped, with pip's reason, only when Ray cannot be installed.

`ray_cluster` starts one Ray head on 127.0.0.1 for the module (``ray start --head --block``
on free ports, in its own temporary folder) and stops it afterwards by its process id.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tuneboard.testing import ScratchEnv

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[1]
CONSTRAINTS = REPO / "constraints.txt"
CLUSTER_START_SECONDS = 180


@dataclass(frozen=True)
class RayEnv:
    """A Python with tuneboard, Ray and tuneboard-ray, and the `ray` command beside it."""

    python: str
    ray: str


@dataclass(frozen=True)
class RayCluster:
    """A running local Ray head: its Jobs API address and its log file."""

    address: str
    log: Path

    def job(self, submission_id: str) -> dict[str, Any]:
        """The Jobs API's record of a job (status, message, ...)."""
        with urllib.request.urlopen(f"{self.address}/api/jobs/{submission_id}", timeout=10) as r:
            document: dict[str, Any] = json.loads(r.read())
            return document

    def wait_for_job(self, submission_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job's record once its status is final (the run ends before its job does)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.job(submission_id)
            if (
                record["status"] in ("SUCCEEDED", "FAILED", "STOPPED")
                or time.monotonic() > deadline
            ):
                return record
            time.sleep(0.5)


@pytest.fixture(scope="session")
def ray_env() -> RayEnv:
    """Ray and this plugin, in this Python or in a cached scratch environment."""
    if importlib.util.find_spec("ray") is not None and _installed("tuneboard-ray"):
        return RayEnv(
            sys.executable, shutil.which("ray") or str(Path(sys.executable).parent / "ray")
        )
    requirements = _ray_requirements()
    key = hashlib.sha256(
        json.dumps([requirements, sys.version, sys.prefix, _read(CONSTRAINTS)]).encode()
    ).hexdigest()[:12]
    env = ScratchEnv(Path(sys.prefix) / "scratch" / f"tuneboard-ray-tests-{key}")
    stamp = env.folder / "ray-installed"
    if not stamp.exists():
        started = time.monotonic()
        constraints = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
        done = subprocess.run(
            [env.python, "-m", "pip", "install", "-q", *constraints, *requirements],
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
            check=False,
        )
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
            reason = " ".join(errors)
            shutil.rmtree(env.folder, ignore_errors=True)
            pytest.skip(
                f"Ray cannot be installed here ({' '.join(requirements)}): "
                f"{reason[:300]}{'...' if len(reason) > 300 else ''}"
            )
        stamp.write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    # This plugin, from a clean copy (a build writes build/ and *.egg-info where it runs).
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "tuneboard-ray"
        shutil.copytree(
            PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "tests")
        )
        env.pip(
            "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall", str(source)
        )
    return RayEnv(env.python, str(Path(env.python).parent / "ray"))


@pytest.fixture(scope="module")
def ray_cluster(ray_env: RayEnv) -> Iterator[RayCluster]:
    """One Ray head on 127.0.0.1 (2 CPUs, the dashboard's Jobs API), stopped afterwards."""
    # A short folder: Ray's socket paths inside it must stay under 108 characters.
    temp = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))
    ports = _free_ports(7)
    log = temp / "ray-start.log"
    command = [
        ray_env.ray,
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        "--num-cpus=2",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
        f"--port={ports[0]}",
        f"--dashboard-port={ports[1]}",
        f"--ray-client-server-port={ports[2]}",
        f"--dashboard-agent-listen-port={ports[3]}",
        f"--dashboard-agent-grpc-port={ports[4]}",
        f"--runtime-env-agent-port={ports[5]}",
        f"--metrics-export-port={ports[6]}",
    ]
    address = f"http://127.0.0.1:{ports[1]}"
    started = time.monotonic()
    with log.open("w") as out:
        head = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )
    try:
        _wait_until_ready(address, head, log)
        print(f"\nRay head ready at {address} in {time.monotonic() - started:.1f} s")
        yield RayCluster(address, log)
    finally:
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_until_ready(address: str, head: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + CLUSTER_START_SECONDS
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(f"ray start exited with {head.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{address}/api/jobs/", timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(
        f"the Ray head did not answer at {address} in {CLUSTER_START_SECONDS} s:\n{_tail(log)}"
    )


def _stop(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `ray start --block` stops what it started; then the rest of its group."""
    if head.poll() is None:
        head.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(head.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(10)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _ray_requirements() -> list[str]:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))
    requirements: list[str] = project["project"]["optional-dependencies"]["ray"]
    return requirements


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])
