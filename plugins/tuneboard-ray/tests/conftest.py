"""Fixtures for the Ray executor's tests: Ray and this plugin installed, and one local Ray head.

`ray_env` is a Python that has tuneboard, ``ray[default,train]`` and this plugin. Where the running
Python has Ray and the plugin already (``pip install -e 'plugins/tuneboard-ray[test]'``), it
is that one. Otherwise Ray is installed from the package index into a scratch environment
layered over the running one (tuneboard's `ScratchEnv`: the project's own environment is not
changed), kept under the running environment's folder so that only the first session pays
for it (about 20 s), and the plugin is installed into it from a copy of this folder. The
tests are skipped, with pip's reason, only when Ray cannot be installed.

`ray_cluster` starts a two-node Ray cluster on 127.0.0.1 for the module: a head and one more
node (``ray start --head --block``, then ``ray start --address ... --block``, on free ports, in
its own temporary folder), one CPU each, so that a run whose ranks ask one CPU each spans both
nodes, as on a real cluster. It stops them afterwards by their process ids.
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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tuneboard.testing import ScratchEnv

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[1]
CONSTRAINTS = REPO / "constraints.txt"
CLUSTER_START_SECONDS = 180


@dataclass(frozen=True)
class RayEnv:
    """A Python with tuneboard, Ray and tuneboard-ray.

    `ray` is the `ray` command run by that Python (Ray's processes, Ray Train's workers among
    them, then run that Python, which has the plugin).
    """

    python: str

    @property
    def ray(self) -> list[str]:
        """The `ray` command of this Python."""
        return [self.python, "-m", "ray.scripts.scripts"]


@dataclass(frozen=True)
class RayCluster:
    """A running local Ray cluster: its Jobs API address and its log file."""

    address: str
    log: Path

    def nodes_of(self, submission_id: str, class_name: str = "RayTrainWorker") -> list[str]:
        """The node ids of the actors of `class_name` that a job started (alive or dead)."""
        job_id = self.job(submission_id)["job_id"]
        query = urllib.parse.urlencode(
            {
                "filter_keys": "class_name",
                "filter_predicates": "=",
                "filter_values": class_name,
                "detail": "1",
                "limit": "1000",
            }
        )
        with urllib.request.urlopen(f"{self.address}/api/v0/actors?{query}", timeout=10) as r:
            actors = json.loads(r.read())["data"]["result"]["result"]
        return [actor["node_id"] for actor in actors if actor["job_id"] == job_id]

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
        return RayEnv(sys.executable)
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
    return RayEnv(env.python)


@pytest.fixture(scope="module")
def ray_cluster(ray_env: RayEnv) -> Iterator[RayCluster]:
    """Two Ray nodes on 127.0.0.1 (one CPU each; the head has the Jobs API), stopped afterwards."""
    # A short folder: Ray's socket paths inside it must stay under 108 characters.
    temp = Path(tempfile.mkdtemp(prefix="tbray-", dir="/tmp"))
    ports = _free_ports(11)
    log = temp / "ray-start.log"
    common = [
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    head_command = [
        *ray_env.ray,
        "start",
        "--head",
        *common,
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        f"--temp-dir={temp}",
        f"--port={ports[0]}",
        f"--dashboard-port={ports[1]}",
        f"--ray-client-server-port={ports[2]}",
        f"--dashboard-agent-listen-port={ports[3]}",
        f"--dashboard-agent-grpc-port={ports[4]}",
        f"--runtime-env-agent-port={ports[5]}",
        f"--metrics-export-port={ports[6]}",
    ]
    node_command = [
        *ray_env.ray,
        "start",
        f"--address=127.0.0.1:{ports[0]}",
        *common,
        f"--dashboard-agent-listen-port={ports[7]}",
        f"--dashboard-agent-grpc-port={ports[8]}",
        f"--runtime-env-agent-port={ports[9]}",
        f"--metrics-export-port={ports[10]}",
    ]
    address = f"http://127.0.0.1:{ports[1]}"
    started = time.monotonic()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("w") as out:
            processes.append(_start(head_command, out))
            _wait_until_ready(address, processes[0], log)
            processes.append(_start(node_command, out))
            _wait_for_nodes(address, 2, processes[1], log)
        print(f"\nRay cluster (2 nodes) ready at {address} in {time.monotonic() - started:.1f} s")
        yield RayCluster(address, log)
    finally:
        for process in reversed(processes):  # the other node first, then the head
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def _start(command: list[str], out: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )


def _wait_for_nodes(address: str, count: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the cluster has `count` live nodes."""
    deadline = time.monotonic() + CLUSTER_START_SECONDS
    alive = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ray start (a node) exited with {process.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError, ValueError, KeyError),
            urllib.request.urlopen(f"{address}/api/v0/nodes", timeout=5) as response,
        ):
            nodes = json.loads(response.read())["data"]["result"]["result"]
            alive = sum(1 for node in nodes if node["state"] == "ALIVE")
            if alive >= count:
                return
        time.sleep(0.5)
    pytest.fail(f"{alive} of {count} Ray nodes came up in {CLUSTER_START_SECONDS} s:\n{_tail(log)}")


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
