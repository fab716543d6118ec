"""`tuneboard export` and `tuneboard import`: runs to and from Parquet, CSV or JSON-lines files.

One module for both, as `import` is a Python keyword; the work is done in
`tuneboard.store.transfer`.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import click

from tuneboard.cli.shared import (
    echo,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)
from tuneboard.sdk.errors import TuneboardError

EXPORT_FORMATS = ("parquet", "csv", "jsonl")


@click.command("export")
@click.argument("run_ids", nargs=-1)
@project_option
@click.option("--all", "all_runs", is_flag=True, help="Export every run of the project.")
@click.option(
    "--experiment",
    "-e",
    "experiments",
    multiple=True,
    help="Export every run of this experiment (repeatable).",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(EXPORT_FORMATS),
    default="parquet",
    show_default=True,
    help="File format of the tables.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="New (or empty) folder to write (default: ./tuneboard-export-PROJECT-TIME).",
)
@friendly_errors
def export_command(
    run_ids: tuple[str, ...],
    project_dir: Path | None,
    all_runs: bool,
    experiments: tuple[str, ...],
    file_format: str,
    out: Path | None,
) -> None:
    """Export runs (ids or unique prefixes) with their stages, metrics, events, artifacts.

    Writes a new folder: one file per table plus manifest.json, which `tuneboard import`
    reads into another project.
    """
    from tuneboard.store.transfer import export_runs

    if not (run_ids or all_runs or experiments):
        raise TuneboardError("name the runs to export (RUN ...), or use --all or --experiment")
    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    chosen: list[str] = []
    if all_runs:
        chosen += [row.run_id for row in store.list_runs()]
    for experiment in experiments:
        found = [row.run_id for row in store.list_runs(experiment=experiment)]
        if not found:
            raise TuneboardError(f"no runs of experiment {experiment!r} in {store.path}")
        chosen += found
    chosen += [store.get_run(given).run_id for given in run_ids]
    if out is None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", project.name).strip("-.") or "project"
        out = Path(f"tuneboard-export-{name}-{datetime.now():%Y%m%d-%H%M%S}")
    result = export_runs(store, sorted(set(chosen)), out, file_format, source_project=project.name)
    counts = ", ".join(f"{result.rows[name]} {name}" for name in list(result.rows)[1:])
    echo(f"exported {len(result.run_ids)} runs ({counts}) as {file_format} to {result.folder}")


@click.command("import")
@click.argument("folder", type=click.Path(path_type=Path))
@project_option
@friendly_errors
def import_command(folder: Path, project_dir: Path | None) -> None:
    """Add the runs of an export FOLDER to this project, in one transaction.

    Runs whose id is already here are skipped, never replaced: counted as identical, or
    reported as conflicting (this project's version is kept). Runs that were still active
    when exported arrive as interrupted.
    """
    from tuneboard.store.transfer import import_runs, read_export

    project = load_project_from(project_dir)
    export = read_export(folder)  # every file checked before the database is touched
    store = open_store(project)
    try:
        result = import_runs(store, export)
    finally:
        store.close()
    counts = ", ".join(f"{result.rows.get(name, 0)} {name}" for name in list(result.rows)[1:])
    echo(
        f"imported {len(result.imported)} runs ({counts}) from {result.folder}"
        f" (project {result.source_project!r})"
    )
    if result.identical:
        echo(f"skipped {len(result.identical)} runs already here (identical)")
    if result.conflicting:
        ids = ", ".join(result.conflicting)
        echo(
            f"skipped {len(result.conflicting)} runs whose id is here with different data"
            f" (this project's version kept): {ids}",
            fg="yellow",
            err=True,
        )
