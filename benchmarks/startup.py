"""Start-up: `tuneboard --help` (time, peak memory, what it imports) and the app's first paint.

`tuneboard --help` is the installed console script, run `--reps` times after one warm-up;
each run's wall time and peak RSS come from `os.wait4`. ``python -c pass`` is measured the same
way, as the floor. The app (when `tuneboard.tui.app` exists) opens on a project holding a
database of `--app-runs` runs x 10,000 steps x 5 metrics, in a real pseudo-terminal: the time
from starting the process to the first frame that shows the runs table with rows, then the
memory of the idle app and the CPU its UI thread uses while idle; then, idle, the time from
a key to the frame that shows its effect (`app_harness.PROBES`: cursor, select, switching
views with F1/F2/F3). The headline first paint is measured from outside instead (`paint`):
``python -m tuneboard`` started in a pty until the runs show, beside a bare Textual + DuckDB
app doing the least the same screen needs (`floor_app`). ``--against REV`` also starts the
app of git revision REV, in interleaved rounds, and reports both and their ratio (before and
after a change, one run).

    python -m benchmarks.startup                 # copies the queries benchmark's database
    python -m benchmarks.startup --against 3e742b3
    python -m benchmarks.startup --smoke
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.app_harness import app_available, probe_times, run_app_in_pty, tree_at
from benchmarks.common import (
    REPO,
    Result,
    command_line,
    median,
    other_load,
    results_folder,
)
from benchmarks.paint import floor_paint, runs_line, tuneboard_paint


def tuneboard_command() -> list[str]:
    """The installed `tuneboard` console script next to this interpreter (or ``-m``)."""
    script = Path(sys.executable).parent / "tuneboard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tuneboard.cli"]


def run_once(command: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of `command` (output discarded)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {child.returncode}")
    return seconds, usage.ru_maxrss / 1024


def slowest_imports(command: Sequence[str], top: int = 8) -> list[tuple[str, float]]:
    """The modules with the largest cumulative import time under ``python -X importtime``."""
    if Path(command[0]).name == "tuneboard":
        command = [sys.executable, "-X", "importtime", "-m", "tuneboard.cli", *command[1:]]
    else:
        command = [command[0], "-X", "importtime", *command[1:]]
    err = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if found and len(found.group(2)) <= 1:  # top-level imports only
            rows.append((found.group(3), int(found.group(1)) / 1000))
    return sorted(rows, key=lambda row: -row[1])[:top]


def measure_help(result: Result, reps: int, wait: bool) -> None:
    """Section: `tuneboard --help` against the interpreter's own start-up."""
    command = [*tuneboard_command(), "--help"]
    floor = [sys.executable, "-c", "pass"]
    run_once(command)  # warm the file cache
    result.loads.append(other_load(wait))
    help_runs, floor_runs = [], []
    for _ in range(reps):
        help_runs.append(run_once(command))
        floor_runs.append(run_once(floor))
    seconds = median(s for s, _ in help_runs)
    result.add(
        "start-up",
        "tuneboard --help: wall time",
        round(seconds, 3),
        "s",
        target="< 0.3 s",
        met=seconds < 0.3,
        note=f"median of {reps}; python -c pass takes {median(s for s, _ in floor_runs):.3f} s",
    )
    result.add(
        "start-up",
        "tuneboard --help: peak memory",
        round(median(m for _, m in help_runs), 1),
        "MiB",
        note=f"python -c pass: {median(m for _, m in floor_runs):.1f} MiB",
    )
    result.details["help_slowest_imports_ms"] = slowest_imports(command)


def app_project(folder: Path | None, runs: int, steps: int) -> Path:
    """A project folder whose database holds `runs` made-up runs (a copy of the queries
    benchmark's cached database, built first if needed; kept in the cache and reused), with
    the experiments of the sentiment sample project."""
    import shutil

    from benchmarks.queries import cached_database, ensure_database

    source = cached_database(runs, steps)
    if folder is None:
        folder = source.with_name(f"app-{source.stem}")
    database = folder / ".tuneboard" / "tuneboard.duckdb"
    if not database.exists():
        ensure_database(source, runs, steps)
        database.parent.mkdir(parents=True, exist_ok=True)
        partial = database.with_name("copying.duckdb")
        shutil.copyfile(source, partial)
        partial.rename(database)
    # The sentiment sample's experiments, so that Launch opens on its 91-field pipeline.
    sample = REPO / "sample_projects" / "sentiment"
    shutil.copytree(sample / "data", folder / "data", dirs_exist_ok=True)
    shutil.copyfile(sample / "tuneboard.toml", folder / "tuneboard.toml")
    return folder


