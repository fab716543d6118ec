"""The `tuneboard` command line: run experiments, list and show runs, query with SQL, list plugins.

Start-up must stay fast: torch, transformers, Textual and rich are imported only inside the
commands that need them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tuneboard.render import OUTPUT_FORMATS
from tuneboard.sdk.errors import TuneboardError

if TYPE_CHECKING:
    from tuneboard.config import Project
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
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:  # Ctrl-C outside a command's own handling: no traceback
            click.echo("\ninterrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


project_option = click.option(
    "--project",
    "-p",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project folder (default: the nearest folder upwards holding a tuneboard.toml).",
)
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


def open_store(project: Project, *, read_only: bool = False) -> Store:
    """The project's database (created, empty, when a reading command finds none yet)."""
    from tuneboard.store import Store

    return Store(project.database, read_only=read_only and project.database.exists())


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tuneboard")
@project_option
@click.pass_context
def main(ctx: click.Context, project_dir: Path | None) -> None:
    """tuneboard: launch, watch, compare and query multi-step fine-tuning runs.

    With no command, opens the terminal app. Commands take --project DIR; by default the
    project is the nearest folder upwards that holds a tuneboard.toml.
    """
    if ctx.invoked_subcommand is None:
        _open_app(project_dir)


@friendly_errors
def _open_app(project_dir: Path | None) -> None:
    """Open the Textual app on the project (Textual is imported only here)."""
    from tuneboard.tui.app import run_app

    project = load_project_from(project_dir)
    if project.executor.plugin != "local":  # a bad executor is an error before the app opens
        from tuneboard.engine.executors import build_executor
        from tuneboard.plugins import load_plugins

        build_executor(project, load_plugins(project.root))
    run_app(project)


@main.command()
@click.argument("experiment")
@project_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a value of the experiment, e.g. --set stages.1.lr=3e-5 (repeatable).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; only the summary.")
@click.option(
    "--no-sweep", is_flag=True, help="Run the experiment once, without its [sweep] table."
)
@click.option(
    "--executor",
    "executor_name",
    metavar="NAME",
    default=None,
    help='Where to run: "local" or an executor plugin such as "ray" (default: the project\'s).',
)
@click.option(
    "--address",
    metavar="URL",
    default=None,
    help="The executor's address, e.g. a Ray cluster's http://HOST:8265.",
)
@click.option(
    "--executor-set",
    "executor_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a key of the executor, e.g. --executor-set gpus_per_run=1 (repeatable).",
)
@friendly_errors
def run(
    experiment: str,
    project_dir: Path | None,
    overrides: tuple[str, ...],
    quiet: bool,
    no_sweep: bool,
    executor_name: str | None,
    address: str | None,
    executor_settings: tuple[str, ...],
) -> None:
    """Run EXPERIMENT from tuneboard.toml and wait for it; exit 0 only if it completed.

    An experiment with a [experiments.NAME.sweep] table runs every run of its sweep (--set
    applies to each) and prints a table of them; exit 0 only if none failed.
    """
    from tuneboard.cli_progress import ProgressObserver
    from tuneboard.engine.engine import Engine
    from tuneboard.engine.executors import build_executor
    from tuneboard.engine.runner import prepare_run
    from tuneboard.plugins import load_plugins
    from tuneboard.sweeps import has_sweep

    project = load_project_from(project_dir)
    registry = load_plugins(project.root)
    project = _with_executor_options(project, executor_name, address, executor_settings)
    executor = build_executor(project, registry)  # checks its settings before anything runs
    if not no_sweep and has_sweep(project, experiment, overrides):
        from tuneboard.cli_sweep import run_sweep

        sys.exit(run_sweep(project, registry, experiment, overrides, quiet=quiet))
    config = project.experiment(experiment, registry, overrides)
    # Everything that can fail on bad input happens before the database is touched.
    prepared = prepare_run(project, config, registry)
    observer = ProgressObserver(enabled=not quiet)
    store = open_store(project)
    engine = Engine(project, store, registry, observer=observer, executor=executor)
    try:
        run_id = engine.launch(prepared)
        click.echo(f"run {run_id}: experiment {experiment!r} ({len(config.stages)} stages)")
        with observer:
            while not engine.wait([run_id], timeout=0.25):
                pass
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cancelling the run…", err=True)
        engine.shutdown(cancel=True)
        store.close()
        sys.exit(EXIT_INTERRUPTED)
    engine.shutdown(cancel=False)
    status = _print_run_summary(store, run_id)
    store.close()
    sys.exit(0 if status == "completed" else EXIT_RUN_FAILED)


