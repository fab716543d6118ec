"""The queue: the rule that picks what starts (order, holds, pins, pause, memory), the
scheduler obeying a policy with real threads, the engine's policy, and the queue's tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.unit.test_scheduler import Recorder, wait_until
from tuneboard.engine.devices import GB, cpu_figures
from tuneboard.engine.queue import StoreQueuePolicy
from tuneboard.sdk.errors import TuneboardError
from tuneboard.sdk.scheduler import (
    HELD,
    NO_SLOT,
    PAUSED,
    QueueRules,
    Scheduler,
    Slot,
    next_start,
)
from tuneboard.store import Store
from tuneboard.store.queue import QueueEntry, QueueState, moved, queued_entry

CPU = [Slot("cpu", 0)]
GPUS = [Slot("cuda:0", 0), Slot("cuda:1", 0)]


# --- the rule --------------------------------------------------------------------------------


def test_without_rules_the_first_submitted_starts_on_the_first_free_slot() -> None:
    choice, reasons = next_start(["a", "b"], CPU, ["cpu"], QueueRules())
    assert choice == ("a", (CPU[0],))
    assert reasons == {}


def test_the_order_puts_placed_runs_first_and_the_rest_in_submission_order() -> None:
    rules = QueueRules(order=("c", "b"))
    choice, _ = next_start(["a", "b", "c", "d"], CPU, ["cpu"], rules)
    assert choice == ("c", (CPU[0],))
    _, reasons = next_start(["a", "b", "c", "d"], [], ["cpu"], rules)
    assert list(reasons) == ["c", "b", "a", "d"]
    assert set(reasons.values()) == {NO_SLOT}


def test_a_held_run_is_skipped_and_does_not_block_the_next() -> None:
    choice, reasons = next_start(["a", "b"], CPU, ["cpu"], QueueRules(held=frozenset({"a"})))
    assert choice == ("b", (CPU[0],))
    assert reasons == {"a": HELD}


def test_nothing_starts_while_paused() -> None:
    choice, reasons = next_start(["a", "b"], CPU, ["cpu"], QueueRules(paused=True))
    assert choice is None
    assert reasons == {"a": PAUSED, "b": PAUSED}


def test_a_pinned_run_starts_only_on_its_device() -> None:
    rules = QueueRules(pinned={"a": "cuda:1"})
    assert next_start(["a"], GPUS, ["cuda:0", "cuda:1"], rules)[0] == ("a", (GPUS[1],))
    choice, reasons = next_start(["a", "b"], GPUS[:1], ["cuda:0", "cuda:1"], rules)
    assert choice == ("b", (GPUS[0],))  # cuda:1 is busy: the next run takes cuda:0
    assert reasons == {"a": "waits for cuda:1"}
    choice, reasons = next_start(["a"], CPU, ["cpu"], rules)
    assert choice is None
    assert "does not use" in reasons["a"]


def test_a_run_short_of_memory_waits_and_others_go_on() -> None:
    def memory_wait(run_id: str, device: str) -> str | None:
        return (
            "needs 40 GB" if run_id == "big" or (device == "cuda:0" and run_id == "mid") else None
        )

    choice, reasons = next_start(
        ["big", "mid"], GPUS, ["cuda:0", "cuda:1"], QueueRules(), memory_wait=memory_wait
    )
    assert choice == ("mid", (GPUS[1],))  # not on cuda:0, where it does not fit
    assert reasons == {"big": "needs 40 GB"}


def test_moved() -> None:
    order = ["a", "b", "c"]
    assert moved(order, "b", "up") == ["b", "a", "c"]
    assert moved(order, "a", "up") == order
    assert moved(order, "b", "down") == ["a", "c", "b"]
    assert moved(order, "c", "down") == order
    assert moved(order, "c", "top") == ["c", "a", "b"]
    assert moved(order, "a", "bottom") == ["b", "c", "a"]


# --- the scheduler, with a policy --------------------------------------------------------


class Rules:
    """A policy whose rules the test sets; memory never short."""

    def __init__(self) -> None:
        self.current = QueueRules()

    def rules(self) -> QueueRules:
        return self.current

    def memory_wait(self, run_id: str, device: str, running: Mapping[str, str]) -> str | None:
        return None


def test_the_scheduler_obeys_holds_order_and_pause() -> None:
    recorder = Recorder()
    policy = Rules()
    policy.current = QueueRules(paused=True)
    scheduler = Scheduler(["cpu"], policy=policy, recheck=0.05)
    for name in ("a", "b", "c"):
        recorder.submit(scheduler, name)
    wait_until(lambda: scheduler.waiting() == {"a": PAUSED, "b": PAUSED, "c": PAUSED})
    assert recorder.started == []
    policy.current = QueueRules(order=("c",), held=frozenset({"a"}))
    scheduler.nudge()
    wait_until(lambda: len(recorder.started) == 1)
    assert recorder.started == [("c", "cpu")]
    wait_until(lambda: scheduler.waiting() == {"a": HELD, "b": NO_SLOT})
    recorder.release.set()
    wait_until(lambda: len(recorder.started) == 2)
    assert recorder.started[1] == ("b", "cpu")
    wait_until(lambda: scheduler.waiting() == {"a": HELD})
    assert scheduler.queued() == ["a"]
    policy.current = QueueRules()  # released: it starts without a nudge, at the recheck
    assert scheduler.wait(timeout=5)
    assert [run for run, _ in recorder.started] == ["c", "b", "a"]


# --- the engine's policy ---------------------------------------------------------------------


def _state(*entries: QueueEntry, paused: bool = False) -> QueueState:
    return QueueState(paused, entries)


def _entry(run_id: str, **kwargs: object) -> QueueEntry:
    values: dict[str, object] = {
        "experiment": "e",
        "created_at": 0.0,
        "position": None,
        "held": False,
        "pinned": None,
        "waiting": None,
        "memory_gb": None,
    }
    values.update(kwargs)
    return QueueEntry(run_id, **values)  # type: ignore[arg-type]


def test_the_policy_takes_the_rules_it_is_given() -> None:
    policy = StoreQueuePolicy(measure=lambda device: None)
    assert policy.rules() == QueueRules()
    rules = QueueRules(paused=True, order=("b",), held=frozenset({"a"}))
    policy.update(rules)
    assert policy.rules() is rules


def test_the_memory_check_counts_free_memory_and_this_processes_estimates() -> None:
    free = {"cuda:0": (10 * GB, 24 * GB)}
    policy = StoreQueuePolicy(measure=free.get)
    policy.expect("big", 12)
    policy.expect("small", 8)
    policy.expect("other", 17)
    assert policy.memory_wait("big", "cuda:0", {}) == "needs 12 GB; cuda:0 has 10.0 GB free"
    assert policy.memory_wait("small", "cuda:0", {}) is None
    # 24 GB in all, 17 of it promised to a run that started but may not have allocated yet
    assert policy.memory_wait("small", "cuda:0", {"other": "cuda:0"}) is not None
    assert policy.memory_wait("small", "cuda:0", {"other": "cuda:1"}) is None
    assert policy.memory_wait("big", "cpu", {}) is None  # no check on the CPU
    assert policy.memory_wait("big", "cuda:1", {}) is None  # memory unknown: no check
    policy.expect("big", None)
    assert policy.memory_wait("big", "cuda:0", {}) is None


def test_cpu_figures_without_a_gpu() -> None:
    figures = cpu_figures()
    assert figures.device == "cpu"
    assert figures.cores and figures.cores >= 1
    assert figures.memory_total and 0 < (figures.memory_used or 0) <= figures.memory_total


# --- the tables ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "db.duckdb") as store:
        yield store


def _queued(store: Store, *ids: str) -> None:
    for n, run_id in enumerate(ids):
        store.create_run(run_id, "e", {"memory_gb": 2.5} if n == 0 else {}, at=1000.0 + n)
    store.flush()


def test_the_queue_in_the_database(store: Store) -> None:
    _queued(store, "r0", "r1", "r2", "r3")
    assert store.queue().order == ("r0", "r1", "r2", "r3")
    assert store.queue().entries[0].memory_gb == 2.5
    store.set_queue_order(moved(store.queue().order, "r2", "top"))
    store.set_held("r1", True)
    store.set_pin("r3", "cuda:1")
    store.set_queue_paused(True)
    store.set_queue_waiting({"r0": "waits for a free slot"})
    store.flush()
    state = store.queue()
    assert state.paused
    assert state.order == ("r2", "r0", "r1", "r3")
    assert state.entry("r1") == _entry(
        "r1", created_at=1001.0, position=3, held=True, experiment="e"
    )
    assert state.entry("r3").pinned == "cuda:1"  # type: ignore[union-attr]
    assert state.entry("r0").waiting == "waits for a free slot"  # type: ignore[union-attr]
    assert store.controls(["r0"]) == (
        [],
        QueueRules(
            paused=True,
            order=("r2", "r0", "r1", "r3"),
            held=frozenset({"r1"}),
            pinned={"r3": "cuda:1"},
        ),
    )
    assert store.controls(["r0"], rules=False) == ([], None)
    store.set_run_status("r2", "running")  # leaving the queue drops its row
    store.set_queue_waiting({"r2": "waits for a free slot"})  # read before it started: ignored
    store.delete_run("r1")
    store.set_queue_paused(False)
    store.flush()
    assert store.queue() == _state(
        _entry("r0", created_at=1000.0, position=2, waiting="waits for a free slot", memory_gb=2.5),
        _entry("r3", created_at=1003.0, position=4, pinned="cuda:1"),
    )
    with store.database.cursor() as cur:
        assert cur.execute("SELECT run_id FROM queue ORDER BY run_id").fetchall() == [
            ("r0",),
            ("r3",),
        ]


def test_a_run_not_queued_is_refused_in_one_line(store: Store) -> None:
    _queued(store, "r0")
    with pytest.raises(TuneboardError, match="run r9 is running, not queued"):
        queued_entry(store.queue(), "r9", "running")


# --- runs on several devices together (gpus = N) ----------------------------------------------


def test_a_multi_gpu_run_takes_a_slot_on_each_of_n_gpus_at_once() -> None:
    four = [Slot(f"cuda:{n}", 0) for n in range(4)]
    devices = [slot.device for slot in four]
    choice, _ = next_start(["big"], four, devices, QueueRules(), wanted=lambda run_id: 2)
    assert choice == ("big", (four[0], four[1]))
    # One GPU free: nothing is taken (no partial allocation), and the run behind waits too.
    choice, reasons = next_start(
        ["big", "small"], four[3:], devices, QueueRules(), wanted=lambda r: 2 if r == "big" else 1
    )
    assert choice is None
    assert reasons["big"].startswith(NO_SLOT)
    assert reasons["small"] == "waits behind big, which needs 2 devices together"


def test_a_multi_gpu_run_that_can_never_fit_does_not_block_the_others() -> None:
    choice, reasons = next_start(
        ["big", "small"],
        GPUS,
        ["cuda:0", "cuda:1"],
        QueueRules(),
        wanted=lambda r: 4 if r == "big" else 1,
    )
    assert choice == ("small", (GPUS[0],))
    assert reasons == {"big": "needs 4 GPUs together; this process has 2"}


def test_a_pinned_multi_gpu_run_includes_its_device() -> None:
    four = [Slot(f"cuda:{n}", 0) for n in range(4)]
    rules = QueueRules(pinned={"big": "cuda:2"})
    choice, _ = next_start(["big"], four, [s.device for s in four], rules, wanted=lambda r: 2)
    assert choice is not None
    assert [slot.device for slot in choice[1]] == ["cuda:2", "cuda:0"]


def test_the_scheduler_calls_a_multi_device_job_with_its_devices_and_frees_them_all() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cuda:0", "cuda:1"])
    recorder.submit(scheduler, "single")
    scheduler.submit("pair", recorder.job("pair"), lambda: None, devices=2)
    recorder.submit(scheduler, "after")
    expected = {
        "pair": f"{NO_SLOT} (2 GPUs together)",
        "after": "waits behind pair, which needs 2 devices together",
    }
    wait_until(lambda: scheduler.waiting() == expected, timeout=30)
    assert [run_id for run_id, _ in recorder.started] == ["single"]
    recorder.release.set()
    assert scheduler.wait(timeout=30)
    assert recorder.started[:2] == [("single", "cuda:0"), ("pair", "cuda:0,cuda:1")]
    assert recorder.peak <= 2


def test_on_the_cpu_a_multi_device_job_takes_the_cpu_slots_there_are() -> None:
    recorder = Recorder()
    scheduler = Scheduler(["cpu"], cpu_slots=1)
    scheduler.submit("ranks", recorder.job("ranks"), lambda: None, devices=3)
    recorder.release.set()
    assert scheduler.wait(timeout=30)
    assert recorder.started == [("ranks", "cpu,cpu,cpu")]


def test_a_run_on_several_devices_shows_on_each(tmp_path: Path) -> None:
    from tuneboard.config import load_project
    from tuneboard.engine.steering import device_slots

    (tmp_path / "tuneboard.toml").write_text('[project]\nname = "p"\ndevices = ["cpu"]\n')
    project = load_project(tmp_path)
    slots = device_slots(project, [("pair", "cuda:0,cuda:1"), ("ranks", "cpu,cpu")])
    assert {slot.figures.device: slot.runs for slot in slots} == {
        "cpu": ("ranks",),
        "cuda:0": ("pair",),
        "cuda:1": ("pair",),
    }