def measure_app(
    result: Result,
    project: Path,
    runs: int,
    reps: int,
    wait: bool,
    idle: float = 3.0,
    probes: int = 2,
    against: str | None = None,
) -> None:
    """Section: the app's first paint on a big project, the idle app's memory and CPU, and
    key presses; with `against`, the app of that revision too, round by round."""
    paints: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    tree = tree_at(against) if against else None
    command = ["--project", str(project), "--mode", "paint", "--settle", str(idle)]
    command += ["--seconds", str(idle), "--probes", str(probes)]
    seen: dict[str, list[float | None]] = {"now": [], "then": [], "floor": []}
    tuneboard_paint(project, runs)  # unmeasured: writes the bytecode caches, warms the files
    floor_paint(project, runs)
    if tree is not None:
        tuneboard_paint(project, runs, tree)
    for _ in range(reps):
        result.loads.append(other_load(wait))
        seen["now"].append(tuneboard_paint(project, runs))
        seen["floor"].append(floor_paint(project, runs))
        paints.append(run_app_in_pty(command))
        if tree is not None:
            result.loads.append(other_load(wait))
            seen["then"].append(tuneboard_paint(project, runs, tree))
            before.append(run_app_in_pty(command, tuneboard_from=tree))
    add_command_paint(result, runs, seen, against)
    spawn = [p["spawn_to_paint_s"] for p in paints if p.get("spawn_to_paint_s") is not None]
    if spawn:
        result.add(
            "start-up",
            f"app first paint with {runs:,} runs, in the benchmark's own process",
            round(median(spawn), 2),
            "s",
            note=f"median of {len(spawn)}; from starting `benchmarks.app_harness` (which "
            "imports psutil and its own code too) to a frame with the table's rows; "
            "in a 160x48 pseudo-terminal; "
            f"Python imports and building the app take "
            f"{median(p.get('import_and_build_s', float('nan')) for p in paints):.2f} s of it; "
            f"the first frame (table not filled yet) after "
            f"{median(p.get('spawn_to_first_frame_s', float('nan')) for p in paints):.2f} s",
        )
    else:
        result.add("start-up", "app first paint", "no frame showed the runs table", "")
    result.add(
        "start-up",
        f"idle app: memory (RSS after {idle:g} s idle)",
        round(median(p["idle_rss_mib"] for p in paints), 1),
        "MiB",
        note=f"peak RSS {median(p['peak_rss_mib'] for p in paints):.1f} MiB",
    )
    result.add(
        "start-up",
        "idle app: UI thread CPU",
        round(median(p.get("ui_thread_cpu_pct", float("nan")) for p in paints), 1),
        "% of a core",
        note=f"{median(p.get('refresh_per_s', float('nan')) for p in paints):.1f} frames/s idle",
    )
    add_probe_figures(result, "start-up", f"idle, {runs:,} runs", paints, before, against)
    if before:
        add_before(
            result, "start-up", "app first paint", "spawn_to_paint_s", paints, before, against
        )
    result.details["app_runs"] = paints
    result.details["app_runs_before"] = before


def add_command_paint(
    result: Result, runs: int, seen: dict[str, list[float | None]], against: str | None
) -> None:
    """The first paint of `tuneboard` as a user sees it, beside the bare app's (the floor)
    and, with `against`, beside the revision's."""
    now = [t for t in seen["now"] if t is not None]
    floor = [t for t in seen["floor"] if t is not None]
    then = [t for t in seen["then"] if t is not None]
    if not now:
        result.add("start-up", "app first paint", "the runs never showed", "")
        return
    note = (
        f"median of {len(now)}, {min(now):.2f}-{max(now):.2f} s; `python -m tuneboard "
        f"--project P` in a 160x48 pseudo-terminal, from starting it to the screen showing "
        f"'{runs_line(runs)}' (drawn with the table's rows)"
    )
    if floor:
        note += f"; {median(now) / median(floor):.2f}x the bare app below"
    if then:
        note += f"; at {against}: {median(then):.2f} s (now / then: "
        note += f"{median(now) / median(then):.2f}x)"
    result.add(
        "start-up",
        f"app first paint with {runs:,} runs (the `tuneboard` command, seen from outside)",
        round(median(now), 2),
        "s",
        target="< 0.5 s",
        met=median(now) < 0.5,
        note=note,
    )
    if floor:
        result.add(
            "start-up",
            "floor: a bare Textual app showing the same runs from the same DuckDB file",
            round(median(floor), 2),
            "s",
            note=f"median of {len(floor)}, measured the same way, in the same rounds "
            "(`benchmarks/floor_app.py`: a Static and a DataTable, the file read in a "
            "thread started on load)",
        )


