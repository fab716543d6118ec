"""A run's output kept in its log: routing by thread, the caps, and the `logs` table's life
(deleted with its run, exported and imported). Real stores, real threads, no training."""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from pathlib import Path

import pytest

from tuneboard.engine import capture
from tuneboard.store import Store
from tuneboard.store.transfer import export_runs, import_runs


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "tb.duckdb") as opened:
        yield opened


def _run(store: Store, run_id: str) -> None:
    store.create_run(run_id, "exp", {"stages": []})


def _messages(store: Store, run_id: str) -> list[str]:
    store.flush()
    return [row.message for row in store.logs(run_id)]


def test_each_threads_output_goes_to_its_own_run_and_still_reaches_the_stream(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    both_started = threading.Barrier(2, timeout=30)

    def work(run_id: str) -> None:
        with capture.capturing(run_id, store) as log:
            assert log is not None
            both_started.wait()
            print(f"print of {run_id}")
            print("in ", end="")
            print("pieces")
            sys.stderr.write(f"bar 10%\rbar 100% {run_id}\n")
            warnings.warn(f"careful {run_id}", stacklevel=1)
            logging.getLogger("tb.test.quiet").warning("record of %s", run_id)
            child = threading.Thread(target=lambda: print(f"child of {run_id}"))
            child.start()
            child.join()
            log.stage_index = 1
            print(f"stage 1 of {run_id}")

    # A logger that does not propagate and prints with its own handler, like transformers'.
    quiet = logging.getLogger("tb.test.quiet")
    quiet.propagate = False
    quiet.addHandler(logging.StreamHandler(sys.stderr))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            threads = [threading.Thread(target=work, args=(r,)) for r in ("run-a", "run-b")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        quiet.handlers.clear()
        quiet.propagate = True
    print("the main thread's own line")

    for run_id, other in (("run-a", "run-b"), ("run-b", "run-a")):
        store.flush()
        rows = store.logs(run_id)
        assert [row.message for row in rows] == [
            f"print of {run_id}",
            "in pieces",
            f"bar 100% {run_id}",
            f"careful {run_id} ({__file__}:{_warn_line()})",
            f"record of {run_id}",
            f"child of {run_id}",
            f"stage 1 of {run_id}",
        ]
        assert [(r.stream, r.level, r.source) for r in rows[2:5]] == [
            ("stderr", "info", ""),
            ("warnings", "warning", "UserWarning"),
            ("logging", "warning", "tb.test.quiet"),
        ]
        assert [r.stage_index for r in rows] == [None] * 6 + [1]
        assert [r.line for r in rows] == list(range(7))
        assert not any(other in message for message in _messages(store, run_id))
    out, err = capsys.readouterr()
    assert "print of run-a" in out and "print of run-b" in out
    assert "record of run-a" in err and "bar 100% run-b" in err
    assert "the main thread's own line" in out
    assert "the main thread's own line" not in "".join(_messages(store, "run-a"))


def _warn_line() -> int:
    source = Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if "warnings.warn(f" in line)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_capped_by_rate_and_in_all_and_says_what_it_dropped(store: Store) -> None:
    clock = Clock()
    log = capture.RunLog("r", store, max_lines=30, rate=10, burst=5, max_chars=20, clock=clock)
    for i in range(8):  # a burst of 8 at one instant: 5 kept
        log.write("stdout", f"{i}\n")
    clock.now = 1.0  # a second later: 10 more may pass
    log.write("stdout", "after\n")
    log.add("logging", "info", "x", "y" * 50)
    for i in range(40):  # at a pace the rate allows, until the cap
        clock.now += 1
        log.write("stdout", f"late {i}\n")
    log.write("stdout", "no newline")
    log.close()
    log.write("stdout", "after close\n")
    messages = _messages(store, "r")
    assert messages[:8] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "3 lines dropped: more than 10 lines a second",
        "after",
        "y" * 20 + "… (30 more characters)",
    ]
    assert len(messages) == 30 + 1 + 1  # the lines kept, and the two notes
    assert messages[-2] == "late 22"
    assert messages[-1] == "18 lines dropped: a run keeps at most 30 lines of output"
    assert {r.stream for r in store.logs("r") if "dropped" in r.message} == {"tuneboard"}


def test_a_run_without_a_store_that_keeps_output_captures_nothing() -> None:
    with capture.capturing("r", object()) as log:
        assert log is None and capture.current() is None


def test_logs_are_deleted_with_their_run_and_travel_in_exports(
    store: Store, tmp_path: Path
) -> None:
    for run_id in ("keep", "drop"):
        _run(store, run_id)
        store.set_run_status(run_id, "completed")
        store.log_output(run_id, 0, 0, "stdout", "info", "", f"line of {run_id}")
        store.log_output(run_id, None, 1, "logging", "error", "lib", "two\nlines")
    store.flush()
    exported = export_runs(store, ["keep"], tmp_path / "out", "jsonl", source_project="p")
    assert exported.rows["logs"] == 2
    store.delete_run("drop")
    assert _messages(store, "drop") == []
    assert _messages(store, "keep") == ["line of keep", "two\nlines"]
    with Store(tmp_path / "other.duckdb") as other:
        imported = import_runs(other, tmp_path / "out")
        assert imported.rows["logs"] == 2
        assert other.logs("keep") == store.logs("keep")
        assert other.logs("keep", after=1) == store.logs("keep")[1:]
        assert other.logs("keep", last=1) == store.logs("keep")[1:]
        assert other.log_count("keep") == 2
