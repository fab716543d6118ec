"""A database of made-up runs with fixed ids, times and metrics, written through the Store API.

Snapshots need screens that look the same on every run, so nothing here trains: the rows look
like what real runs of the sentiment project write.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tuneboard.config import load_project
from tuneboard.store import Store

T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC
NOW = T0 + 5 * 3600 + 30  # the clock the app is given in snapshot tests

COMPLETED_TINY = "20260101-120000-aaaa"
COMPLETED_MULTI = "20260101-130000-bbbb"
FAILED_TINY = "20260101-140000-cccc"
CANCELLED_BASE = "20260101-150000-dddd"
RUNNING_TINY = "20260101-170000-eeee"
FAILURE = "stage 3 explode (explode): ValueError: the stage blew up on purpose"


def _curve(step: int, start: float, end: float, total: int) -> float:
    return end + (start - end) * math.exp(-3 * step / total)


def _training(
    store: Store, run_id: str, index: int, steps: int, start: float, quality: float
) -> None:
    for step in range(1, steps + 1):
        at = start + step
        values = {
            "train/loss": round(_curve(step, 0.7, 0.7 - quality / 2, steps), 4),
            "train/lr": round(0.01 * (1 - step / steps), 6),
            "train/samples_per_s": 40.0 + step % 3,
        }
        store.log_metrics(run_id, index, step, values, wall_time=at)
        if step % 5 == 0:
            accuracy = round(_curve(step, 0.5, quality, steps), 4)
            store.log_metrics(
                run_id,
                index,
                step,
                {
                    "val/loss": round(_curve(step, 0.69, 0.69 - quality / 3, steps), 4),
                    "val/accuracy": accuracy,
                    "val/f1_macro": round(accuracy - 0.02, 4),
                },
                wall_time=at,
            )
        store.set_progress(run_id, index, step, steps)


def _run(
    store: Store,
    project_dir: Path,
    run_id: str,
    experiment: str,
    start: float,
    *,
    status: str,
    quality: float = 0.8,
    overrides: dict[str, Any] | None = None,
    steps: int = 20,
) -> None:
    project = load_project(project_dir)
    config = project.raw_experiment(experiment)
    for key, value in (overrides or {}).items():
        config["stages"][0][key] = value
    store.create_run(run_id, experiment, config, headline="test/accuracy", at=start)
    store.log_event(run_id, f"queued experiment {experiment!r}", at=start)
    store.set_run_status(run_id, "running", device="cpu", at=start + 1)
    store.log_event(run_id, "run started on cpu", at=start + 1)
    store.log_event(run_id, "model loaded in 0.4 s; 2 labels", at=start + 2)
    stages = [s.get("name", s["plugin"]) for s in config["stages"]]
    plugins = [s["plugin"] for s in config["stages"]]
    clock = start + 3
    for index, (name, plugin) in enumerate(zip(stages, plugins, strict=True)):
        store.stage_started(run_id, index, name=name, plugin=plugin, params={}, at=clock)
        store.log_event(run_id, f"stage {index} {name} ({plugin}) started", at=clock)
        if plugin in ("finetune", "single_step"):
            if status == "running":
                _training(store, run_id, index, steps // 2, clock, quality)
                store.set_progress(run_id, index, 9, steps)
                return
            _training(store, run_id, index, steps, clock, quality)
            clock += steps + 1
            store.stage_finished(
                run_id,
                index,
                "completed",
                best_metric="val/accuracy",
                best_step=steps,
                best_value=quality,
                at=clock,
            )
        elif plugin == "evaluate":
            store.log_metrics(
                run_id,
                index,
                1,
                {"test/accuracy": quality, "test/f1_macro": quality - 0.03, "test/loss": 0.41},
                wall_time=clock,
            )
            store.set_progress(run_id, index, 1, 1)
            clock += 1
            store.stage_finished(run_id, index, "completed", at=clock)
        else:
            store.set_progress(run_id, index, 1, 1)
            clock += 1
            store.stage_finished(run_id, index, "completed", at=clock)
        store.log_event(run_id, f"stage {index} {name} completed", at=clock)
    if status == "failed":
        store.stage_started(run_id, 3, name="explode", plugin="explode", params={}, at=clock)
        store.stage_finished(run_id, 3, "failed", at=clock + 1)
        store.log_event(
            run_id,
            'Traceback (most recent call last):\n  File "explode.py", line 6, in run\n'
            "ValueError: the stage blew up on purpose",
            level="error",
            at=clock + 1,
        )
        store.set_run_status(run_id, "failed", error=FAILURE, at=clock + 1)
        return
    if status == "cancelled":
        store.log_event(run_id, "run cancelled", level="warning", at=clock)
        store.set_run_status(run_id, "cancelled", error="cancelled by the user", at=clock)
        return
    store.set_headline_value(run_id, quality)
    store.log_event(run_id, "run completed", at=clock)
    store.set_run_status(run_id, "completed", at=clock)


def seed_database(project_dir: Path, *, running: bool = True) -> list[str]:
    """Write the made-up runs into the project's database; returns their ids, oldest first."""
    project = load_project(project_dir)
    with Store(project.database) as store:
        _run(store, project_dir, COMPLETED_TINY, "tiny", T0, status="completed", quality=0.8125)
        _run(
            store,
            project_dir,
            COMPLETED_MULTI,
            "tiny",
            T0 + 3600,
            status="completed",
            quality=0.75,
            overrides={"lr": 0.001, "epochs": 4},
        )
        _run(store, project_dir, FAILED_TINY, "tiny", T0 + 7200, status="failed", quality=0.7)
        _run(store, project_dir, CANCELLED_BASE, "baseline", T0 + 10800, status="cancelled")
        ids = [COMPLETED_TINY, COMPLETED_MULTI, FAILED_TINY, CANCELLED_BASE]
        if running:
            _run(store, project_dir, RUNNING_TINY, "tiny", T0 + 18000, status="running")
            ids.append(RUNNING_TINY)
    return ids