PROBE_FIGURES = {
    "keys": ("a key in the runs table (cursor, select) to its frame", 0.1, "< 100 ms"),
    "switch": ("switching views (F1/F2/F3) to the new view's frame", 0.15, "< 150 ms"),
    "launch": ("opening Launch (n) to its form on screen", 0.15, "< 150 ms"),
}
"""Each group of `app_harness.GROUPS`: what it measures, its target in seconds, as text."""


def add_probe_figures(
    result: Result,
    section: str,
    where: str,
    runs: Sequence[dict[str, Any]],
    before: Sequence[dict[str, Any]],
    against: str | None,
) -> None:
    """One figure per probe group measured (median key-to-frame time), with the before run's
    median and the ratio in the note when there is one."""
    for group, (what, target, target_text) in PROBE_FIGURES.items():
        times, missed = probe_times(runs, group)
        if not times:
            continue
        value = median(times)
        note = f"median of {len(times)}, max {1000 * max(times):.0f} ms"
        if missed:
            note += f"; {missed} never showed within 10 s"
        if group == "launch":
            note += "; " + first_opens(runs, before, against)
        old, _ = probe_times(before, group)
        if old:
            note += (
                f"; at {against}: median {1000 * median(old):.0f} ms, max "
                f"{1000 * max(old):.0f} ms (now / then: {value / median(old):.2f}x)"
            )
        result.add(
            section,
            f"{where}: {what}",
            round(1000 * value, 1),
            "ms",
            target=target_text,
            met=value < target and not missed,
            note=note,
        )


def first_opens(
    runs: Sequence[dict[str, Any]], before: Sequence[dict[str, Any]], against: str | None
) -> str:
    """The first opening of Launch in each app (the form is built then, and kept after)."""

    def firsts(apps: Sequence[dict[str, Any]]) -> list[float]:
        opens = (app.get("probes", {}).get("open Launch") or [None] for app in apps)
        return [times[0] for times in opens if times[0] is not None]

    now, then = firsts(runs), firsts(before)
    text = f"first opening in each app: median {1000 * median(now):.0f} ms" if now else ""
    if then:
        text += f" (at {against}: {1000 * median(then):.0f} ms)"
    return text


def add_before(
    result: Result,
    section: str,
    what: str,
    key: str,
    runs: Sequence[dict[str, Any]],
    before: Sequence[dict[str, Any]],
    against: str | None,
) -> None:
    """A figure measured at `against` too: its median then, and the ratio now / then."""
    now = [r[key] for r in runs if r.get(key) is not None]
    then = [r[key] for r in before if r.get(key) is not None]
    if not now or not then:
        return
    result.add(
        section,
        f"{what}: at {against} (before), in the same rounds",
        round(median(then), 2),
        "s",
        note=f"median of {len(then)}; now / then: {median(now) / median(then):.2f}x "
        f"(ratio of medians; per round: "
        + ", ".join(f"{a / b:.2f}" for a, b in zip(now, then, strict=False))
        + ")",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/startup.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--app-reps", type=int, default=3)
    parser.add_argument("--app-runs", type=int, default=1000)
    parser.add_argument("--app-steps", type=int, default=10_000)
    parser.add_argument("--project", default=None, help="keep the app's project here")
    parser.add_argument("--probes", type=int, default=3, help="rounds of timed key presses")
    parser.add_argument("--against", default=None, help="git revision to measure beside")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.reps, args.app_reps, args.app_runs, args.app_steps = 2, 1, 20, 100
        args.probes = 1
        args.no_wait = True
    result = Result("startup", command_line("benchmarks.startup", argv or sys.argv[1:]))
    measure_help(result, args.reps, not args.no_wait)
    why_not = app_available()
    if why_not:
        result.skipped = f"app figures skipped: {why_not}"
        print(result.skipped)
    else:
        with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
            if args.project:
                folder: Path | None = Path(args.project)
            else:
                folder = Path(tmp) / "project" if args.smoke else None
            if args.smoke:
                from benchmarks.queries import build

                assert folder is not None
                (folder / ".tuneboard").mkdir(parents=True)
                build(folder / ".tuneboard" / "tuneboard.duckdb", args.app_runs, args.app_steps)
            project = app_project(folder, args.app_runs, args.app_steps)
            idle = 1.0 if args.smoke else 3.0
            measure_app(
                result,
                project,
                args.app_runs,
                args.app_reps,
                not args.no_wait,
                idle,
                args.probes,
                args.against,
            )
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
