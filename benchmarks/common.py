"""Helpers shared by the benchmark scripts: the machine, a quiet machine, timing, results.

Every script writes one JSON document to ``benchmarks/results/<name>.json`` (figures with their
units and targets, the command that made them, the machine and the load while measuring);
`benchmarks.run_all` turns those documents into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
SST2 = Path(os.environ.get("TUNEBOARD_SST2", REPO.parent / "shared" / "data" / "sst2"))

QUIET_CORES = 0.3
"""Cores kept busy by other processes below which the machine counts as quiet enough."""

MAX_WAIT = 20.0
"""Seconds a script waits at most for a quiet machine before each measurement."""

WAIT_BUDGET = [90.0]
"""Seconds one script process may spend waiting for quiet in all (on a machine that stays
busy, the later measurements do not wait at all, so a run's length stays bounded)."""


# --- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, core count, memory and library versions, for the figures' footnotes."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "memory_gib": round(_mem_total_kib() / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    for module in ("torch", "transformers", "duckdb", "pyarrow", "accelerate"):
        info[module] = _version(module)
    gpu = _gpu()
    if gpu:
        info["gpu"] = gpu
    return info


def _gpu() -> str | None:
    """The first CUDA GPU's name and memory and torch's CUDA version, when this process has
    imported torch already (never imported here: most scripts do not need it)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    count = torch.cuda.device_count()
    return (
        f"{props.name} ({props.total_memory // 2**20} MiB{f', {count} GPUs' if count > 1 else ''})"
        f", CUDA {torch.version.cuda}"
    )


def _cpu_model() -> str:
    """The ``model name`` of the first CPU in /proc/cpuinfo (the platform's name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


# --- a quiet machine -----------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (zeros where the system does not say)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores were busy over the next `seconds` (NaN where /proc/stat is missing).

    Called while this benchmark itself is idle, it tells how loaded the machine is by
    others; unlike the load average it does not remember the previous measurement.
    """
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return float("nan")
    cores = os.cpu_count() or 1
    return round(cores * (busy1 - busy0) / max(1.0, total1 - total0), 2)


def wait_for_quiet(
    threshold: float = QUIET_CORES, max_wait: float = MAX_WAIT, *, quiet: bool = False
) -> float:
    """Wait (at most `max_wait` s) until other processes keep fewer than `threshold` cores
    busy; return the busy cores when measuring starts (it may be above on timeout)."""
    started = time.monotonic()
    deadline = started + min(max_wait, WAIT_BUDGET[0])
    busy = busy_cores()
    while busy >= threshold and time.monotonic() < deadline:
        if not quiet:
            print(f"  {busy:.2f} cores busy: waiting for a quieter machine", flush=True)
        busy = busy_cores(2.0)
    WAIT_BUDGET[0] = max(0.0, WAIT_BUDGET[0] - (time.monotonic() - started))
    return busy


def other_load(wait: bool, max_wait: float = MAX_WAIT) -> float:
    """Busy cores just before a measurement: after waiting for quiet when `wait`, else
    measured over 0.5 s."""
    return wait_for_quiet(max_wait=max_wait) if wait else busy_cores(0.5)


# --- timing --------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median (NaN for no values)."""
    items = list(values)
    return statistics.median(items) if items else float("nan")


def interleaved(contenders: Sequence[str], reps: int, seed: int = 0) -> list[str]:
    """`reps` rounds of every contender, each round in a fresh seeded order (A B, B A ...),
    so a slow spell of the machine does not land on one contender only."""
    rng = random.Random(seed)
    order: list[str] = []
    for _ in range(reps):
        round_ = list(contenders)
        rng.shuffle(round_)
        order.extend(round_)
    return order


def steady_rate(store: Any, run_id: str, batch_size: int) -> float | None:
    """Rows per second of a tuneboard run's training alone, from the wall times of its log
    points (``train/lr``): over the spans between consecutive points that hold no
    evaluation (nor the checkpoint after it), so the steps before the first point (warm-up)
    and evaluations are left out. None without such a span."""
    evaluations = set(store.series(run_id, "val/loss", max_points=1_000_000).xs)
    steps = store.series(run_id, "train/lr", max_points=1_000_000).xs
    times = store.series(run_id, "train/lr", max_points=1_000_000, x="time").xs
    points = list(zip(steps, times, strict=True))
    spans = [
        (s1 - s0, t1 - t0)
        for (s0, t0), (s1, t1) in itertools.pairwise(points)
        if not any(s0 <= e < s1 for e in evaluations)
    ]
    seconds = sum(t for _, t in spans)
    if seconds <= 0:
        return None
    return float(sum(s for s, _ in spans) * batch_size / seconds)


# --- results -------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured number: what, how much, the unit, the target and whether it is met."""

    section: str
    name: str
    value: float | str | None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Result:
    """What one benchmark script measured, ready to be written as JSON."""

    name: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    skipped: str | None = None
    load_before: tuple[float, float, float] = field(default_factory=lambda: load_average())
    started: float = field(default_factory=time.time)

    def add(
        self, section: str, name: str, value: float | str | None, unit: str = "", **kw: Any
    ) -> None:
        """Append a figure."""
        self.figures.append(Figure(section, name, value, unit, **kw))

    def save(self, folder: Path = RESULTS) -> Path:
        """Write ``<folder>/<name>.json`` and return its path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        document = {
            "name": self.name,
            "command": self.command,
            "when": time.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": machine(),
            "seconds": round(time.time() - self.started, 1),
            "loads": [round(load, 2) for load in self.loads],
            "loadavg_before": list(self.load_before),
            "loadavg_after": list(load_average()),
            "skipped": self.skipped,
            "figures": [asdict(f) for f in self.figures],
            "details": self.details,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        return path


def command_line(module: str, argv: Sequence[str]) -> str:
    """The command that reproduces this run, as a user would type it (without ``--out``)."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            shown.append(arg)
    return " ".join(["python", "-m", module, *shown])


def results_folder(argv_out: str | None) -> Path:
    """Where to write results: `--out` when given, else ``benchmarks/results``."""
    return Path(argv_out) if argv_out else RESULTS