def seed_many(project_dir: Path, count: int) -> None:
    """`count` completed runs with a few metric points each, written in bulk (for timing)."""
    project = load_project(project_dir)
    config = project.raw_experiment("tiny")
    with Store(project.database, flush_interval=1.0) as store:
        for number in range(count):
            run_id = f"20250101-{number // 60:04d}{number % 60:02d}-{number:04x}"
            at = T0 - (count - number) * 60
            store.create_run(run_id, "tiny", config, headline="test/accuracy", at=at)
            store.set_run_status(run_id, "running", device="cpu", at=at + 1)
            for step in range(1, 21):
                store.log_metrics(
                    run_id, 0, step, {"train/loss": 0.7 - step / 100}, wall_time=at + step
                )
            store.set_headline_value(run_id, 0.5 + (number % 50) / 100)
            store.set_run_status(run_id, "completed", at=at + 30)


# Text that breaks or hijacks output printed as it is: Rich markup (a closing tag with no
# opening one crashes the parser, a style tag vanishes), a terminal escape that clears the
# screen, a bidi override, a C1 control and DEL.
HOSTILE = "[/x] [blink red]hi \x1b[2J\u202e\x9b\x7f"
HOSTILE_RUN = "20260101-180000-[/x]"


def seed_hostile_run(project_dir: Path) -> str:
    """A failed run whose experiment, stage, device, metric, event and error are `HOSTILE`."""
    project = load_project(project_dir)
    with Store(project.database) as store:
        store.create_run(HOSTILE_RUN, HOSTILE, {"stages": []}, headline="test/[/acc]", at=T0)
        store.set_run_status(HOSTILE_RUN, "running", device=f"cpu{HOSTILE}", at=T0 + 1)
        store.stage_started(HOSTILE_RUN, 0, name=HOSTILE, plugin="[/p]", params={}, at=T0 + 2)
        store.log_metrics(HOSTILE_RUN, 0, 1, {f"test/{HOSTILE}": 0.5}, wall_time=T0 + 2)
        store.log_event(HOSTILE_RUN, f"{HOSTILE}\nsecond [/line]", level="error", at=T0 + 3)
        store.stage_finished(
            HOSTILE_RUN, 0, "failed", best_metric=f"val/{HOSTILE}", best_value=0.5, at=T0 + 4
        )
        store.set_run_status(HOSTILE_RUN, "failed", error=HOSTILE, at=T0 + 5)
    return HOSTILE_RUN