def _with_executor_options(
    project: Project, name: str | None, address: str | None, settings: Sequence[str]
) -> Project:
    """The project with `run`'s --executor, --address and --executor-set options applied."""
    import dataclasses

    from tuneboard.config import parse_executor_settings

    table = parse_executor_settings(settings)
    if address is not None:
        table["address"] = address
    return dataclasses.replace(project, executor=project.executor.override(name, table))


def _print_run_summary(store: Store, run_id: str) -> str:
    from rich.console import Console

    from tuneboard.render import elapsed, format_duration, format_number, rich_table, status_text

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
        console.print(
            "  ".join(f"{name} [bold]{value:.4f}[/]" for name, value in sorted(final.items()))
        )
    if run_row.error:
        # Not wrapped at the console's width: scripts grep for the message.
        console.print(f"[red]error:[/] {run_row.error}", soft_wrap=True)
    return run_row.status


@main.command()
@project_option
@format_option
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="How many runs.")
@click.option("--experiment", "-e", default=None, help="Only runs of this experiment.")
@click.option("--status", "-s", default=None, help="Only runs with this status.")
@friendly_errors
def runs(
    project_dir: Path | None, fmt: str, limit: int, experiment: str | None, status: str | None
) -> None:
    """List runs, newest first."""
    import time

    from tuneboard.render import elapsed, format_duration, format_time, iso_time, status_text

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    now = time.time()
    columns = [
        "run_id",
        "experiment",
        "status",
        "device",
        "started",
        "duration",
        "headline",
        "value",
    ]
    rows: list[Sequence[Any]] = []
    for r in store.list_runs(limit=limit, experiment=experiment, status=status):
        end = r.finished_at or (now if r.status == "running" else None)
        duration = elapsed(r.started_at, end)
        if fmt == "table":
            status_cell = status_text(r.status)
            if r.status == "running" and r.current_stage:
                status_cell += f" {r.current_stage} {100 * (r.progress or 0):.0f}%"
            row: Sequence[Any] = (
                r.run_id,
                r.experiment,
                status_cell,
                r.device,
                format_time(r.started_at),
                format_duration(duration),
            )
        else:
            row = (r.run_id, r.experiment, r.status, r.device, iso_time(r.started_at), duration)
        rows.append((*row, r.headline, r.headline_value))
    _emit(columns, rows, fmt, title=f"runs of {project.name}")


@main.command()
@click.argument("run_id")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON document.")
@click.option(
    "--events",
    "event_count",
    type=int,
    default=15,
    show_default=True,
    help="How many recent events to show.",
)
@friendly_errors
def show(run_id: str, project_dir: Path | None, as_json: bool, event_count: int) -> None:
    """Show one run: status, stages, final metrics, events and artifacts (an id prefix works)."""
    from dataclasses import asdict

    from tuneboard.render import json_default

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    run_row = store.get_run(run_id)
    stages = store.stages(run_row.run_id)
    metrics = store.last_metrics(run_row.run_id)
    events = store.events(run_row.run_id)
    artifacts = store.artifacts(run_row.run_id)
    provenance = store.provenance(run_row.run_id)
    if as_json:
        document = {
            "run": asdict(run_row),
            "stages": [asdict(s) for s in stages],
            "metrics": metrics,
            "events": [asdict(e) for e in events],
            "artifacts": [asdict(a) for a in artifacts],
            "provenance": provenance,
        }
        click.echo(json.dumps(document, default=json_default, indent=2))
        return
    _show_run(
        store, run_row.run_id, events[-event_count:] if event_count else [], artifacts, metrics
    )
    if provenance:
        from tuneboard.provenance import summary_lines

        click.echo("reproduce with:")
        for line in summary_lines(provenance):
            click.echo(f"  {line}")


