"""The tuneboard app in a pseudo-terminal, instrumented: shared by the start-up and live-UI
benchmarks.

The parent (`run_app_in_pty`) starts ``python -m benchmarks.app_harness ...`` in a pty of a
given size with the real terminal driver (not the headless one, so writing the screen costs
what it costs in a terminal), drains what the app writes, and reads the figures the child
leaves in a JSON file. The child counts frames (`App._display` calls that write an update),
notes when the runs table first shows rows, samples the UI thread's CPU time, and exits on
its own after `--seconds`.

``--mode paint``: open the app on a project and idle. ``--mode live``: then launch `--runs`
runs of the project's ``ticker`` experiment (a stage that logs every step, see
`live_ui.TICKER_PLUGIN`), optionally open the first one's detail screen, and measure.

``--probes N``: instead of watching, press keys N times each (see `PROBES`) and time each
from the key reaching the app (posted the way the terminal driver posts it) to the first
frame written to the terminal that shows its effect. ``--tuneboard-from DIR`` runs the app
of another checkout (`tree_at` extracts one), so a script can measure before and after a
change side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import inspect
import json
import os
import pty
import random
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import REPO

TREES = REPO / "benchmarks" / ".cache" / "trees"


def tree_at(revision: str) -> Path:
    """A folder holding the ``tuneboard`` package as it was at git `revision` (extracted
    once into the cache), to put first on the app's import path."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = TREES / sha[:12]
    if not (folder / "tuneboard" / "__init__.py").exists():
        partial = folder.with_name(folder.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "tuneboard"], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(folder)
    return folder


def app_available() -> str | None:
    """None when `tuneboard.tui.app.TuneboardApp` imports; else why it does not."""
    try:
        from tuneboard.tui.app import TuneboardApp  # noqa: F401
    except Exception as error:  # any import failure means: nothing to measure yet
        return f"tuneboard.tui.app is not importable ({type(error).__name__}: {error})"
    return None


def run_app_in_pty(
    args: Sequence[str],
    *,
    columns: int = 160,
    rows: int = 48,
    timeout: float = 120.0,
    tuneboard_from: Path | None = None,
) -> dict[str, Any]:
    """Run the instrumented app (`args` for this module's child) in a pty; return its figures.

    ``spawn_to_paint_s`` is added: from just before the fork to the first paint with rows.
    `tuneboard_from`: a folder (see `tree_at`) whose ``tuneboard`` package the app runs.
    """
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"tuneboard-app-bench-{os.getpid()}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.app_harness", "--json", str(out), *args]
    if tuneboard_from is not None:
        command += ["--tuneboard-from", str(tuneboard_from)]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
    spawned = time.time()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the app
        os.chdir(REPO)
        os.execve(sys.executable, command, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    written = 0
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            written += len(chunk)
            if not chunk:
                break
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, 9)
    if status is None or not os.WIFEXITED(status):
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(pid, 0)
    os.close(fd)
    if not out.exists():
        raise RuntimeError(f"the app harness left no figures (exit status {status})")
    figures: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    figures["terminal_bytes"] = written
    if figures.get("first_paint_time") is not None:
        figures["spawn_to_paint_s"] = figures["first_paint_time"] - spawned
    if figures.get("first_frame_time") is not None:
        figures["spawn_to_first_frame_s"] = figures["first_frame_time"] - spawned
    return figures


GROUPS = {
    "keys": ("cursor", "select"),
    "switch": ("switch to SQL", "switch to Runs", "switch to Plugins", "switch back to Runs"),
    "launch": ("open Launch",),
}
"""Probes reported together: a key in the runs table, a switch of view, opening Launch."""


def probe_times(runs: Sequence[dict[str, Any]], group: str) -> tuple[list[float], int]:
    """The key-to-frame seconds of `group`'s probes over `runs`, and how many never showed."""
    times: list[float] = []
    missed = 0
    for run in runs:
        for name in GROUPS[group]:
            for seconds in run.get("probes", {}).get(name, []):
                if seconds is None:
                    missed += 1
                else:
                    times.append(seconds)
    return times, missed