# A pipeline against its baseline (Compare aligned by stage): the sample `multistep` run
# (warmup 40 steps, full 60 steps, evaluate, export) and a `baseline` run (single_step, evaluate).
PIPELINE = "20260102-090000-a1a1"
BASELINE = "20260102-100000-b2b2"
PIPELINE_STAGES = (
    ("warmup", "finetune", 40, 2.0, 0.5, 0.63),
    ("full", "finetune", 60, 4.0, 0.63, 0.86),
)


def _pipeline_stage(
    store: Store,
    run_id: str,
    index: int,
    start: float,
    shape: tuple[str, str, int, float, float, float],
) -> float:
    """A training stage whose val/accuracy goes from `low` to `high`; returns its end time."""
    name, plugin, steps, epochs, low, high = shape
    store.stage_started(run_id, index, name=name, plugin=plugin, params={}, at=start)
    for step in range(1, steps + 1):
        values = {
            "train/loss": round(_curve(step, 0.7, 0.7 - high / 2, steps), 4),
            "train/lr": 0.001,  # constant: the same in every run (no best mark on a tie)
            "train/epoch": round(epochs * step / steps, 4),
            "train/samples_per_s": 40.0,
        }
        if step % 10 == 0:
            values["val/accuracy"] = round(_curve(step, low, high, steps), 4)
            values["val/loss"] = round(0.7 - values["val/accuracy"] / 3, 4)
        store.log_metrics(run_id, index, step, values, wall_time=start + step)
    end = start + steps + 1
    best = round(_curve(steps, low, high, steps), 4)
    store.stage_finished(
        run_id,
        index,
        "completed",
        best_metric="val/accuracy",
        best_step=steps,
        best_value=best,
        at=end,
    )
    return end


def _evaluate_stage(store: Store, run_id: str, index: int, start: float, accuracy: float) -> float:
    """An `evaluate` stage: the test metrics, logged at step 0 as the real stage does."""
    store.stage_started(run_id, index, name="evaluate", plugin="evaluate", params={}, at=start)
    values = {"test/accuracy": accuracy, "test/loss": 0.41}
    store.log_metrics(run_id, index, 0, values, wall_time=start + 1)
    store.stage_finished(run_id, index, "completed", at=start + 2)
    return start + 2


def seed_pipeline_and_baseline(project_dir: Path) -> tuple[str, str]:
    """A completed `multistep` pipeline and a completed single-stage `baseline` run; returns
    their ids (pipeline, baseline)."""
    project = load_project(project_dir)
    with Store(project.database) as store:
        start = T0 + 6 * 3600
        config = project.raw_experiment("multistep")
        store.create_run(PIPELINE, "multistep", config, headline="test/accuracy", at=start)
        store.set_run_status(PIPELINE, "running", device="cpu", at=start + 1)
        clock = start + 2
        for index, shape in enumerate(PIPELINE_STAGES):
            clock = _pipeline_stage(store, PIPELINE, index, clock, shape)
        clock = _evaluate_stage(store, PIPELINE, 2, clock, 0.84)
        store.stage_started(PIPELINE, 3, name="export", plugin="export", params={}, at=clock)
        store.stage_finished(PIPELINE, 3, "completed", at=clock + 1)
        store.set_headline_value(PIPELINE, 0.84)
        store.set_run_status(PIPELINE, "completed", at=clock + 1)

        start = T0 + 7 * 3600
        config = project.raw_experiment("baseline")
        store.create_run(BASELINE, "baseline", config, headline="test/accuracy", at=start)
        store.set_run_status(BASELINE, "running", device="cpu", at=start + 1)
        store.stage_started(
            BASELINE, 0, name="single_step", plugin="single_step", params={}, at=start + 2
        )
        values = {
            "train/loss": 0.69,
            "train/lr": 0.001,
            "train/epoch": 1.0,
            "train/samples_per_s": 35.0,
            "val/accuracy": 0.55,
            "val/loss": 0.68,
        }
        store.log_metrics(BASELINE, 0, 1, values, wall_time=start + 3)
        store.stage_finished(
            BASELINE,
            0,
            "completed",
            best_metric="val/accuracy",
            best_step=1,
            best_value=0.55,
            at=start + 4,
        )
        clock = _evaluate_stage(store, BASELINE, 1, start + 4, 0.58)
        store.set_headline_value(BASELINE, 0.58)
        store.set_run_status(BASELINE, "completed", at=clock)
    return PIPELINE, BASELINE


