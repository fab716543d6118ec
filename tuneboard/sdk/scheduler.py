"""A pool of device slots and a queue: runs wait for a free slot, then run in a thread.

The built-in `local` executor runs runs on it, and `RemoteExecutor` queues its jobs on it (one
slot per job it may follow at once); an executor plugin may use it as well. Devices are every
visible CUDA GPU (each with `slots_per_device` slots), else the CPU (with `cpu_slots` slots).
With `devices="auto"` they are found on the dispatcher thread, so that importing torch never
blocks the caller (the app's event loop, the CLI). Cancellation is cooperative: a queued job is
dropped, a running job's event is set and the job checks it between steps.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

JobFunction = Callable[[str, threading.Event], None]


@dataclass(frozen=True)
class Slot:
    """One place a run can execute: a device and the slot's number on it."""

    device: str
    number: int

    @property
    def label(self) -> str:
        """`cuda:0#1`-style name, used in thread names and logs."""
        return f"{self.device}#{self.number}"


@dataclass
class _Job:
    run_id: str
    function: JobFunction
    on_dropped: Callable[[], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    slot: Slot | None = None
    group: str | None = None
    group_limit: int | None = None


def detect_devices() -> list[str]:
    """Every visible CUDA GPU as `cuda:N`, or `["cpu"]` when there is none (imports torch)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] or ["cpu"]


def make_slots(devices: Sequence[str], slots_per_device: int, cpu_slots: int) -> list[Slot]:
    """The slots for a device list: `cpu_slots` on the CPU, `slots_per_device` on each GPU."""
    slots: list[Slot] = []
    for device in devices:
        count = cpu_slots if device == "cpu" else slots_per_device
        slots.extend(Slot(device, n) for n in range(count))
    return slots


def share_cpu_threads(cpu_slot_count: int) -> int:
    """Divide torch's intra-op threads between the CPU slots so runs don't oversubscribe.

    Sets torch's thread count when torch is imported already; otherwise sets
    ``OMP_NUM_THREADS``, which torch reads when the runs first import it (so this never pays
    for importing torch itself). Returns the threads each run gets.
    """
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, cpu_slot_count))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    elif threads != cores or "OMP_NUM_THREADS" in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


class Scheduler:
    """Runs submitted jobs on free slots, first come first served."""

    def __init__(
        self,
        devices: Sequence[str] | str = "auto",
        *,
        slots_per_device: int = 1,
        cpu_slots: int = 1,
        resolve_devices: Callable[[], list[str]] = detect_devices,
    ) -> None:
        self._devices_setting = devices
        self._slots_per_device = slots_per_device
        self._cpu_slots = cpu_slots
        self._resolve_devices = resolve_devices
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._running: dict[str, _Job] = {}
        self._free: list[Slot] | None = None
        self._dispatcher: threading.Thread | None = None
        self._closed = False

    # --- public ---------------------------------------------------------------------------

    def submit(
        self,
        run_id: str,
        function: JobFunction,
        on_dropped: Callable[[], None],
        *,
        group: str | None = None,
        group_limit: int | None = None,
    ) -> None:
        """Queue `function(device, cancel_event)` to run on the next free slot.

        `on_dropped` is called instead if the job is cancelled before it starts. Jobs of one
        `group` (a sweep) run at most `group_limit` at a time; the queue skips a job whose
        group is full, so other jobs still use the free slots.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the scheduler is shut down")
            job = _Job(run_id, function, on_dropped, group=group, group_limit=group_limit)
            self._queue.append(job)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name="tuneboard-scheduler", daemon=True
                )
                self._dispatcher.start()
            self._lock.notify_all()

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running job; False when the scheduler does not know it."""
        dropped: _Job | None = None
        with self._lock:
            if run_id in self._running:
                self._running[run_id].cancel.set()
                return True
            for job in self._queue:
                if job.run_id == run_id:
                    dropped = job
                    self._queue.remove(job)
                    self._lock.notify_all()
                    break
        if dropped is None:
            return False
        dropped.on_dropped()
        return True

    def active(self) -> list[str]:
        """Ids of queued and running jobs."""
        with self._lock:
            return [job.run_id for job in self._queue] + list(self._running)

    def running(self) -> dict[str, str]:
        """Running jobs and the device each runs on."""
        with self._lock:
            return {run_id: job.slot.device for run_id, job in self._running.items() if job.slot}

    def wait(self, run_ids: Iterable[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the given jobs (default: all) are done; False on timeout."""
        wanted = None if run_ids is None else set(run_ids)

        def done() -> bool:
            pending = self._pending()
            return not (pending & wanted if wanted is not None else pending)

        with self._lock:
            return self._lock.wait_for(done, timeout)

    def shutdown(self, *, cancel: bool = True, timeout: float | None = None) -> bool:
        """Stop accepting jobs; cancel the rest if asked; wait for running ones to end."""
        with self._lock:
            self._closed = True
            dropped = list(self._queue) if cancel else []
            if cancel:
                self._queue.clear()
                for job in self._running.values():
                    job.cancel.set()
            self._lock.notify_all()
        for job in dropped:
            job.on_dropped()
        return self.wait(timeout=timeout)

    # --- internals ------------------------------------------------------------------------

    def _pending(self) -> set[str]:
        return {job.run_id for job in self._queue} | set(self._running)

    def _slots(self) -> list[Slot]:
        setting = self._devices_setting
        devices = self._resolve_devices() if setting == "auto" else list(setting)
        slots = make_slots(devices, self._slots_per_device, self._cpu_slots)
        cpu_slot_count = sum(1 for slot in slots if slot.device == "cpu")
        if cpu_slot_count:  # with "auto" and with an explicit list such as ["cpu"]
            share_cpu_threads(cpu_slot_count)
        return slots

    def _dispatch(self) -> None:
        try:
            slots = self._slots()
        except Exception:
            # Without torch there is nothing to detect; runs then fail with their own clear error.
            log.exception("could not detect devices; using the CPU")
            slots = make_slots(["cpu"], self._slots_per_device, self._cpu_slots)
        with self._lock:
            self._free = slots
            while True:
                self._lock.wait_for(lambda: self._startable() or self._closed)
                if self._closed and not self._queue:
                    return
                while self._free and (job := self._next_job()) is not None:
                    self._queue.remove(job)
                    job.slot = self._free.pop(0)
                    self._running[job.run_id] = job
                    threading.Thread(
                        target=self._work, args=(job,), name=f"run-{job.run_id}", daemon=True
                    ).start()

    def _next_job(self) -> _Job | None:
        """The first queued job whose group (if any) is below its limit."""
        running: dict[str, int] = {}
        for job in self._running.values():
            if job.group is not None:
                running[job.group] = running.get(job.group, 0) + 1
        for job in self._queue:
            if job.group is None or job.group_limit is None:
                return job
            if running.get(job.group, 0) < job.group_limit:
                return job
        return None

    def _startable(self) -> bool:
        return bool(self._free) and self._next_job() is not None

    def _work(self, job: _Job) -> None:
        assert job.slot is not None
        try:
            job.function(job.slot.device, job.cancel)
        except Exception:  # the job reports its own failures; this is a last resort
            log.exception("run %s raised out of its job function", job.run_id)
        finally:
            with self._lock:
                del self._running[job.run_id]
                assert self._free is not None
                self._free.append(job.slot)
                self._free.sort(key=lambda slot: (slot.device, slot.number))
                self._lock.notify_all()
