"""Real runs keep what their stage printed, warned and logged, each in its own log;
`tuneboard logs` prints it, filters it, and follows a run until it ends (or Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliRunner
from tuneboard.config import load_project
from tuneboard.engine import capture
from tuneboard.engine.engine import Engine
from tuneboard.plugins import load_plugins
from tuneboard.store import Store
from tuneboard.testing import ThrowawayProject

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


@pytest.fixture
def project(tuneboard_project: ThrowawayProject) -> ThrowawayProject:
    """The throwaway project with the `chatty` stage."""
    tuneboard_project.add_plugin_file(HERE / "log_plugins.py", name="chatty")
    return tuneboard_project


def _write_experiments(project: ThrowawayProject, **stages: dict[str, object]) -> None:
    toml = '[project]\nname = "throwaway"\ndevices = ["cpu"]\ncpu_slots = 2\n'
    for name, stage in stages.items():
        toml += "\n" + project.experiment_toml(name, [{"plugin": "chatty", **stage}])
    (project.root / "tuneboard.toml").write_text(toml, encoding="utf-8")


class Launcher:
    """The real engine and store on the project, started on the first launch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._engine: Engine | None = None
        self._store: Store | None = None

    def launch(self, name: str) -> str:
        """Launch the experiment `name`; returns the run's id."""
        project = load_project(self.root)
        if self._engine is None:
            registry = load_plugins(project.root, reload=True)
            self._store = Store(project.database)
            self._engine = Engine(project, self._store, registry)
        return self.engine.launch(
            self.engine.prepare(project.experiment(name, self.engine.registry))
        )

    @property
    def engine(self) -> Engine:
        """The engine (after a launch)."""
        assert self._engine is not None
        return self._engine

    @property
    def store(self) -> Store:
        """The store (after a launch)."""
        assert self._store is not None
        return self._store

    def close(self) -> None:
        """Cancel what still runs, close the store."""
        if self._engine is not None and self._store is not None:
            self._engine.shutdown(cancel=True, timeout=60)
            self._store.close()
            self._engine = None


@pytest.fixture
def launcher(project: ThrowawayProject) -> Iterator[Launcher]:
    """Launches experiments of the project with the real engine; shuts it down after."""
    started = Launcher(project.root)
    yield started
    started.close()