# A three-stage run (Run detail): warm-up -> full -> polish, each keeping a best checkpoint
# short of its end, then evaluate (test metrics at step 0) and export.
THREE_STAGE = "20260101-160000-ffff"
# name, steps, accuracy from -> at its best, best step, accuracy at its end
THREE_STAGES = (
    ("warmup", 20, 0.5, 0.63, 20, 0.63),
    ("full", 40, 0.63, 0.86, 30, 0.84),
    ("polish", 20, 0.84, 0.88, 15, 0.875),
)


def _three_stage_part(
    store: Store, index: int, start: float, stage: tuple[str, int, float, float, int, float]
) -> None:
    """A training stage whose validation accuracy rises from `low` to `high` at its best
    step, then falls to `end`; its losses mirror it; two epochs of steps."""
    _, steps, low, high, best, end = stage
    for step in range(1, steps + 1):
        if step <= best:
            accuracy = low + (high - low) * (1 - math.exp(-3 * step / best)) / (1 - math.exp(-3))
        else:
            accuracy = high + (end - high) * (step - best) / (steps - best)
        values = {
            "train/loss": round(0.7 - accuracy / 2 - 0.05 * step / steps, 4),
            "train/epoch": round(2 * step / steps, 4),
        }
        if step % 5 == 0:
            values |= {
                "val/loss": round(0.95 - accuracy * 0.7, 4),
                "val/accuracy": round(accuracy, 4),
            }
        store.log_metrics(THREE_STAGE, index, step, values, wall_time=start + step)
    store.set_progress(THREE_STAGE, index, steps, steps)


def seed_three_stage(project_dir: Path) -> str:
    """A completed three-stage run of the multistep experiment with a `polish` fine-tune
    added: warm-up -> full -> polish, each keeping a best checkpoint, then evaluate (its test
    metrics at step 0) and export."""
    project = load_project(project_dir)
    config = project.raw_experiment("multistep")
    config["stages"].insert(2, {"name": "polish", "plugin": "finetune", "epochs": 2, "lr": 1e-5})
    start = T0 + 4 * 3600
    with Store(project.database) as store:
        store.create_run(THREE_STAGE, "multistep", config, headline="test/accuracy", at=start)
        store.set_run_status(THREE_STAGE, "running", device="cpu", at=start + 1)
        clock = start + 2
        for index, stage in enumerate(THREE_STAGES):
            name, steps, *_, best_step, _ = stage
            store.stage_started(
                THREE_STAGE, index, name=name, plugin="finetune", params={}, at=clock
            )
            _three_stage_part(store, index, clock, stage)
            clock += steps + 1
            store.stage_finished(
                THREE_STAGE,
                index,
                "completed",
                best_metric="val/accuracy",
                best_step=best_step,
                best_value=stage[3],
                at=clock,
            )
        evaluate, export = len(THREE_STAGES), len(THREE_STAGES) + 1
        store.stage_started(
            THREE_STAGE, evaluate, name="evaluate", plugin="evaluate", params={}, at=clock
        )
        store.log_metrics(
            THREE_STAGE,
            evaluate,
            0,
            {"test/accuracy": 0.87, "test/auroc": 0.91, "test/loss": 0.34},
            wall_time=clock + 1,
        )
        store.stage_finished(THREE_STAGE, evaluate, "completed", at=clock + 2)
        store.stage_started(
            THREE_STAGE, export, name="export", plugin="export", params={}, at=clock + 2
        )
        store.stage_finished(THREE_STAGE, export, "completed", at=clock + 3)
        store.set_headline_value(THREE_STAGE, 0.87)
        store.set_run_status(THREE_STAGE, "completed", at=clock + 3)
    return THREE_STAGE