# --- the child -----------------------------------------------------------------------------


# Each probe: a name, the key pressed, and what must be on screen for its effect to show
# (checked after each frame the app writes; `app` is the app, `screen` the screen drawn,
# `before` what `_before` noted on the event loop just before the key was pressed).
PROBES: tuple[tuple[str, str], ...] = (
    ("cursor", "down"),
    ("select", "space"),
    ("switch to SQL", "f2"),
    ("switch to Runs", "f1"),
    ("switch to Plugins", "f3"),
    ("switch back to Runs", "f1"),
    ("open Launch", "n"),
    ("close Launch", "escape"),
)
"""The keys pressed, in order, each round; named so (`PROBE_NAMES`) in the figures."""


def _before(app: Any, name: str) -> Any:
    if name == "cursor":
        table = app.screen.query_one("#runs")
        # Down from the top rows, up near the bottom: the cursor always moves.
        return table.cursor_row, ("up" if table.cursor_row >= 3 else "down")
    if name == "select":
        return set(app.screen.selected)
    return None


def _shows(app: Any, screen: Any, name: str, before: Any) -> bool:
    kind = type(screen).__name__
    if name == "cursor":
        return kind == "RunsScreen" and screen.query_one("#runs").cursor_row != before[0]
    if name == "select":
        return kind == "RunsScreen" and set(screen.selected) != before
    if name.startswith("switch"):
        return kind == {"SQL": "SqlScreen"}.get(name.split()[-1], name.split()[-1] + "Screen")
    if name == "open Launch":
        return (
            kind == "LaunchScreen" and getattr(screen, "form_shown", screen.form_ready) is not None
        )
    if name == "close Launch":
        return kind == "RunsScreen"
    raise ValueError(name)


class _Prober:
    """Presses the probe keys from a thread, as the terminal driver would, and times them."""

    def __init__(self, app: Any, rounds: int, timeout: float = 10.0) -> None:
        self.app = app
        self.rounds = rounds
        self.timeout = timeout
        self.pending: tuple[str, Any, float] | None = None
        self.seen = threading.Event()
        self.times: dict[str, list[float | None]] = {name: [] for name, _ in PROBES}

    def frame(self, screen: Any, now: float) -> None:
        """Called on the event loop after each frame written to the terminal."""
        pending = self.pending
        if pending is None:
            return
        name, before, pressed = pending
        with contextlib.suppress(Exception):  # a screen half built: not shown yet
            if _shows(self.app, screen, name, before):
                self.times[name].append(now - pressed)
                self.pending = None
                self.seen.set()

    def run(self) -> None:
        """The probing thread: every key of `PROBES`, `rounds` times, then quit the app."""
        from textual import events

        pace = random.Random(0)
        driver = self.app._driver
        launchable = bool(self.app.project.experiment_names)
        for _ in range(self.rounds):
            for name, key in PROBES:
                if "Launch" in name and not launchable:
                    continue
                time.sleep(pace.uniform(0.3, 0.5))  # let the app settle, unevenly
                before = self.app.call_from_thread(_before, self.app, name)
                if name == "cursor":
                    key = before[1]
                self.seen.clear()
                self.pending = (name, before, time.time())
                character = " " if key == "space" else key if len(key) == 1 else None
                driver.process_message(events.Key(key, character))
                if not self.seen.wait(self.timeout):
                    self.pending = None
                    self.times[name].append(None)
        self.app.call_from_thread(self.app.exit)


