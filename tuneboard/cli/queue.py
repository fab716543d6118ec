"""`tuneboard queue`: show the queue and the devices; move, hold, pin, pause, cancel.

The order, holds, pins and the pause live in the database, so the process running a queued
run (the app, or a headless `tuneboard run`) obeys them within about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tuneboard.cli.shared import (
    echo,
    emit,
    format_option,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.store import Store


def _open(ctx: click.Context, project_dir: Path | None) -> tuple[Project, Store]:
    """The project (this command's --project, else the group's) and its database."""
    given = project_dir or (ctx.obj or {}).get("project_dir")
    project = load_project_from(given)
    return project, open_store(project)


@click.group(invoke_without_command=True)
@project_option
@format_option
@click.pass_context
@friendly_errors
def queue(ctx: click.Context, project_dir: Path | None, fmt: str) -> None:
    """Show the queue in order, and the devices with the runs on them.

    The subcommands steer it: up, down, top, bottom, hold, release, pin, unpin, pause,
    resume, cancel. A held run stays queued; a pinned run starts only on its device; while
    the queue is paused no run starts, in any process.
    """
    ctx.ensure_object(dict)
    ctx.obj["project_dir"] = project_dir
    if ctx.invoked_subcommand is not None:
        return
    project, store = _open(ctx, project_dir)
    try:
        show_queue(project, store, fmt)
    finally:
        store.close()


def show_queue(project: Project, store: Store, fmt: str) -> None:
    """Print the queue (position, full run id, experiment, state, why it waits) and the
    device slots with their figures and running runs."""
    from tuneboard.engine.steering import (
        device_slots,
        entry_state,
        memory_text,
        use_text,
        waiting_reason,
    )

    state = store.queue()
    rows = [
        (n, e.run_id, e.experiment, entry_state(e), waiting_reason(state, e))
        for n, e in enumerate(state.entries, 1)
    ]
    title = f"queue of {project.name}" + (" — paused" if state.paused else "")
    columns = ["#", "run_id", "experiment", "state", "waiting"]
    if fmt != "table":
        emit(columns, rows, fmt)
        return
    from rich.console import Console

    from tuneboard.ui.render import rich_table

    table = rich_table(columns, rows, title=title)
    # The id is what people copy: it never wraps or shortens; the other columns give way.
    table.columns[1].no_wrap = True
    table.columns[1].min_width = max((len(row[1]) for row in rows), default=6)
    console = Console()
    console.print(table)
    running = [(r.run_id, r.device) for r in store.list_runs(status="running")]
    devices = [
        (
            s.figures.device,
            s.figures.name,
            use_text(s.figures),
            memory_text(s.figures),
            s.slots,
            " ".join(s.runs),
        )
        for s in device_slots(project, running, cpu_interval=0.2)
    ]
    console.print(
        rich_table(
            ["device", "name", "use", "memory", "slots", "running"], devices, title="devices"
        )
    )


def _steer(
    ctx: click.Context, project_dir: Path | None, act: Callable[[Project, Store], Any]
) -> None:
    project, store = _open(ctx, project_dir)
    try:
        act(project, store)
    finally:
        store.close()


def _move_command(name: str, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @click.argument("run_id")
    @project_option
    @click.pass_context
    @friendly_errors
    def command(ctx: click.Context, run_id: str, project_dir: Path | None) -> None:
        from tuneboard.engine.steering import move_run

        def act(project: Project, store: Store) -> None:
            full_id = move_run(store, run_id, name)  # type: ignore[arg-type]
            echo(f"run {full_id}: moved {name}")

        _steer(ctx, project_dir, act)

    return command


for _name, _help in (
    ("up", "Move a queued run one place up."),
    ("down", "Move a queued run one place down."),
    ("top", "Move a queued run to the front of the queue."),
    ("bottom", "Move a queued run to the end of the queue."),
):
    queue.add_command(_move_command(_name, _help))


def _hold_command(name: str, held: bool, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @click.argument("run_ids", nargs=-1, required=True)
    @project_option
    @click.pass_context
    @friendly_errors
    def command(ctx: click.Context, run_ids: tuple[str, ...], project_dir: Path | None) -> None:
        from tuneboard.engine.steering import hold_run

        def act(project: Project, store: Store) -> None:
            for run_id in run_ids:
                echo(f"run {hold_run(store, run_id, held)}: {'held' if held else 'released'}")

        _steer(ctx, project_dir, act)

    return command


queue.add_command(_hold_command("hold", True, "Hold queued runs back: they stay queued."))
queue.add_command(_hold_command("release", False, "Release held runs: they may start again."))


@queue.command()
@click.argument("run_id")
@click.argument("device")
@project_option
@click.pass_context
@friendly_errors
def pin(ctx: click.Context, run_id: str, device: str, project_dir: Path | None) -> None:
    """Let a queued run start only on DEVICE (cpu, cuda:0, ...)."""
    from tuneboard.engine.steering import pin_run

    def act(project: Project, store: Store) -> None:
        echo(f"run {pin_run(store, project, run_id, device)}: pinned to {device}")

    _steer(ctx, project_dir, act)


@queue.command()
@click.argument("run_id")
@project_option
@click.pass_context
@friendly_errors
def unpin(ctx: click.Context, run_id: str, project_dir: Path | None) -> None:
    """Let a queued run start on any device again."""
    from tuneboard.engine.steering import pin_run

    def act(project: Project, store: Store) -> None:
        echo(f"run {pin_run(store, project, run_id, None)}: unpinned")

    _steer(ctx, project_dir, act)


def _pause_command(name: str, paused: bool, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @project_option
    @click.pass_context
    @friendly_errors
    def command(ctx: click.Context, project_dir: Path | None) -> None:
        from tuneboard.engine.steering import pause_queue

        def act(project: Project, store: Store) -> None:
            pause_queue(store, paused)
            echo("queue paused" if paused else "queue resumed")

        _steer(ctx, project_dir, act)

    return command


queue.add_command(
    _pause_command("pause", True, "Pause the queue: no queued run starts (running runs go on).")
)
queue.add_command(_pause_command("resume", False, "Resume the queue."))


@queue.command(name="cancel")
@click.argument("run_ids", nargs=-1, required=True)
@project_option
@click.pass_context
@friendly_errors
def cancel_queued(ctx: click.Context, run_ids: tuple[str, ...], project_dir: Path | None) -> None:
    """Cancel queued runs (they end as cancelled without starting)."""
    from tuneboard.engine.steering import queued_run

    def act(project: Project, store: Store) -> None:
        for run_id in run_ids:
            full_id, _ = queued_run(store, run_id)
            store.request_cancel(full_id)
            echo(f"run {full_id}: cancel requested")
        store.flush()

    _steer(ctx, project_dir, act)
