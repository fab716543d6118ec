"""Run every benchmark and regenerate ``BENCHMARKS.md`` from their results.

    python -m benchmarks.run_all                  # everything, ~15 min on 2 cores (see SIZES)
    python -m benchmarks.run_all --only queries,startup
    python -m benchmarks.run_all --quick          # every script at a tiny size (~1 min)
    python -m benchmarks.run_all --render         # rewrite BENCHMARKS.md from results/ only

Each script runs in its own process, one after the other, and leaves
``<out>/<name>.json`` (``benchmarks/results`` by default); a script that fails leaves a
document saying so and the others still run (the exit status is then 1). ``BENCHMARKS.md`` is
made from those documents and the hand-written analysis in ``benchmarks/notes.md``. A
``--quick`` run writes to ``benchmarks/.cache/quick/`` (results and its own BENCHMARKS.md), so
it never replaces the real figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, RESULTS, Result, command_line, load_average, machine

SCRIPTS = (
    "training",
    "log_ingest",
    "queries",
    "startup",
    "live_ui",
    "scheduling",
    "gpu",
    "causal_lm",
    "causal_lm_gpu",
    "sys_metrics",
    "distributed",
)
GPU_ONLY = ("gpu", "causal_lm_gpu")
"""Scripts that keep the figures measured on a GPU when run on a machine without one."""
TITLES = {
    "training": "1. Training overhead",
    "log_ingest": "2. Logging",
    "queries": "3. Queries",
    "startup": "4. Start-up",
    "live_ui": "5. Live UI",
    "scheduling": "6. Scheduling and CPU threads",
    "gpu": "7. GPU",
    "causal_lm": "8. Causal-LM fine-tuning",
    "causal_lm_gpu": "9. Causal-LM fine-tuning on a GPU",
    "sys_metrics": "10. System metrics",
    "distributed": "11. Data-parallel runs on the CPU",
}
SIZES = {
    "training": "2,000 SST-2 training rows, 1 epoch, batch 16, max length 128, all 872 dev "
    "sentences. Tiny BERT (2 layers, hidden 32): 6 contenders x 9 interleaved rounds. "
    "MiniLM: 5 contenders x 1 round, then 2 more rounds without the Trainer padded to 128 (the "
    "plain loop padded to 128 only on the tiny model)",
    "log_ingest": "200,000 timed log() calls per case; 1M points x 3 per ingest case; "
    "20 + 5 latency trials",
    "queries": "1,000 runs x 10,000 steps x 5 metrics = 50M points (built once, ~500 MiB, "
    "cached in benchmarks/.cache); 40 series, 10 runs-table reads",
    "startup": "10 x `tuneboard --help`; 5 app starts on the 50M-point database, each then "
    "timing 3 rounds of keys (cursor, select, F2/F1/F3/F1), interleaved with 5 starts of the app "
    "at 3e742b3 (before issue 16's speed fixes)",
    "live_ui": "8 runs x 20 steps/s, a 10 s window after 5 s, one app start per view (runs "
    "table, run detail); then one start timing 6 rounds of keys (cursor, select, F2/F1/F3/F1, "
    "n/escape) while the 8 runs log, and one of the app at 3e742b3 (before)",
    "scheduling": "60 sleep jobs over 4 slots; 8 ticker runs over 2 CPU slots; contention: "
    "5 steps (after 3 warm-up steps) of a 4-layer hidden-384 BERT per cell, 3 competitors x 4 "
    "OpenMP settings, 1 round",
    "gpu": "MiniLM and a BERT-base sized model, 4,000 SST-2 rows, 1 round, plus 2 and 4 "
    "tuneboard runs sharing the GPU (the script's default is 20,000 rows, 3 rounds; the lent "
    "H100's time allowed less). Measured only where a CUDA GPU is visible; kept otherwise",
    "causal_lm": "A GPT-2-style decoder from a config (4 layers, n_embd 256, 11M parameters, the "
    "MiniLM tokenizer); 300 train / 50 validation / 50 test instruction pairs written by the "
    "project; 8 epochs, batch 16, lr 1e-3; tuneboard, the plain loop and SFTTrainer x 2 "
    "interleaved rounds (the script's default is 3; the shared machine's time allowed 2)",
    "causal_lm_gpu": "A ~0.5B GPT-2-style decoder from a config in bf16, packing off; 4,000 "
    "pairs, 2 epochs, batch 32, 3 rounds. Measured only where a CUDA GPU is visible; kept "
    "otherwise",
    "sys_metrics": "the sampler watching 1, 4 and 8 runs on the CPU, a round every 1 s for 20 s "
    "each, against 20 s with none watched",
    "distributed": "tiny BERT, 4,000 SST-2 rows, 1 epoch, global batch 32, all 872 dev sentences; "
    "1 process (2 threads) against 2 gloo ranks (1 thread each), one run each",
}
OUTPUT = REPO / "BENCHMARKS.md"
NOTES = REPO / "benchmarks" / "notes.md"
QUICK = REPO / "benchmarks" / ".cache" / "quick"


def run(scripts: Sequence[str], extra: Sequence[str], out: Path) -> list[str]:
    """Run each benchmark script in its own process; return the names of those that failed
    (each leaves a document saying so in place of its figures)."""
    failed = []
    for name in scripts:
        print(f"== benchmarks.{name} {' '.join(extra)}", flush=True)
        if name not in GPU_ONLY:  # without a GPU, these keep the figures measured on one
            (out / f"{name}.json").unlink(missing_ok=True)
        command = [sys.executable, "-m", f"benchmarks.{name}", *extra, "--out", str(out)]
        done = subprocess.run(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            failed.append(name)
            result = Result(name, command_line(f"benchmarks.{name}", extra))
            tail = done.stderr.strip().splitlines()[-1:] or ["no error output"]
            result.skipped = f"FAILED (exit status {done.returncode}): {tail[0]}"
            result.save(out)
    return failed


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|")


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def _loadavg(values: Sequence[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "—"


def render(results: Path = RESULTS, notes: Path | None = NOTES) -> str:
    """``BENCHMARKS.md`` for the result documents in `results`."""
    documents = {}
    for name in SCRIPTS:
        path = results / f"{name}.json"
        if path.exists():
            documents[name] = json.loads(path.read_text())
    overall_path = results / "run_all.json"
    overall = json.loads(overall_path.read_text()) if overall_path.exists() else None
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.run_all` from `benchmarks/results/*.json`; do not",
        "edit by hand (the analysis is `benchmarks/notes.md`, appended at the end). Each script",
        "also runs alone with the command given in its section. Contenders are measured side by",
        "side in one run, in interleaved rounds, and compared by ratios; absolute times are",
        "recorded but depend on the machine and its load.",
        "",
        "**Load.** This machine is shared with other engineers whose tests run at the same time.",
        "Each section gives the load averages (1 / 5 / 15 min) when it started and ended, and",
        "`others busy` = cores kept busy by other processes in the second before each",
        "measurement (a script waits up to 20 s for fewer than 0.3 busy cores, 90 s in all,",
        "then measures anyway). Figures taken under load are slower and noisier; ratios",
        "suffer less.",
        "",
    ]
    info = overall["machine"] if overall else next((d["machine"] for d in documents.values()), {})
    if info:
        lines += ["## Machine", "", "| | |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in info.items()]
        lines.append("")
    if overall:
        lines += [
            "## This run",
            "",
            f"`{overall['command']}` — started {overall['when']}, took "
            f"{overall['seconds'] / 60:.1f} min; load averages before "
            f"{_loadavg(overall['loadavg_before'])}, after {_loadavg(overall['loadavg_after'])}.",
            "",
            "| script | sizes |",
            "|---|---|",
        ]
        lines += [f"| {name} | {_cell(SIZES[name])} |" for name in overall["scripts"]]
        lines.append("")
    targets = [f for d in documents.values() for f in d["figures"] if f.get("target")]
    if targets:
        lines += ["## Targets", "", "| figure | value | target | |", "|---|---|---|---|"]
        for f in targets:
            value = f"{_cell(f['value'])} {f['unit']}".strip()
            lines.append(f"| {_cell(f['name'])} | {value} | {f['target']} | {_met(f['met'])} |")
        lines.append("")
    for name in SCRIPTS:
        if name not in documents:
            continue
        d = documents[name]
        busy = ", ".join(f"{x:g}" for x in d["loads"]) or "—"
        lines += [
            f"## {TITLES[name]}",
            "",
            f"`{d['command']}` — {d['when']}, {d.get('seconds', 0):g} s. Load averages before "
            f"{_loadavg(d.get('loadavg_before'))}, after {_loadavg(d.get('loadavg_after'))}; "
            f"others busy (cores): {busy}.",
        ]
        if d.get("skipped"):
            lines += ["", f"*Not measured: {d['skipped']}*"]
        if d["figures"]:
            lines += ["", "| figure | value | target | | note |", "|---|---|---|---|---|"]
            for f in d["figures"]:
                value = f"{_cell(f['value'])} {f['unit']}".strip()
                lines.append(
                    f"| {_cell(f['name'])} | {value} | {f['target']} | {_met(f['met'])} "
                    f"| {_cell(f['note'])} |"
                )
        lines.append("")
    if notes is not None and notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks (or only render) and write ``BENCHMARKS.md``; 1 if a script failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument("--render", action="store_true", help="only rewrite BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="every script at a tiny size")
    parser.add_argument("--no-wait", action="store_true", help="passed on to every script")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--output", default=None, help="the Markdown file to write")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    out = Path(args.out) if args.out else QUICK if args.quick else RESULTS
    output = Path(args.output) if args.output else out / "BENCHMARKS.md" if args.quick else OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    if not args.render:
        chosen = [s for s in args.only.split(",") if s] or list(SCRIPTS)
        unknown = sorted(set(chosen) - set(SCRIPTS))
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
        extra = ["--smoke"] if args.quick else ["--no-wait"] if args.no_wait else []
        started, before = time.time(), load_average()
        failed = run(chosen, extra, out)
        if not args.only:
            overall = {
                "command": command_line("benchmarks.run_all", given),
                "when": time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started)),
                "seconds": round(time.time() - started, 1),
                "loadavg_before": list(before),
                "loadavg_after": list(load_average()),
                "scripts": chosen,
                "failed": failed,
                "machine": machine(),
            }
            (out / "run_all.json").write_text(json.dumps(overall, indent=2) + "\n")
    output.write_text(render(out, None if args.quick else NOTES))
    print(f"wrote {output}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