def _child(args: argparse.Namespace) -> None:
    started = time.time()
    if args.tuneboard_from:
        sys.path.insert(0, args.tuneboard_from)
    import resource

    import psutil

    from tuneboard.config import load_project

    # In the order `tuneboard` does it: the garbage collector paused for start-up, and the
    # database opening before Textual is imported (where the revision measured has them).
    try:
        from tuneboard.tui import collector
    except ImportError:
        pass
    else:
        collector.pause_for_startup()
    project = load_project(Path(args.project))
    try:
        from tuneboard.tui.store_opening import StoreOpening
    except ImportError:
        opening = None
    else:
        opening = StoreOpening(project.database)
    from textual.app import App

    from tuneboard.tui.app import TuneboardApp

    stats: dict[str, Any] = {"started": started, "first_paint_time": None, "frames": []}
    original = App._display
    prober: list[_Prober] = []

    def counting(self: App[Any], screen: Any, renderable: Any) -> None:
        original(self, screen, renderable)
        if renderable is None or self._batch_count:
            return
        now = time.time()
        stats["frames"].append(now)
        stats.setdefault("first_frame_time", now)
        if prober:
            prober[0].frame(screen, now)
        if stats["first_paint_time"] is None:
            with contextlib.suppress(Exception):
                if self.screen.query_one("#runs").row_count > 0:  # type: ignore[attr-defined]
                    stats["first_paint_time"] = now
                    stats["import_and_build_s"] = stats.get("built", now) - started

    App._display = counting  # type: ignore[method-assign]

    class Bench(TuneboardApp):
        # A relative CSS path would be looked up next to this file.
        CSS_PATH = str(Path(inspect.getfile(TuneboardApp)).parent / str(TuneboardApp.CSS_PATH))

        def on_mount(self) -> None:
            super().on_mount()
            self.set_timer(args.settle, self._measure)

        def _measure(self) -> None:
            stats["idle_rss_mib"] = psutil.Process().memory_info().rss / 2**20
            if args.mode == "live":
                self.run_worker(self._launch, thread=True)
            self.set_timer(args.warmup, self._window_start)

        def _probe(self) -> None:
            prober.append(_Prober(self, args.probes))
            threading.Thread(target=prober[0].run, name="bench-probes", daemon=True).start()

        def _launch(self) -> None:
            config = self.project.experiment("ticker", self.registry)
            prepared = self.engine.prepare(config)
            stats["run_ids"] = [self.engine.launch(prepared) for _ in range(args.runs)]
            if args.detail:
                self.call_from_thread(self._open_detail)

        def _open_detail(self) -> None:
            from tuneboard.tui.screens.detail import DetailScreen

            self.push_screen(DetailScreen(stats["run_ids"][0]))

        def _window_start(self) -> None:
            stats["w0"] = (time.time(), time.thread_time(), time.process_time())
            self.set_timer(args.seconds, self._window_end)

        def _window_end(self) -> None:
            stats["w1"] = (time.time(), time.thread_time(), time.process_time())
            stats["screen"] = type(self.screen).__name__
            if args.probes:
                self._probe()
            else:
                self.exit()

    app = Bench(project) if opening is None else Bench(project, store_opening=opening)
    stats["built"] = time.time()
    try:
        app.run()
    finally:
        app.engine.shutdown(cancel=True, timeout=30)
        app.store.close()
    stats["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = stats.pop("frames")
    if "w0" in stats and "w1" in stats:
        (wall0, thread0, process0), (wall1, thread1, process1) = stats.pop("w0"), stats.pop("w1")
        wall = wall1 - wall0
        stats["window_s"] = wall
        stats["refresh_per_s"] = sum(1 for t in frames if wall0 <= t <= wall1) / wall
        stats["ui_thread_cpu_pct"] = 100 * (thread1 - thread0) / wall
        stats["process_cpu_pct"] = 100 * (process1 - process0) / wall
    stats["frame_count"] = len(frames)
    if prober:
        stats["probes"] = prober[0].times
    Path(args.json).write_text(json.dumps(stats))


def main(argv: Sequence[str] | None = None) -> None:
    """The child side: run the instrumented app (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--mode", choices=["paint", "live"], default="paint")
    parser.add_argument("--settle", type=float, default=2.0, help="idle before measuring")
    parser.add_argument("--warmup", type=float, default=2.0, help="after launching runs")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--detail", action="store_true", help="watch the first run's charts")
    parser.add_argument("--probes", type=int, default=0, help="rounds of timed key presses")
    parser.add_argument("--tuneboard-from", default=None, help="import tuneboard from here")
    _child(parser.parse_args(argv))


if __name__ == "__main__":
    main()