def test_concurrent_runs_keep_their_own_lines_and_the_cli_prints_them(
    project: ThrowawayProject, launcher: Launcher, cli: CliRunner
) -> None:
    _write_experiments(
        project,
        left={"tag": "LEFT", "lines": 5, "together": 2},
        right={"tag": "RIGHT", "lines": 5, "together": 2},
    )
    left, right = launcher.launch("left"), launcher.launch("right")
    store = launcher.store
    assert launcher.engine.wait([left, right], timeout=300)
    store.flush()
    for run_id, tag, other in ((left, "LEFT", "RIGHT"), (right, "RIGHT", "LEFT")):
        rows = [row for row in store.logs(run_id) if row.message.startswith(tag)]
        expected = [
            *(f"{tag} line {i}" for i in range(5)),
            f"{tag} from a helper thread",
            f"{tag} on stderr",
            f"{tag} is deprecated (",
            f"{tag} logged",
            f"{tag} done",
        ]
        assert len(rows) == len(expected)
        assert all(row.message.startswith(e) for row, e in zip(rows, expected, strict=True))
        assert [(r.stream, r.source) for r in rows[6:9]] == [
            ("stderr", ""),
            ("warnings", "UserWarning"),
            ("logging", "chatty.plugin"),
        ]
        assert {row.stage_index for row in rows} == {0}
        assert not any(other in row.message for row in store.logs(run_id))
    launcher.close()

    shown = cli("logs", left[:-1], cwd=project.root)  # a prefix works
    assert shown.returncode == 0, shown.stderr
    assert "LEFT line 4" in shown.stdout and "RIGHT" not in shown.stdout
    assert "UserWarning" in shown.stdout and "warning chatty.plugin" in shown.stdout
    grepped = cli("logs", left, "--grep", "left LINE", cwd=project.root)
    assert grepped.stdout.count("\n") == 5 and "LEFT line 3" in grepped.stdout
    as_json = cli("logs", left, "--json", "--grep", "helper", cwd=project.root)
    (record,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["message"] == "LEFT from a helper thread" and record["stream"] == "stdout"
    nothing = cli("logs", left, "--grep", "no such words", cwd=project.root)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert "no line of run" in nothing.stderr and "matches 'no such words'" in nothing.stderr
    unknown = cli("logs", "no-such-run", cwd=project.root)
    assert unknown.returncode == 2 and "no-such-run" in unknown.stderr


class Follower:
    """`tuneboard logs RUN -f` in the background, its output read line by line."""

    def __init__(self, project: Path, run_id: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuneboard.cli", "logs", run_id, "-f"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_follow_prints_new_lines_until_the_run_ends_and_ctrl_c_exits_130(
    project: ThrowawayProject, launcher: Launcher, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    _write_experiments(
        project,
        waits={"tag": "WAITS", "lines": 2, "stop_file": str(stop)},
        again={"tag": "AGAIN", "lines": 1, "stop_file": str(stop)},
    )
    run_id = launcher.launch("waits")
    store = launcher.store
    wait_for(lambda: store.log_count(run_id) >= 2, "the run's first lines")
    follower = Follower(project.root, run_id)
    wait_for(lambda: follower.saw("WAITS logged"), "the follower to print the lines so far")
    assert not follower.saw("WAITS done") and follower.process.poll() is None
    stop.touch()
    assert follower.finish() == 0
    assert follower.saw("WAITS done")

    stop.unlink()
    second = launcher.launch("again")
    wait_for(lambda: store.log_count(second) >= 1, "the second run's first line")
    interrupted = Follower(project.root, second)
    wait_for(lambda: interrupted.saw("AGAIN line 0"), "the second follower's first line")
    interrupted.process.send_signal(signal.SIGINT)
    assert interrupted.finish() == 130
    stop.touch()


def test_hostile_lines_print_as_text(tuneboard_project: ThrowawayProject, cli: CliRunner) -> None:
    from tests.tui.seed import HOSTILE
    from tuneboard.ui.safe import visible

    root = tuneboard_project.root
    (root / "tuneboard.toml").write_text('[project]\nname = "throwaway"\n', encoding="utf-8")
    with Store(load_project(root).database) as store:
        store.create_run("r1", "exp", {"stages": []})
        store.set_run_status("r1", "completed")
        store.log_output("r1", 0, 0, "stdout", "info", "", HOSTILE)
        store.log_output("r1", 0, 1, "logging", "error", f"lib{HOSTILE}", f"first\n{HOSTILE}")
    shown = cli("logs", "r1", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x9b" not in shown.stdout
    lines = shown.stdout.splitlines()
    assert lines[0].endswith(f"stdout  {visible(HOSTILE)}")
    assert f"error lib{visible(HOSTILE)}  first" in lines[1]
    assert lines[2] == f"    {visible(HOSTILE)}"
    as_json = cli("logs", "r1", "--json", cwd=root)
    assert "\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout.splitlines()[0])["message"] == HOSTILE


def test_a_stage_printing_in_a_tight_loop_is_capped(
    project: ThrowawayProject, launcher: Launcher
) -> None:
    _write_experiments(project, flood={"tag": "FLOOD", "lines": 5_000})
    run_id = launcher.launch("flood")
    assert launcher.engine.wait([run_id], timeout=300)
    launcher.store.flush()
    rows = launcher.store.logs(run_id)
    printed = [row for row in rows if row.message.startswith("FLOOD line")]
    assert capture.BURST <= len(printed) < 5_000 // 2
    notes = [row.message for row in rows if row.stream == "tuneboard"]
    assert notes and all(n.endswith("lines dropped: more than 200 lines a second") for n in notes)
    dropped = sum(int(n.split()[0]) for n in notes)
    assert len([r for r in rows if r.message.startswith("FLOOD")]) + dropped == 5_000 + 5