def _show_run(
    store: Store,
    run_id: str,
    events: Sequence[Any],
    artifacts: Sequence[Any],
    metrics: dict[str, float],
) -> None:
    from rich.console import Console

    from tuneboard.render import format_time, rich_table

    console = Console()
    run_row = store.get_run(run_id)
    console.print(
        f"[bold]{run_row.run_id}[/]  experiment {run_row.experiment}  "
        f"device {run_row.device or '-'}"
    )
    console.print(
        f"created {format_time(run_row.created_at)}  started {format_time(run_row.started_at)}  "
        f"finished {format_time(run_row.finished_at)}"
    )
    _print_run_summary(store, run_id)
    if metrics:
        console.print(
            rich_table(["metric", "last value"], sorted(metrics.items()), title="metrics")
        )
    if artifacts:
        console.print(
            rich_table(
                ["stage", "kind", "path", "bytes", "sha256"],
                [(a.stage_index, a.kind, a.path, a.bytes, a.sha256[:12]) for a in artifacts],
                title="artifacts",
            )
        )
    if events:
        console.print("[bold]events[/]")
        for event in events:
            first, *rest = event.message.splitlines() or [""]
            console.print(
                f"  {format_time(event.time)}  {event.level:<7} {first}",
                markup=False,
                highlight=False,
            )
            if event.level == "error":
                for line in rest[-6:]:
                    console.print(f"      {line}", markup=False, highlight=False)


@main.command()
@click.argument("run_ids", nargs=-1, required=True)
@project_option
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until they stop.")
@friendly_errors
def cancel(run_ids: tuple[str, ...], project_dir: Path | None, wait: bool) -> None:
    """Cancel queued or running runs (an id prefix works), whichever process runs them."""
    import time

    from tuneboard.store import ACTIVE_STATUSES

    project = load_project_from(project_dir)
    store = open_store(project)
    asked = []
    for given in run_ids:
        row = store.get_run(given)
        if row.status not in ACTIVE_STATUSES:
            click.echo(f"run {row.run_id} is already {row.status}")
            continue
        store.request_cancel(row.run_id)
        asked.append(row.run_id)
        click.echo(f"run {row.run_id}: cancel requested")
    store.flush()
    deadline = time.monotonic() + 120
    while wait and asked and time.monotonic() < deadline:
        time.sleep(0.5)
        asked = [r for r in asked if store.get_run(r).status in ACTIVE_STATUSES]
    for run_id in asked if wait else []:
        click.echo(f"run {run_id} has not stopped yet (is its process busy or hung?)", err=True)
    store.close()
    sys.exit(EXIT_RUN_FAILED if wait and asked else 0)


@main.command()
@click.argument("query")
@project_option
@format_option
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Most rows to return.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rows of the result to skip first (with --limit: one page of it).",
)
@click.option(
    "--attach",
    "attach_specs",
    multiple=True,
    metavar="[ALIAS=]PATH",
    help="Also read another DuckDB file, read-only, as ALIAS.table (default alias: the file's "
    "name, or its project folder's); repeatable.",
)
@friendly_errors
def sql(
    query: str,
    project_dir: Path | None,
    fmt: str,
    limit: int,
    offset: int,
    attach_specs: tuple[str, ...],
) -> None:
    """Run a read-only SQL QUERY over the project's database ('-' reads it from stdin).

    Tables: runs, stages, metrics, events, artifacts (see the README for the schema); those
    of an attached database as ALIAS.runs and so on.
    """
    import time

    from tuneboard.sdk.errors import QueryError
    from tuneboard.store.attach import parse_attachments
    from tuneboard.store.sql import start_query

    attach = parse_attachments(attach_specs)
    if query == "-":
        query = sys.stdin.read()
    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    # In a thread, so that Ctrl-C reaches this thread (DuckDB would turn it into a bare
    # RuntimeError) and the query is cancelled cleanly.
    job = start_query(store, query, limit=limit, offset=offset, attach=attach)
    try:
        while not job.done:
            time.sleep(0.05)
    except KeyboardInterrupt:
        job.cancel()
        with contextlib.suppress(QueryError):
            job.result(timeout=10)
        click.echo("\nquery cancelled", err=True)
        sys.exit(EXIT_INTERRUPTED)
    result = job.result()
    _emit(result.columns, result.rows, fmt)
    if fmt == "table":
        page = f"rows {offset + 1}-{offset + limit}" if offset else f"first {limit}"
        more = f" ({page}; use --limit or --offset for more)" if result.truncated else ""
        click.echo(f"{len(result.rows)} rows{more} in {result.elapsed * 1000:.0f} ms", err=True)