# A 12-trial optuna sweep of `tiny_sweep` over a learning rate and a schedule (categorical),
# one trial after another an hour before the running run; trials 6 and 9 are pruned at their
# second evaluation. Trial 7 (lr 0.003, cosine) is the best.
SWEEP_ID = "sweep-20260101-160000-5eed"
SWEEP_TRIALS: tuple[tuple[float, str], ...] = (
    (1e-2, "linear"),
    (1e-4, "constant"),
    (2e-3, "cosine"),
    (5e-4, "linear"),
    (1e-3, "cosine"),
    (3e-5, "constant"),
    (3e-3, "cosine"),
    (1e-3, "linear"),
    (5e-5, "linear"),
    (3e-3, "constant"),
    (2.5e-3, "cosine"),
    (6e-3, "linear"),
)
SWEEP_PRUNED = (6, 9)
SWEEP_BEST = 7


def sweep_run_id(number: int) -> str:
    """The id of trial `number` (from 1) of the seeded sweep."""
    return f"20260101-16{number - 1:02d}00-5e{number:02d}"


def sweep_quality(lr: float, schedule: str) -> float:
    """The made-up final val/accuracy of a trial: best near lr 3e-3, cosine a little better."""
    bonus = {"cosine": 0.02, "linear": 0.0, "constant": -0.03}[schedule]
    return round(0.9 - 0.15 * abs(math.log10(lr / 3e-3)) + bonus, 4)


def seed_sweep(project_dir: Path) -> str:
    """Write the seeded sweep (see `SWEEP_TRIALS`) into the project's database; its id."""
    project = load_project(project_dir)
    base = project.raw_experiment("tiny_sweep")
    base.pop("sweep", None)
    with Store(project.database) as store:
        for number, (lr, schedule) in enumerate(SWEEP_TRIALS, start=1):
            run_id = sweep_run_id(number)
            start = T0 + 4 * 3600 + (number - 1) * 60
            config = {**base, "stages": [dict(stage) for stage in base["stages"]]}
            config["stages"][0].update(lr=lr, schedule=schedule)
            values = {"stages.0.lr": lr, "stages.0.schedule": schedule, "optuna_trial": number - 1}
            record = {
                "sweep": {
                    "id": SWEEP_ID,
                    "values": values,
                    "method": "optuna",
                    "metric": "val/accuracy",
                    "direction": "maximize",
                }
            }
            store.create_run(
                run_id,
                "tiny_sweep",
                config,
                headline="test/accuracy",
                sweep_id=SWEEP_ID,
                at=start,
                provenance=record,
            )
            store.set_run_status(run_id, "running", device="cpu", at=start + 1)
            store.stage_started(run_id, 0, name="finetune", plugin="finetune", params={}, at=start)
            quality = sweep_quality(lr, schedule)
            pruned = number in SWEEP_PRUNED
            _training(store, run_id, 0, 10 if pruned else 20, start + 2, quality)
            if pruned:
                store.stage_finished(run_id, 0, "cancelled", at=start + 13)
                error = (
                    "pruned by optuna at step 10 of stage 0: val/accuracy at evaluation 2 is "
                    "worse than the median of the finished trials"
                )
                store.set_run_status(run_id, "cancelled", error=error, at=start + 13)
                continue
            store.stage_finished(run_id, 0, "completed", at=start + 23)
            store.set_headline_value(run_id, round(quality - 0.01, 4))
            store.set_run_status(run_id, "completed", at=start + 24)
    return SWEEP_ID
