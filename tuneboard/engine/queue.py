"""The engine's `QueuePolicy`: the queue rules people set in the database, and memory waits.

While it has queued runs, the engine's poll thread (see `Engine`) reads the queue's rules
from the store about once a second, through the writer's read after each batch when there is
one (`Store.controls`), and hands them here with `update`; the scheduler's dispatcher asks
`rules()` and `memory_wait()` from memory. A run with a `memory_gb` estimate starts on a GPU
only when the GPU has that much free and its total less the estimates of this process's runs
already on it is that much too (two runs started in one moment must not both count the same
free memory). There is no check on the CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from tuneboard.engine.devices import GB, free_memory
from tuneboard.sdk.scheduler import QueueRules


class StoreQueuePolicy:
    """The rules of the database's queue, as last read, and each run's memory estimate."""

    def __init__(self, measure: Callable[[str], tuple[float, float] | None] = free_memory) -> None:
        self._measure = measure
        self._lock = threading.Lock()
        self._rules = QueueRules()
        self._memory: dict[str, float] = {}

    def expect(self, run_id: str, memory_gb: float | None) -> None:
        """Remember that `run_id` needs `memory_gb` GB of GPU memory (None: no estimate)."""
        with self._lock:
            if memory_gb is None:
                self._memory.pop(run_id, None)
            else:
                self._memory[run_id] = float(memory_gb)

    def update(self, rules: QueueRules) -> None:
        """Take the queue's rules as read from the database (`Store.controls`)."""
        with self._lock:
            self._rules = rules

    def rules(self) -> QueueRules:
        """The rules as last read."""
        with self._lock:
            return self._rules

    def memory_wait(self, run_id: str, device: str, running: Mapping[str, str]) -> str | None:
        """Why `run_id` cannot start on `device` for lack of memory; None when it can (or
        has no estimate, or `device` is not a GPU whose memory is known)."""
        with self._lock:
            need = self._memory.get(run_id)
            reserved = sum(
                self._memory.get(other, 0.0)
                for other, devices in running.items()
                if device in devices.split(",")  # a multi-GPU run's memory is per GPU
            )
        if need is None or not device.startswith("cuda"):
            return None
        measured = self._measure(device)
        if measured is None:
            return None
        free, total = measured[0] / GB, measured[1] / GB
        available = min(free, total - reserved)
        if need <= available:
            return None
        return f"needs {need:g} GB; {device} has {max(available, 0.0):.1f} GB free"
