"""A pool of device slots and a queue: runs wait for a free slot, then run in a thread.

The built-in `local` executor runs runs on it, and `RemoteExecutor` queues its jobs on it (one
slot per job it may follow at once); an executor plugin may use it as well. Devices are every
visible CUDA GPU (each with `slots_per_device` slots), else the CPU (with `cpu_slots` slots).
With `devices="auto"` they are found on the dispatcher thread, so that importing torch never
blocks the caller (the app's event loop, the CLI). Cancellation is cooperative: a queued job is
dropped, a running job's event is set and the job checks it between steps.

A `QueuePolicy` (the engine's, over the database) steers the queue: the order of the queued
runs, runs held back, runs pinned to one device, a paused queue, and runs that wait for
memory. The scheduler asks it again every `recheck` seconds (and on `nudge()`); `next_start`
is the rule, a pure function.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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
    slots: tuple[Slot, ...] = ()
    group: str | None = None
    group_limit: int | None = None
    devices_wanted: int = 1

    @property
    def device(self) -> str:
        """The device the job runs on; a multi-device job's devices joined by commas (on the
        CPU, "cpu" once per device wanted, however many CPU slots it holds)."""
        if self.devices_wanted > 1 and all(slot.device == "cpu" for slot in self.slots):
            return ",".join(["cpu"] * self.devices_wanted)
        return ",".join(slot.device for slot in self.slots)


@dataclass(frozen=True)
class QueueRules:
    """How the queue is steered: what a `QueuePolicy` reads from wherever the user set it.

    `order` lists run ids placed by the user, first first; queued runs not in it follow, in
    the order they were submitted. A `held` run stays queued; a `pinned` run starts only on
    its device; while `paused`, nothing starts.
    """

    paused: bool = False
    order: tuple[str, ...] = ()
    held: frozenset[str] = frozenset()
    pinned: Mapping[str, str] = field(default_factory=dict)


class QueuePolicy(Protocol):
    """What steers a `Scheduler`'s queue (the engine implements it over the database).

    Both methods are called on the dispatcher thread with the scheduler's lock held: they
    must be quick and must not call the scheduler.
    """

    def rules(self) -> QueueRules:
        """The latest rules (from memory: no I/O)."""
        ...

    def memory_wait(self, run_id: str, device: str, running: Mapping[str, str]) -> str | None:
        """Why `run_id` cannot start on `device` now for lack of memory, or None if it can.

        `running` maps the runs running on this scheduler to their devices.
        """
        ...


PAUSED = "queue paused"
HELD = "held"
NO_SLOT = "waits for a free slot"


def next_start(
    queued: Sequence[str],
    free: Sequence[Slot],
    devices: Sequence[str],
    rules: QueueRules,
    *,
    group_full: Callable[[str], bool] = lambda run_id: False,
    memory_wait: Callable[[str, str], str | None] = lambda run_id, device: None,
    wanted: Callable[[str], int] = lambda run_id: 1,
) -> tuple[tuple[str, tuple[Slot, ...]] | None, dict[str, str]]:
    """The queued run to start next and its slots (None: none can), and why the runs before
    it wait (all of them when none can start).

    `queued` is in submission order, `free` the free slots, `devices` every device of the
    scheduler, `wanted` how many devices a run needs together (`gpus = N`). Runs go in
    `rules.order`, then the rest; a run that cannot start (held, its sweep full, its pinned
    device busy, short of memory) does not block the runs after it, except a multi-device
    run short of free slots: the runs after it wait for it, so that single-device runs
    cannot keep it waiting for ever. Slots are taken all at once or not at all.
    """
    if rules.paused:
        return None, dict.fromkeys(queued, PAUSED)
    placed = {run_id: n for n, run_id in enumerate(rules.order)}
    ordered = sorted(
        queued, key=lambda run_id: (run_id not in placed, placed.get(run_id, 0))
    )  # stable: the unplaced keep their submission order
    reasons: dict[str, str] = {}
    for run_id in ordered:
        if run_id in rules.held:
            reasons[run_id] = HELD
            continue
        if group_full(run_id):
            reasons[run_id] = "its sweep runs its max_parallel runs already"
            continue
        pin = rules.pinned.get(run_id)
        if pin is not None and pin not in devices:
            reasons[run_id] = f"pinned to {pin}, which this process does not use"
            continue
        count = wanted(run_id)
        if count > 1:
            chosen, why = _several(
                count, free, devices, pin, functools.partial(memory_wait, run_id)
            )
            if chosen:
                return (run_id, chosen), reasons
            reasons[run_id] = why
            if why.startswith(NO_SLOT):
                behind = f"waits behind {run_id}, which needs {count} devices together"
                later = ordered[ordered.index(run_id) + 1 :]
                reasons.update(dict.fromkeys(later, behind))
                return None, reasons
            continue
        slots = [slot for slot in free if pin is None or slot.device == pin]
        if not slots:
            reasons[run_id] = f"waits for {pin}" if pin is not None else NO_SLOT
            continue
        short: str | None = None
        for slot in slots:
            short = memory_wait(run_id, slot.device)
            if short is None:
                return (run_id, (slot,)), reasons
        assert short is not None
        reasons[run_id] = short
    return None, reasons


def _several(
    count: int,
    free: Sequence[Slot],
    devices: Sequence[str],
    pin: str | None,
    memory_wait: Callable[[str], str | None],
) -> tuple[tuple[Slot, ...], str]:
    """Slots for a run on `count` devices together, or () and why not.

    GPUs: one slot on each of `count` distinct GPUs (the pinned one among them). The CPU
    alone: `count` CPU slots (the scheduler asks for no more than it has).
    """
    gpus = [device for device in devices if device != "cpu"]
    if not gpus:
        cpu_slots = [slot for slot in free if slot.device == "cpu"]
        if len(cpu_slots) < count:
            return (), f"{NO_SLOT} ({count} CPU slots together)"
        return tuple(cpu_slots[:count]), ""
    if count > len(gpus):
        return (), f"needs {count} GPUs together; this process has {len(gpus)}"
    first: dict[str, Slot] = {}
    for slot in free:
        if slot.device != "cpu":
            first.setdefault(slot.device, slot)
    order = sorted(first, key=lambda device: device != pin)
    chosen: list[Slot] = []
    why = ""
    for device in order:
        reason = memory_wait(device)
        if reason is None:
            chosen.append(first[device])
        else:
            why = reason
    if pin is not None and (not chosen or chosen[0].device != pin):
        return (), why or f"waits for {pin}"
    if len(chosen) < count:
        return (), why or f"{NO_SLOT} ({count} GPUs together)"
    return tuple(chosen[:count]), ""


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
        policy: QueuePolicy | None = None,
        recheck: float = 1.0,
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
        self._policy = policy
        self._recheck = recheck
        self._devices: list[str] = []
        self._waiting: dict[str, str] = {}

    # --- public ---------------------------------------------------------------------------

    def submit(
        self,
        run_id: str,
        function: JobFunction,
        on_dropped: Callable[[], None],
        *,
        group: str | None = None,
        group_limit: int | None = None,
        devices: int = 1,
    ) -> None:
        """Queue `function(device, cancel_event)` to run on the next free slot.

        `on_dropped` is called instead if the job is cancelled before it starts. Jobs of one
        `group` (a sweep) run at most `group_limit` at a time; the queue skips a job whose
        group is full, so other jobs still use the free slots. A job that wants several
        `devices` (a data-parallel run) gets a slot on each of that many GPUs at once, or as
        many CPU slots as it wants and there are, and is called with their devices joined by
        commas (``"cuda:0,cuda:1"``; ``"cpu,cpu"`` on the CPU).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the scheduler is shut down")
            job = _Job(
                run_id,
                function,
                on_dropped,
                group=group,
                group_limit=group_limit,
                devices_wanted=max(1, devices),
            )
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
        """Running jobs and the device each runs on (several joined by commas)."""
        with self._lock:
            return {run_id: job.device for run_id, job in self._running.items()}

    def queued(self) -> list[str]:
        """Ids of the queued jobs, in submission order."""
        with self._lock:
            return [job.run_id for job in self._queue]

    def waiting(self) -> dict[str, str]:
        """Why each queued job waits, as of the dispatcher's last look."""
        with self._lock:
            queued = {job.run_id for job in self._queue}
            return {run_id: why for run_id, why in self._waiting.items() if run_id in queued}

    def nudge(self) -> None:
        """Look at the queue again now (the policy's rules changed)."""
        with self._lock:
            self._lock.notify_all()

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
        # Without a policy nothing changes but what wakes the dispatcher; with one, its rules
        # (and free memory) may change at any time, so look again every `recheck` seconds.
        timeout = None if self._policy is None else self._recheck
        with self._lock:
            self._free = slots
            self._devices = sorted({slot.device for slot in slots})
            while True:
                self._lock.wait_for(lambda: self._startable() or self._closed, timeout)
                if self._closed and not self._queue:
                    return
                while (choice := self._choose()) is not None:
                    job, taken = choice
                    self._queue.remove(job)
                    for slot in taken:
                        self._free.remove(slot)
                    job.slots = taken
                    self._running[job.run_id] = job
                    threading.Thread(
                        target=self._work, args=(job,), name=f"run-{job.run_id}", daemon=True
                    ).start()

    def _choose(self) -> tuple[_Job, tuple[Slot, ...]] | None:
        """The job to start next and its slots (see `next_start`); keeps why the others wait."""
        if self._free is None:
            return None
        running: dict[str, int] = {}
        for job in self._running.values():
            if job.group is not None:
                running[job.group] = running.get(job.group, 0) + 1
        jobs = {job.run_id: job for job in self._queue}

        def group_full(run_id: str) -> bool:
            job = jobs[run_id]
            if job.group is None or job.group_limit is None:
                return False
            return running.get(job.group, 0) >= job.group_limit

        policy = self._policy
        rules = QueueRules() if policy is None else policy.rules()
        memory_wait: Callable[[str, str], str | None] = lambda run_id, device: None  # noqa: E731
        if policy is not None:
            devices = {run_id: job.device for run_id, job in self._running.items()}
            memory_wait = lambda run_id, device: policy.memory_wait(  # noqa: E731
                run_id, device, devices
            )
        choice, self._waiting = next_start(
            list(jobs),
            self._free,
            self._devices,
            rules,
            group_full=group_full,
            memory_wait=memory_wait,
            wanted=lambda run_id: self._wanted(jobs[run_id]),
        )
        if choice is None:
            return None
        return jobs[choice[0]], choice[1]

    def _wanted(self, job: _Job) -> int:
        """How many slots `job` needs together: its devices, but on a machine without GPUs
        no more than the CPU slots there are (its ranks then share them)."""
        if job.devices_wanted == 1 or any(device != "cpu" for device in self._devices):
            return job.devices_wanted
        cpu_slots = sum(1 for run in self._running.values() for _ in run.slots)
        cpu_slots += len(self._free or [])
        return min(job.devices_wanted, max(1, cpu_slots))

    def _startable(self) -> bool:
        return self._choose() is not None

    def _work(self, job: _Job) -> None:
        assert job.slots
        try:
            job.function(job.device, job.cancel)
        except Exception:  # the job reports its own failures; this is a last resort
            log.exception("run %s raised out of its job function", job.run_id)
        finally:
            with self._lock:
                del self._running[job.run_id]
                assert self._free is not None
                self._free.extend(job.slots)
                self._free.sort(key=lambda slot: (slot.device, slot.number))
                self._lock.notify_all()
