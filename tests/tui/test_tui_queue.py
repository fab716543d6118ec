"""The Queue screen (4): devices and the queue; its keys change the queue in the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList

from tests.tui.conftest import AppFactory, wait_for
from tuneboard.engine.devices import GB, DeviceFigures
from tuneboard.store import Store
from tuneboard.tui.app import TuneboardApp
from tuneboard.tui.screens.queue import DevicePicker, QueueScreen

IDS = ("20260102-090000-qqq1", "20260102-090001-qqq2", "20260102-090002-qqq3")


def _queue_project(project: Path) -> Path:
    """Three queued runs, owned by this (living) process, that no engine runs."""
    with Store(project / ".tuneboard" / "tuneboard.duckdb") as store:
        for n, run_id in enumerate(IDS):
            store.create_run(run_id, "tiny", {}, at=1000.0 + n)
    return project


def _table(app: TuneboardApp, name: str) -> DataTable[object]:
    return app.screen.query_one(f"#{name}", DataTable)


def _column(app: TuneboardApp, name: str, column: str) -> list[str]:
    table = _table(app, name)
    return [
        str(table.get_cell_at((row, column_index(table, column)))) for row in range(table.row_count)
    ]


def column_index(table: DataTable[object], key: str) -> int:
    return [str(k.value) for k in table.columns].index(key)


async def test_queue_keys_move_hold_pin_and_pause_in_the_database(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    project = _queue_project(sentiment_project)
    app = make_app(project, poll_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store_ready)
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        await wait_for(pilot, lambda: _table(app, "queue").row_count == 3)
        assert _column(app, "queue", "run") == list(IDS)
        # the CPU slot, with its figures (no GPU here)
        devices = _table(app, "devices")
        assert str(devices.get_cell_at((0, 0))) == "cpu"
        assert "GB" in str(devices.get_cell_at((0, 3)))

        store = app.store
        await pilot.press("down", "down", "K")  # the third run one place up
        await wait_for(pilot, lambda: store.queue().order == (IDS[0], IDS[2], IDS[1]))
        await wait_for(pilot, lambda: _column(app, "queue", "run")[1] == IDS[2])
        assert _table(app, "queue").cursor_row == 1  # the cursor follows the moved run
        await pilot.press("t")  # to the front
        await wait_for(pilot, lambda: store.queue().order == (IDS[2], IDS[0], IDS[1]))
        await wait_for(pilot, lambda: _table(app, "queue").cursor_row == 0)
        await pilot.press("J")
        await wait_for(pilot, lambda: store.queue().order == (IDS[0], IDS[2], IDS[1]))

        await wait_for(pilot, lambda: _column(app, "queue", "run")[1] == IDS[2])
        await pilot.press("h")  # hold the run under the cursor
        await wait_for(pilot, lambda: store.queue().entry(IDS[2]).held)  # type: ignore[union-attr]
        await wait_for(pilot, lambda: _column(app, "queue", "state")[1] == "held")
        await pilot.press("h")  # and release it
        await wait_for(pilot, lambda: not store.queue().entry(IDS[2]).held)  # type: ignore[union-attr]

        await pilot.press("P")
        await wait_for(pilot, lambda: store.queue().paused)
        await wait_for(pilot, lambda: set(_column(app, "queue", "waiting")) == {"queue paused"})
        await pilot.press("P")
        await wait_for(pilot, lambda: not store.queue().paused)

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicePicker))
        picker = app.screen.query_one(OptionList)
        assert picker.get_option_at_index(0).id == "cpu"
        await pilot.press("enter")
        await wait_for(pilot, lambda: store.queue().entry(IDS[2]).pinned == "cpu")  # type: ignore[union-attr]

        await pilot.press("x")  # cancel: the run's process is asked to stop it
        await wait_for(pilot, lambda: _cancel_requested(store) == [IDS[2]], timeout=30)


def _cancel_requested(store: Store) -> list[str]:
    store.flush()
    with store.database.cursor() as cur:
        return [
            r for (r,) in cur.execute("SELECT run_id FROM runs WHERE cancel_requested").fetchall()
        ]


async def test_the_queue_screen_is_in_the_footer_and_nav(
    sentiment_project: Path, make_app: AppFactory
) -> None:
    app = make_app(sentiment_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        shown = {
            binding.description
            for (_, binding, _, _) in app.screen.active_bindings.values()
            if binding.show
        }
        assert {
            "Up",
            "Down",
            "To front",
            "Hold/release",
            "Pin",
            "Pause queue",
            "Cancel run",
        } <= shown
        await pilot.press("1")
        await wait_for(pilot, lambda: not isinstance(app.screen, QueueScreen))


def test_queue_screen_snapshot(
    seeded_project: Path,
    make_app: AppFactory,
    snap_compare: Callable[..., bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Devices (fixed figures: the machine's own vary) and a queue with a held, a pinned and
    a paused state."""
    from tuneboard.engine import steering

    gpu = DeviceFigures("cuda:0", "NVIDIA H100 80GB HBM3", 87.0, 61.5 * GB, 80 * GB, 64.0)
    cpu = DeviceFigures("cpu", "2 cores", 37.0, 3.2 * GB, 15.6 * GB, cores=2)
    monkeypatch.setattr(steering, "device_figures", lambda *args, **kwargs: [gpu, cpu])
    project = _queue_project(seeded_project)
    with Store(project / ".tuneboard" / "tuneboard.duckdb") as store:
        store.set_held(IDS[1], True)
        store.set_pin(IDS[2], "cuda:0")
        store.set_queue_waiting({IDS[0]: "needs 30 GB; cuda:0 has 18.5 GB free"})
    app = make_app(project)

    async def before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.store_ready)
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        await wait_for(pilot, lambda: _table(app, "queue").row_count == 3)
        await wait_for(pilot, lambda: not _table(app, "queue")._require_update_dimensions)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 24), run_before=before)
