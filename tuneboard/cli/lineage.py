"""`tuneboard lineage RUN`: the runs a run's model came from, and those that came from it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tuneboard.cli.shared import friendly_errors, load_project_from, open_store, project_option


@click.command()
@click.argument("run_id")
@project_option
@click.option("--json", "as_json", is_flag=True, help="The tree as one JSON document.")
@friendly_errors
def lineage(run_id: str, project_dir: Path | None, as_json: bool) -> None:
    """Show RUN's lineage: its ancestors up to the root, then its descendants.

    A run's parent is the run whose exported model or checkpoint its model is (a model =
    "run:ID" source, or a path into that run's folder). Each line shows a run's id,
    experiment, status and headline value, and what of its parent it started from; then
    RUN's stages, each with the checkpoint it handed to the next (repeat rounds included).
    An id prefix works.
    """
    from rich.console import Console

    from tuneboard.ui.lineage import lineage_document, read_lineage, stage_chain, tree_lines
    from tuneboard.ui.render import json_default
    from tuneboard.ui.safe import safe_text

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    try:
        run = store.get_run(run_id)
        found = read_lineage(store, run.run_id)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(lineage_document(found), default=json_default, indent=2))
        return
    console = Console()
    for text, own in tree_lines(found):
        console.print(safe_text(text, "bold" if own else ""), soft_wrap=True)
    if found.parent is None and not found.children:
        console.print(
            safe_text("no parent and no children: its model came from no other run here"),
            style="dim",
        )
    chain = stage_chain(found.stages)
    if chain:
        console.print(safe_text(f"stages of {found.run_id}: {chain}"), soft_wrap=True)
