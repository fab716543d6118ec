"""What the commands share: one-line errors, common options, the project and its database,
tables for people and scripts, and the wait-and-summarise path of `run` and `resume`.

Only click and `tuneboard.ui.render`'s constants are imported at the top: rich, the engine and
the store are imported inside the functions that need them, so `tuneboard --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from tuneboard.sdk.errors import TuneboardError
from tuneboard.ui.render import OUTPUT_FORMATS

if TYPE_CHECKING:
    from tuneboard.cli.progress import ProgressObserver
    from tuneboard.config import Project
    from tuneboard.engine.engine import Engine
    from tuneboard.store import Store

F = TypeVar("F", bound=Callable[..., Any])

EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def friendly_errors(command: F) -> F:
    """Show tuneboard errors as one line on stderr with exit code 2, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TuneboardError as error:
            echo(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:  # Ctrl-C outside a command's own handling: no traceback
            click.echo("\ninterrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def echo(message: str, *, err: bool = False, fg: str | None = None) -> None:
    """Print a line that may hold user data (names, paths, errors), control characters escaped.

    Every plain line the commands print goes through here; Rich output goes through
    `tuneboard.ui.safe` (`safe_text`), as it must also never read user data as markup.
    """
    from tuneboard.ui.safe import visible

    click.secho(visible(message, multiline=True), fg=fg, err=err)


def exit_on_second_interrupt(message: str = "interrupted again: exiting now") -> None:
    """From now on, Ctrl-C exits at once (130), whatever the process is waiting for.

    Call it when the first Ctrl-C starts a graceful stop that may take a while.
    """
    import os
    import signal

    def exit_now(signum: int, frame: object) -> None:
        sys.stderr.write(f"\n{message}\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, exit_now)


def _inherit_project(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A command's --project, else the one given before its name (`tuneboard -p DIR runs`).

    Both given and naming different folders: a one-line error, exit 2.
    """
    parent = ctx.parent
    while parent is not None and "project_dir" not in parent.params:
        parent = parent.parent
    given: Path | None = None if parent is None else parent.params["project_dir"]
    if value is None:
        return given
    if given is not None and given.resolve() != value.resolve():
        message = f"error: --project given twice: {given} before the command, {value} after"
        echo(message, err=True, fg="red")
        sys.exit(EXIT_BAD_INPUT)
    return value


def _project_option(*, eager: bool) -> Callable[[F], F]:
    return click.option(
        "--project",
        "-p",
        "project_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        is_eager=eager,
        # The group's own is read as given; a command's falls back on the group's.
        callback=None if eager else _inherit_project,
        help="Project folder (default: the nearest folder upwards holding a tuneboard.toml).",
    )


# A command's own: `tuneboard runs -p DIR`; `tuneboard -p DIR runs` works the same.
project_option = _project_option(eager=False)
# The `tuneboard` group's own: eager, so that `tuneboard -p DIR --help` knows the project
# before --help lists the commands (with those of DIR's plugins).
group_project_option = _project_option(eager=True)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="table",
    show_default=True,
    help="Output format; csv and json are for scripts.",
)


def load_project_from(project_dir: Path | None) -> Project:
    """The project in `project_dir`, or the nearest one upwards from the current folder."""
    from tuneboard.config import find_project, load_project

    if project_dir is not None:
        return load_project(project_dir)
    return load_project(find_project(Path.cwd()))


def plugins_root(project_dir: Path | None) -> Path | None:
    """The project whose own plugins count too; None outside a project."""
    from tuneboard.config import find_project

    if project_dir is not None:
        return project_dir
    try:
        return find_project(Path.cwd())
    except TuneboardError:
        return None  # outside a project: built-ins and installed plugins only


def open_store(project: Project, *, read_only: bool = False) -> Store:
    """The project's database (created, empty, when a reading command finds none yet)."""
    from tuneboard.store import Store

    return Store(project.database, read_only=read_only and project.database.exists())


def metric_direction(project: Project) -> Callable[[str], bool]:
    """Whether higher values of a metric are better, from the project's metric plugins."""
    from tuneboard.engine.context import metric_higher_is_better
    from tuneboard.plugins import load_plugins

    registry = load_plugins(project.root)
    return lambda name: metric_higher_is_better(name, registry)


def emit(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, title: str | None = None
) -> None:
    """Print rows as a rich table (``fmt`` "table") or as csv/json on stdout for scripts.

    CSV is exact when piped; on a terminal its text has control characters escaped, as `ls`
    does with file names (JSON escapes them itself).
    """
    if fmt == "table":
        from rich.console import Console

        from tuneboard.ui.render import rich_table

        Console().print(rich_table(columns, rows, title=title))
    else:
        from tuneboard.ui.render import write_rows

        if fmt == "csv" and sys.stdout.isatty():
            from tuneboard.ui.safe import visible

            columns = [visible(name) for name in columns]
            rows = [[visible(v) if isinstance(v, str) else v for v in row] for row in rows]
        write_rows(columns, rows, fmt, sys.stdout)


def report_waiting(engine: Engine, observer: ProgressObserver, seen: dict[str, str]) -> None:
    """Tell the user when a run of this process starts waiting for something other than a
    free slot (a paused queue, a hold, a pin, memory); `seen` keeps what was said."""
    from tuneboard.sdk.scheduler import NO_SLOT

    for run_id, why in engine.scheduler.waiting().items():
        if seen.get(run_id) != why:
            seen[run_id] = why
            if why != NO_SLOT and not why.startswith("its sweep"):
                observer.waiting(run_id, why)


def follow_run(
    engine: Engine, store: Store, observer: ProgressObserver, start: Callable[[], str]
) -> NoReturn:
    """Start a run with `start` (it returns the run's id), wait for it, summarise, and exit.

    Progress bars show while it runs. Exits 0 when the run completed, 1 when it did not, and
    130 on Ctrl-C, which cancels it (a second Ctrl-C exits at once). When the database can no
    longer be written (`store.failure`), the run is stopped and that error goes on to
    `friendly_errors` (exit 2); so does any other error, after the engine is shut down
    (cancelling the run) and the store closed.
    """
    try:
        run_id = start()
        seen: dict[str, str] = {}
        with observer:
            while not engine.wait([run_id], timeout=0.25):
                if (failure := store.failure) is not None:
                    raise failure
                report_waiting(engine, observer, seen)
    except KeyboardInterrupt:
        exit_on_second_interrupt()
        click.echo("\ninterrupted: cancelling the run…", err=True)
        engine.shutdown(cancel=True)
        store.close()
        sys.exit(EXIT_INTERRUPTED)
    except BaseException:
        engine.shutdown(cancel=True)
        store.close()
        raise
    engine.shutdown(cancel=False)
    if (failure := store.failure) is not None:  # it failed while the run ended
        store.close()
        raise failure
    status = print_run_summary(store, run_id)
    store.close()
    sys.exit(0 if status == "completed" else EXIT_RUN_FAILED)


def print_run_summary(store: Store, run_id: str) -> str:
    """Print the run's stages as a table, its test metrics and error; return its status."""
    from rich.console import Console
    from rich.text import Text

    from tuneboard.ui.render import elapsed, format_duration, format_number, rich_table, status_text
    from tuneboard.ui.safe import safe_text

    console = Console()
    run_row = store.get_run(run_id)
    rows = [
        (
            stage.stage_index,
            stage.name,
            stage.plugin,
            status_text(stage.status),
            stage.steps,
            f"{stage.best_metric} {format_number(stage.best_value)}"
            if stage.best_value is not None
            else "",
            format_duration(elapsed(stage.started_at, stage.finished_at)),
        )
        for stage in store.stages(run_id)
    ]
    columns = ["#", "stage", "plugin", "status", "steps", "best", "time"]
    console.print(rich_table(columns, rows, title=f"run {run_id} — {status_text(run_row.status)}"))
    final = {k: v for k, v in store.last_metrics(run_id).items() if k.startswith("test/")}
    if final:
        line = Text()
        for name, value in sorted(final.items()):
            line.append_text(safe_text(f"{name} " if not line else f"  {name} "))
            line.append(f"{value:.4f}", style="bold")
        console.print(line)
    if run_row.error:
        # Not wrapped at the console's width: scripts grep for the message.
        error = safe_text(f" {run_row.error}", multiline=True)
        console.print(Text("error:", style="red").append_text(error), soft_wrap=True)
    return run_row.status
