"""`Engine.shutdown` leaves no thread of its own inside the database. The cancel watcher is a
daemon thread that queries DuckDB every second; if Python exits while it is inside a query,
CPython unwinds it through DuckDB's C++ frames and the process aborts (SIGABRT, seen as
`tuneboard run` exiting -6 after a cancel). So shutdown waits for the watcher's last poll."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import ProjectFactory, experiment, wait_for
from tuneboard.config import load_project
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store

pytestmark = pytest.mark.slow

SLOW_POLL_SECONDS = 2.0  # how long the watcher's query still runs after shutdown began


def test_shutdown_waits_for_the_cancel_watchers_last_poll(
    make_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = tmp_path / "stop"
    ticker = {"plugin": "ticker", "points": 100_000, "interval": 0.02, "stop_file": str(stop)}
    root = make_project(experiment("steady", ticker))
    project = load_project(root)
    registry = load_plugins(root)
    store = Store(project.database)
    engine = Engine(project, store, registry)
    in_query = threading.Event()
    controls = store.controls

    def slow_controls(*args: Any, **kwargs: Any) -> Any:
        """The watcher's poll: a query that is still running when shutdown is called."""
        if threading.current_thread().name == "tuneboard-cancel-watch":
            in_query.set()
            wait_for(lambda: engine.closed, 120, "shutdown to begin")
            threading.Event().wait(SLOW_POLL_SECONDS)
        return controls(*args, **kwargs)

    monkeypatch.setattr(store, "controls", slow_controls)
    try:
        run_id = engine.launch(engine.prepare(project.experiment("steady", registry)))
        assert in_query.wait(120), "the cancel watcher never polled"
        stop.touch()
        assert engine.wait([run_id], timeout=120)
    finally:
        stop.touch()
        engine.shutdown(cancel=True)
    watcher = engine._watcher
    assert watcher is not None and not watcher.is_alive(), "shutdown left the watcher polling"
    assert store.get_run(run_id).status == "completed"
    store.close()
