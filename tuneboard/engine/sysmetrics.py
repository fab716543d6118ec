"""System metrics of running runs: one sampler thread per process writes ``sys/...`` points.

Every `interval` seconds (the project's ``sys_metrics_interval``; 0 turns it off) the sampler
reads the process's CPU and memory once, and each running run's device, and writes one point
per run through the run's recorder (`RunRecorder.log_metrics`: the store's batched write path).
A point goes at the running stage's highest logged step (`RunEnvironment.position`), so it
lines up with training on the run-wide axis without making the stage any longer.

Runs of one process share it (they are threads): `sys/process_cpu_percent` (percent of one
core, over the last interval) and `sys/process_rss_mb` are the whole process's, the same for
every run it holds. `sys/gpu_util` (percent) and `sys/gpu_mem_mb` are the run's device's: read
through NVML when `nvidia-ml-py` is installed (the whole device, every process on it), else
``torch.cuda.memory_reserved`` when torch has CUDA started (this process's memory; no
utilisation). A run on the CPU or MPS has no GPU figures.

Sampling never fails a run: a read or a write that raises is skipped (logged once per kind).
The thread starts with the first watched run and ends when the last one stops.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tuneboard.sdk.recording import RunRecorder
from tuneboard.store.schema import SYSTEM_PREFIX

log = logging.getLogger(__name__)

CPU = f"{SYSTEM_PREFIX}process_cpu_percent"
RSS = f"{SYSTEM_PREFIX}process_rss_mb"
GPU_UTIL = f"{SYSTEM_PREFIX}gpu_util"
GPU_MEM = f"{SYSTEM_PREFIX}gpu_mem_mb"
NAMES = (CPU, RSS, GPU_UTIL, GPU_MEM)

Position = Callable[[], "tuple[int, int] | None"]
"""The run's running stage row and its highest logged step now; None between stages."""

_MIB = 2**20


class SystemProbe:
    """Reads the figures: the process's CPU and RSS, and a device's utilisation and memory.

    `pid` is the process to read (this one by default). Any read may raise; the sampler
    skips what raises.
    """

    def __init__(self, pid: int | None = None) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._process.cpu_percent(None)  # the first call only starts the measurement
        self._nvml: Any = None
        self._nvml_tried = False

    def process(self) -> dict[str, float]:
        """The process's CPU (percent of one core since the last call) and resident memory."""
        with self._process.oneshot():
            cpu = self._process.cpu_percent(None)
            rss = self._process.memory_info().rss
        return {CPU: float(cpu), RSS: rss / _MIB}

    def device(self, device: str) -> dict[str, float]:
        """`device`'s utilisation and memory used (nothing for the CPU or MPS)."""
        if not device.startswith("cuda"):
            return {}
        index = int(device.partition(":")[2] or 0)
        nvml = self._load_nvml()
        if nvml is not None:
            handle = _nvml_handle(nvml, index)
            util = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            used = nvml.nvmlDeviceGetMemoryInfo(handle).used
            return {GPU_UTIL: float(util), GPU_MEM: used / _MIB}
        torch = sys.modules.get("torch")  # never imported for this
        if torch is not None and torch.cuda.is_initialized():
            return {GPU_MEM: torch.cuda.memory_reserved(index) / _MIB}
        return {}

    def _load_nvml(self) -> Any:
        if not self._nvml_tried:
            self._nvml_tried = True
            try:
                nvml = importlib.import_module("pynvml")
                nvml.nvmlInit()
                self._nvml = nvml
            except Exception:  # not installed, or no driver: fall back to torch
                self._nvml = None
        return self._nvml


def _nvml_handle(nvml: Any, index: int) -> Any:
    """The NVML handle of CUDA device `index`: NVML counts every GPU, CUDA only the visible."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    if os.environ.get("CUDA_VISIBLE_DEVICES") and index < len(visible):
        entry = visible[index]
        if entry.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(entry))
        return nvml.nvmlDeviceGetHandleByUUID(entry)
    return nvml.nvmlDeviceGetHandleByIndex(index)


@dataclass
class _Watched:
    run_id: str
    device: str
    recorder: RunRecorder
    interval: float
    position: Position
    due: float = field(default_factory=time.monotonic)


class SystemSampler:
    """The process's one sampler thread and the runs it samples (see the module)."""

    def __init__(self, probe: SystemProbe | None = None) -> None:
        self.probe = probe
        self._cond = threading.Condition()
        self._runs: dict[str, _Watched] = {}
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self.samples = 0  # rounds taken since the process started (for the benchmark)

    @property
    def running(self) -> bool:
        """True while the sampler thread lives."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def watch(
        self, run_id: str, device: str, recorder: RunRecorder, interval: float, position: Position
    ) -> None:
        """Sample `run_id` every `interval` seconds (nothing when 0) until `unwatch`."""
        if interval <= 0:
            return
        with self._cond:
            self._runs[run_id] = _Watched(run_id, device, recorder, interval, position)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="tuneboard-sys-metrics", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def unwatch(self, run_id: str) -> None:
        """Stop sampling `run_id`: once this returns, nothing more is written for it."""
        with self._cond:
            self._runs.pop(run_id, None)
            self._cond.notify_all()

    @contextmanager
    def watching(
        self, run_id: str, device: str, recorder: RunRecorder, interval: float, position: Position
    ) -> Iterator[None]:
        """`watch` for the length of the block."""
        self.watch(run_id, device, recorder, interval, position)
        try:
            yield
        finally:
            self.unwatch(run_id)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (it does once no run is watched); False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _loop(self) -> None:
        first = True  # the CPU figure of a first round covers the time since the last one
        while True:
            with self._cond:
                if not self._runs:
                    return
                now = time.monotonic()
                wait = min(run.due for run in self._runs.values()) - now
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                due = [run for run in self._runs.values() if run.due <= now]
                for run in due:
                    run.due = now + run.interval
            self._sample(due, first)
            first = False

    def _sample(self, due: list[_Watched], first: bool = False) -> None:
        if self.probe is None:
            self.probe = self._guard("probe", SystemProbe) or None
            if self.probe is None:
                return
        probe = self.probe
        shared = self._guard("process", probe.process) or {}
        if first:  # it only starts the measurement: since the thread last ran, or nothing
            shared.pop(CPU, None)
        devices: dict[str, Mapping[str, float]] = {}
        for run in due:
            if run.device not in devices:
                devices[run.device] = self._guard("device", probe.device, run.device) or {}
        self.samples += 1
        wall = time.time()
        with self._cond:  # under the lock: `unwatch` returns only after the last write
            for run in due:
                if run.run_id not in self._runs:
                    continue
                values = {**shared, **devices[run.device]}
                where = run.position()
                if values and where is not None:
                    stage, step = where
                    record = run.recorder.log_metrics
                    self._guard("write", record, run.run_id, stage, step, values, wall)

    def _guard(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)`, or None when it raises (logged once per kind of call)."""
        try:
            return call(*args)
        except Exception:
            if what not in self._warned:
                self._warned.add(what)
                log.warning("system metrics: the %s read failed; skipped", what, exc_info=True)
            return None


SAMPLER = SystemSampler()
"""The process's sampler: every run of the process registers with it while it runs."""
