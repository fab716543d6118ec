"""The `tuneboard` command line: run experiments, list and show runs, query with SQL, list plugins.

Each command lives in a module named after it (`tuneboard sql` in `tuneboard/cli/sql.py`;
`export` and `import` together in `export_import.py`; `run_sweep.py` is `tuneboard run`'s
sweep path) and is registered below, by hand.
`shared.py` holds what they share; `plugin_commands.py` adds the commands plugins register
with the `register_commands` hook.

Start-up must stay fast: torch, transformers, Textual and rich are imported only inside the
commands that need them.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

from tuneboard.cli import (
    cancel,
    compare,
    export_import,
    lineage,
    logs,
    plugins,
    queue,
    resume,
    review,
    run,
    runs,
    show,
    sql,
    sweep,
)
from tuneboard.cli.app import open_app
from tuneboard.cli.plugin_commands import TuneboardGroup
from tuneboard.cli.shared import group_project_option
from tuneboard.startup import cancel_start_up


@click.group(
    cls=TuneboardGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="tuneboard")
@group_project_option
@click.pass_context
def main(ctx: click.Context, project_dir: Path | None) -> None:
    """tuneboard: launch, watch, compare and query multi-step fine-tuning runs.

    With no command, opens the terminal app. Commands take --project DIR; by default the
    project is the nearest folder upwards that holds a tuneboard.toml.
    """
    if signal.getsignal(signal.SIGINT) is cancel_start_up:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if ctx.invoked_subcommand is None:
        open_app(project_dir)


main.add_command(run.run)
main.add_command(resume.resume)
main.add_command(runs.runs)
main.add_command(show.show)
main.add_command(compare.compare)
main.add_command(lineage.lineage)
main.add_command(logs.logs)
main.add_command(cancel.cancel)
main.add_command(queue.queue)
main.add_command(sql.sql)
main.add_command(sweep.sweep)
main.add_command(review.review)
main.add_command(export_import.export_command)
main.add_command(export_import.import_command)
main.add_command(plugins.plugins)

__all__ = ["main"]
