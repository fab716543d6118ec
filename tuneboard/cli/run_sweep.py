"""`tuneboard run EXPERIMENT` of an experiment with a sweep: launch, wait, print a table.

Imported by `tuneboard.cli.run` only when the experiment has a sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from tuneboard.cli.progress import ProgressObserver
from tuneboard.cli.shared import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    echo,
    exit_on_second_interrupt,
    report_waiting,
)
from tuneboard.config import Project
from tuneboard.config.sweeps import plan_sweep, run_count
from tuneboard.engine.context import metric_higher_is_better
from tuneboard.engine.engine import Engine
from tuneboard.engine.sweeper import Sweep, SweepMember, launch_sweep, prepare_sweep
from tuneboard.plugins import PluginRegistry
from tuneboard.store import Store
from tuneboard.store.schema import COMPLETED
from tuneboard.ui.render import format_number, rich_table, status_text
from tuneboard.ui.safe import safe_text


def run_sweep(
    project: Project,
    registry: PluginRegistry,
    experiment: str,
    overrides: Sequence[str],
    *,
    quiet: bool,
) -> int:
    """Run the sweep of `experiment` and wait for it; the exit code (0: every run completed
    or was pruned). Bad input raises TuneboardError before the database is touched."""
    plan = plan_sweep(project, experiment, registry, overrides)
    prepared = prepare_sweep(plan, registry)
    spec = plan.spec
    observer = ProgressObserver(enabled=not quiet)
    store = Store(project.database)
    engine = Engine(project, store, registry, observer=observer)
    at_once = f", at most {spec.max_parallel} at once" if spec.max_parallel else ""
    echo(
        f"sweep of {experiment!r}: {spec.describe()}: {run_count(spec)} runs{at_once}",
    )

    def launched(member: SweepMember) -> None:
        observer.run_labels[member.run_id] = member_label(member)
        echo(f"run {member.run_id}: {member_label(member)}")

    sweep: Sweep | None = None
    try:
        sweep = launch_sweep(engine, prepared, on_launch=launched)
        echo(f"sweep id {sweep.sweep_id}")
        seen: dict[str, str] = {}
        with observer:
            while not sweep.wait(timeout=0.25):
                if (failure := store.failure) is not None:
                    raise failure
                report_waiting(engine, observer, seen)
    except KeyboardInterrupt:
        exit_on_second_interrupt()
        echo("\ninterrupted: cancelling the sweep…", err=True)
        if sweep is not None:
            sweep.stop()
        engine.shutdown(cancel=True)
        store.close()
        return EXIT_INTERRUPTED
    except BaseException:
        engine.shutdown(cancel=True)
        store.close()
        raise
    engine.shutdown(cancel=False)
    if (failure := store.failure) is not None:
        store.close()
        raise failure
    ok = print_sweep_table(store, sweep, registry)
    store.close()
    return 0 if ok else EXIT_RUN_FAILED


def member_label(member: SweepMember) -> str:
    """`lr=0.01, seed=1` (with `trial 3: ` in front for optuna)."""
    values = ", ".join(
        f"{key.rsplit('.', 1)[-1]}={format_number(value)}" for key, value in member.values.items()
    )
    return f"trial {member.trial}: {values}" if member.trial is not None else values


def print_sweep_table(store: Store, sweep: Sweep, registry: PluginRegistry) -> bool:
    """Print the sweep's runs with their values and headline; True when none failed."""
    console = Console()
    members = list(sweep.members)
    keys = list(dict.fromkeys(key for member in members for key in member.values))
    runs = [store.get_run(member.run_id) for member in members]
    headline = next((run.headline for run in runs if run.headline), "headline")
    columns = ["run", *(["trial"] if sweep.spec.method == "optuna" else []), "status", *keys]
    columns.append(headline)
    rows = []
    for member, run in zip(members, runs, strict=True):
        status = "■ pruned" if member.pruned else status_text(run.status)
        trial = [member.trial] if sweep.spec.method == "optuna" else []
        values = [member.values.get(key) for key in keys]
        rows.append([run.run_id, *trial, status, *values, run.headline_value])
    console.print(rich_table(columns, rows, title=f"sweep {sweep.sweep_id} ({sweep.spec.method})"))
    scored = [run for run in runs if run.headline_value is not None and run.status == COMPLETED]
    if scored:
        higher = metric_higher_is_better(headline, registry)
        best = (max if higher else min)(scored, key=lambda run: float(run.headline_value or 0))
        member = members[runs.index(best)]
        line = safe_text(f"best: run {best.run_id} ({member_label(member)}) {headline} ")
        console.print(line.append(format_number(best.headline_value), style="bold"))
    if sweep.error:
        console.print(Text("error:", style="red").append_text(safe_text(f" {sweep.error}")))
    failed = [
        member.run_id
        for member, run in zip(members, runs, strict=True)
        if run.status != COMPLETED and not member.pruned
    ]
    return not failed and sweep.error is None