@main.group(invoke_without_command=True)
@project_option
@click.option("--json", "as_json", is_flag=True, help="As JSON, for scripts.")
@click.pass_context
@friendly_errors
def plugins(ctx: click.Context, project_dir: Path | None, as_json: bool) -> None:
    """List every loaded plugin (name, version, source, what it provides) and load failures.

    `tuneboard plugins install` and `uninstall` add and remove plugin packages with pip.
    """
    from dataclasses import asdict

    from tuneboard.plugins import load_plugins

    ctx.obj = project_dir
    if ctx.invoked_subcommand is not None:
        return
    root = _plugins_root(project_dir)
    registry = load_plugins(root)
    if as_json:
        document = {
            "plugins": [asdict(p) for p in registry.plugins],
            "failures": [asdict(f) for f in registry.failures],
        }
        click.echo(json.dumps(document, indent=2, default=str))
        return
    from rich.console import Console

    from tuneboard.render import rich_table

    console = Console()
    rows = [
        (
            p.name,
            p.distribution or "-",
            p.version,
            p.source,
            p.describe(),
            p.location if p.path in (None, p.location) else f"{p.location} ({p.path})",
        )
        for p in registry.plugins
    ]
    columns = ["plugin", "package", "version", "source", "provides", "location"]
    console.print(rich_table(columns, rows, title="plugins"))
    for failure in registry.failures:
        console.print(
            f"[red]✗ {failure.name}[/] ({failure.source}, {failure.location}): {failure.error}",
            highlight=False,
        )


def _plugins_root(project_dir: Path | None) -> Path | None:
    """The project whose own plugins count too; None outside a project."""
    from tuneboard.config import find_project

    if project_dir is not None:
        return project_dir
    try:
        return find_project(Path.cwd())
    except TuneboardError:
        return None  # outside a project: built-ins and installed plugins only


@plugins.command("install")
@click.argument("targets", nargs=-1, required=True, metavar="NAME_OR_PATH...")
@project_option
@click.option("--upgrade", "-U", is_flag=True, help="Upgrade packages that are installed.")
@click.option("--editable", "-e", is_flag=True, help="Install project folders in editable mode.")
@click.option("--no-deps", is_flag=True, help="Do not install the packages' dependencies.")
@click.option(
    "--no-build-isolation", is_flag=True, help="Build with the installed build tools (offline)."
)
@click.pass_obj
@friendly_errors
def plugins_install(
    group_project: Path | None,
    targets: tuple[str, ...],
    project_dir: Path | None,
    upgrade: bool,
    editable: bool,
    no_deps: bool,
    no_build_isolation: bool,
) -> None:
    """Install plugin packages (PyPI names, wheels or folders) with pip, then show what they add.

    pip runs in tuneboard's own interpreter, so the plugins land where tuneboard loads them.
    """
    from tuneboard.plugin_install import InstallOptions, Listing, install_plugins
    from tuneboard.plugins import load_plugins

    root = _plugins_root(project_dir or group_project)
    options = InstallOptions(upgrade, editable, no_deps, no_build_isolation)
    before = Listing.of(load_plugins(root))
    install_plugins(targets, options, before=before, project_dir=root, echo=click.echo)


@plugins.command("uninstall")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@project_option
@click.pass_obj
@friendly_errors
def plugins_uninstall(
    group_project: Path | None, names: tuple[str, ...], project_dir: Path | None
) -> None:
    """Uninstall plugin packages with pip; NAME is a plugin's name or its package's."""
    from tuneboard.plugin_install import uninstall_plugins
    from tuneboard.plugins import load_plugins

    root = _plugins_root(project_dir or group_project)
    uninstall_plugins(names, load_plugins(root), project_dir=root, echo=click.echo)


def _emit(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, title: str | None = None
) -> None:
    if fmt == "table":
        from rich.console import Console

        from tuneboard.render import rich_table

        Console().print(rich_table(columns, rows, title=title))
    else:
        from tuneboard.render import write_rows

        write_rows(columns, rows, fmt, sys.stdout)


def _add_commands() -> None:
    """Add the commands kept in modules of their own (they import the helpers above)."""
    from tuneboard.cli_resume import resume
    from tuneboard.cli_review import review
    from tuneboard.cli_transfer import export_command, import_command

    main.add_command(review)
    main.add_command(resume)
    main.add_command(export_command)
    main.add_command(import_command)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # Run the importable module's group: one set of commands, registered once.
    from tuneboard.cli import main as package_main

    package_main()
else:
    _add_commands()
