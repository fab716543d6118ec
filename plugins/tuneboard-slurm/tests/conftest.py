"""Fixtures for the Slurm executor's tests: this plugin importable, and one single-node Slurm.

The plugin is imported from its source folder when it is not installed; submitit must be in the
running Python (tuneboard's ``test`` extra has it), else the tests skip themselves saying so.

`slurm_cluster` starts a real single-node Slurm for the module from Debian's packages: it
installs them with apt-get when they are missing and this is root, starts ``munged`` (when no
munge daemon answers) and ``slurmctld`` + ``slurmd`` in the foreground with a slurm.conf of
their own (free ports, a temporary folder, this machine as the one node), waits for the node to
be idle, and stops both afterwards by their process ids. When Slurm cannot be installed or
started, the tests that need it are skipped with the error as the reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("tuneboard_slurm") is None:
    sys.path.insert(0, str(PACKAGE / "src"))

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo", "munged"]
START_SECONDS = 90


@dataclass(frozen=True)
class SlurmCluster:
    """A running single-node Slurm: its partition, its config file and its daemons' logs."""

    partition: str
    conf: Path
    logs: tuple[Path, ...]

    def tail(self, lines: int = 20) -> str:
        """The last lines of the daemons' logs (for failure messages)."""
        return "\n".join(_tail(log, lines) for log in self.logs)


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """slurmctld + slurmd on this machine (one node, partition `debug`), stopped afterwards."""
    _install_or_skip()
    munged = _munge_or_skip()
    temp = Path(tempfile.mkdtemp(prefix="tbslurm-", dir="/tmp"))
    conf = _write_conf(temp)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    logs = (temp / "slurmctld.log", temp / "slurmd.log")
    daemons: list[subprocess.Popen[bytes]] = []
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)  # for sbatch, squeue, scancel run by the executor
    try:
        for command, log in (
            (["slurmctld", "-D", "-i", "-f", str(conf)], logs[0]),
            (["slurmd", "-D", "-f", str(conf)], logs[1]),
        ):
            with log.with_suffix(".out").open("w") as out:
                daemons.append(
                    subprocess.Popen(
                        command,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
        _wait_until_idle(daemons, temp)
        yield SlurmCluster("debug", conf, logs)
    finally:
        for daemon in reversed(daemons):
            _stop(daemon)
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        shutil.rmtree(temp, ignore_errors=True)
        if munged is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(munged, signal.SIGTERM)


def _install_or_skip() -> None:
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing) "
            "and apt-get as root is not available"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=240, check=False
        )
        if done.returncode != 0:  # the package lists may be missing: once more after an update
            subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, env=env, timeout=120, check=False
            )
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=240, check=False
            )
    except subprocess.TimeoutExpired as error:
        pytest.skip(f"Slurm cannot be installed here: {' '.join(error.cmd)} took too long")
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = " ".join([line for line in lines if line.startswith("E:")] or lines[-1:])
        pytest.skip(
            f"Slurm cannot be installed here (apt-get install {' '.join(PACKAGES)}): {reason[:300]}"
        )


def _munge_or_skip() -> int | None:
    """Make sure a munge daemon answers; the process id of the one started here, if any."""
    if _munge_answers():
        return None
    munged = shutil.which("munged") or "/usr/sbin/munged"
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        subprocess.run(["mungekey", "--create"], capture_output=True, check=False)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    pid_file = Path("/run/munge/munged.pid")
    done = subprocess.run(
        [munged, "--force", f"--pid-file={pid_file}"], capture_output=True, text=True, check=False
    )
    deadline = time.monotonic() + 30
    while not _munge_answers():
        if time.monotonic() > deadline:
            said = (done.stderr or done.stdout).strip()[:300]
            pytest.skip(f"the munge daemon (Slurm's authentication) does not start: {said}")
        time.sleep(0.2)
    with contextlib.suppress(OSError, ValueError):
        return int(pid_file.read_text().strip())
    return None


def _munge_answers() -> bool:
    try:
        credential = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=False)
        if credential.returncode != 0:
            return False
        decoded = subprocess.run(
            ["unmunge"], input=credential.stdout, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return decoded.returncode == 0


def _write_conf(temp: Path) -> Path:
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    ctld_port, slurmd_port = _free_ports(2)
    for folder in ("state", "spool"):
        (temp / folder).mkdir()
    conf = temp / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=tuneboardtest",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "AuthType=auth/munge",
                # A requeued job waits this long before it starts again (default 120 s).
                "AuthInfo=cred_expire=10",
                f"StateSaveLocation={temp / 'state'}",
                f"SlurmdSpoolDir={temp / 'spool'}",
                f"SlurmctldPidFile={temp / 'slurmctld.pid'}",
                f"SlurmdPidFile={temp / 'slurmd.pid'}",
                f"SlurmctldLogFile={temp / 'slurmctld.log'}",
                f"SlurmdLogFile={temp / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SchedulerType=sched/builtin",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MpiDefault=none",
                "ReturnToService=2",
                "MinJobAge=600",
                "KillWait=5",
                f"NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN",
                f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return conf


def _wait_until_idle(daemons: list[subprocess.Popen[bytes]], temp: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for daemon in daemons:
            if daemon.poll() is not None:
                name = Path(str(daemon.args[0])).name  # type: ignore[index]
                pytest.skip(f"{name} exited with {daemon.returncode}: {_logs(temp)}")
        state = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, check=False
        )
        if state.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    pytest.skip(f"the Slurm node was not idle after {START_SECONDS} s: {_logs(temp)}")


def _logs(temp: Path) -> str:
    text = " | ".join(
        line.strip()
        for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out")
        for line in _tail(temp / name, 5).splitlines()
        if "error" in line.lower() or "fatal" in line.lower()
    )
    return text[:600] or "(no error in the logs)"


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(daemon.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.wait(10)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
