"""The scheduler: slots, queueing, cancellation and shutdown, with real threads."""

from __future__ import annotations

import threading
import time

from tuneboard.sdk.scheduler import Scheduler, Slot, make_slots


class Recorder:
    """Job functions that block until released and record where and when they ran."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[tuple[str, str]] = []
        self.running = 0
        self.peak = 0
        self.release = threading.Event()
        self.dropped: list[str] = []
        self.cancelled: list[str] = []

    def job(self, run_id: str):  # type: ignore[no-untyped-def]
        def function(device: str, cancel: threading.Event) -> None:
            with self.lock:
                self.started.append((run_id, device))
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                while not self.release.is_set():
                    if cancel.is_set():
                        self.cancelled.append(run_id)
                        return
                    time.sleep(0.005)
            finally:
                with self.lock:
                    self.running -= 1

        return function

    def submit(self, scheduler: Scheduler, run_id: str) -> None:
        scheduler.submit(run_id, self.job(run_id), lambda: self.dropped.append(run_id))


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_slots_per_device() -> None:
    slots = make_slots(["cuda:0", "cuda:1", "cpu"], slots_per_device=2, cpu_slots=1)
    assert slots == [
        Slot("cuda:0", 0),
        Slot("cuda:0", 1),
        Slot("cuda:1", 0),
        Slot("cuda:1", 1),
        Slot("cpu", 0),
    ]


def test_runs_wait_for_a_free_slot_and_start_in_order() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"], cpu_slots=2)
    for n in range(5):
        recorder.submit(scheduler, f"r{n}")
    wait_until(lambda: len(recorder.started) == 2)
    time.sleep(0.05)
    assert [r for r, _ in recorder.started] == ["r0", "r1"]  # the rest wait in the queue
    assert scheduler.active() == ["r2", "r3", "r4", "r0", "r1"]
    recorder.release.set()
    assert scheduler.wait(timeout=5)
    assert [r for r, _ in recorder.started] == ["r0", "r1", "r2", "r3", "r4"]
    assert recorder.peak == 2
    assert {device for _, device in recorder.started} == {"cpu"}


def test_each_gpu_slot_is_used() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cuda:0", "cuda:1"], slots_per_device=2)
    for n in range(4):
        recorder.submit(scheduler, f"r{n}")
    wait_until(lambda: len(recorder.started) == 4)
    assert sorted(device for _, device in recorder.started) == [
        "cuda:0",
        "cuda:0",
        "cuda:1",
        "cuda:1",
    ]
    assert scheduler.running() == dict(recorder.started)
    recorder.release.set()
    assert scheduler.wait(timeout=5)


def test_cancel_a_queued_run_drops_it_without_running() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"])
    recorder.submit(scheduler, "first")
    recorder.submit(scheduler, "second")
    wait_until(lambda: len(recorder.started) == 1)
    assert scheduler.cancel("second")
    assert recorder.dropped == ["second"]
    recorder.release.set()
    assert scheduler.wait(timeout=5)
    assert [r for r, _ in recorder.started] == ["first"]


def test_cancel_a_running_run_sets_its_flag() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"])
    recorder.submit(scheduler, "busy")
    wait_until(lambda: len(recorder.started) == 1)
    assert scheduler.cancel("busy")
    assert scheduler.wait(["busy"], timeout=5)
    assert recorder.cancelled == ["busy"]
    assert not scheduler.cancel("busy")  # no longer known


def test_wait_times_out_while_runs_are_busy() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"])
    recorder.submit(scheduler, "slow")
    assert not scheduler.wait(timeout=0.1)
    recorder.release.set()
    assert scheduler.wait(timeout=5)


def test_wait_for_some_runs_only() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"], cpu_slots=2)
    scheduler.submit("quick", lambda device, cancel: None, lambda: None)
    recorder.submit(scheduler, "slow")
    assert scheduler.wait(["quick"], timeout=5)
    assert not scheduler.wait(["slow"], timeout=0.05)
    recorder.release.set()
    assert scheduler.wait(timeout=5)


def test_shutdown_cancels_running_and_drops_queued() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"])
    for n in range(3):
        recorder.submit(scheduler, f"r{n}")
    wait_until(lambda: len(recorder.started) == 1)
    assert scheduler.shutdown(cancel=True, timeout=5)
    assert recorder.cancelled == ["r0"]
    assert sorted(recorder.dropped) == ["r1", "r2"]
    assert scheduler.active() == []


def test_a_job_that_raises_frees_its_slot() -> None:
    scheduler = Scheduler(["cpu"])

    def broken(device: str, cancel: threading.Event) -> None:
        raise RuntimeError("boom")

    ran = threading.Event()
    scheduler.submit("broken", broken, lambda: None)
    scheduler.submit("next", lambda device, cancel: ran.set(), lambda: None)
    assert scheduler.wait(timeout=5)
    assert ran.is_set()


def test_auto_devices_are_resolved_off_the_calling_thread() -> None:
    calls: list[str] = []

    def resolve() -> list[str]:
        calls.append(threading.current_thread().name)
        return ["cpu"]

    scheduler = Scheduler("auto", resolve_devices=resolve)
    done = threading.Event()
    scheduler.submit("r", lambda device, cancel: done.set(), lambda: None)
    assert done.wait(5)
    assert calls == ["tuneboard-scheduler"]
