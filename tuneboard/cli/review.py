"""`tuneboard review`: write a run's doubtful predictions (or its generations) to a CSV to
correct, and apply it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuneboard.cli.shared import (
    echo,
    friendly_errors,
    load_project_from,
    open_store,
    project_option,
)
from tuneboard.review.items import REVIEW_BY, ReviewBy
from tuneboard.sdk.errors import TuneboardError

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.store import Store


@click.command()
@click.argument("run_id", required=False)
@project_option
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="How many."
)
@click.option(
    "--by",
    type=click.Choice(REVIEW_BY),
    default="auto",
    show_default=True,
    help="wrong: predictions that missed the label; uncertain: least sure first; auto: both. "
    "(Generations: those unlike their reference come first.)",
)
@click.option(
    "--file",
    "file_name",
    default=None,
    help="Which predictions or generations file of the run (its name); default: the newest.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the review file (default: reviews/<run id>.csv in the project).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing review file.")
@click.option(
    "--apply",
    "apply_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Merge an edited review file: its corrected_label column into the corrections file, "
    "or its decision/edited columns into the responses and preferences files.",
)
@friendly_errors
def review(
    run_id: str | None,
    project_dir: Path | None,
    limit: int,
    by: ReviewBy,
    file_name: str | None,
    output: Path | None,
    force: bool,
    apply_file: Path | None,
) -> None:
    """Review RUN's predictions: write the examples it got wrong or was least sure of to a CSV.

    Fill its corrected_label column (empty = skip), then run `tuneboard review --apply FILE`
    to merge the labels into the project's corrections file, which a `feedback` stage adds to
    training.

    For a run whose newest reviewable output is a `generate` stage's generations, the CSV
    lists prompt, reference and output: write accept or bad in its decision column, or a
    better output in its edited column (empty = skip). --apply saves accepted and edited
    outputs to the responses file (for `feedback`) and edits and rejections as preference
    pairs to the preferences file (for `preference`).
    """
    if apply_file is not None:
        if run_id is not None:
            raise TuneboardError("give either RUN (to write a review file) or --apply FILE")
        _apply(project_dir, apply_file)
    elif run_id is None:
        raise TuneboardError("missing RUN (a run id or prefix), or --apply FILE")
    else:
        _write(project_dir, run_id, limit, by, file_name, output, force)


def _write(
    project_dir: Path | None,
    run_id: str,
    limit: int,
    by: ReviewBy,
    file_name: str | None,
    output: Path | None,
    force: bool,
) -> None:
    from tuneboard.review.corrections import read_corrections
    from tuneboard.review.generations import reviews_generations
    from tuneboard.review.items import (
        describe_selection,
        pick_prediction_file,
        prediction_files,
        read_predictions,
        select_items,
        write_review_file,
    )

    project = load_project_from(project_dir)
    store = open_store(project, read_only=True)
    try:
        run = store.get_run(run_id)
        if reviews_generations(store, run.run_id):
            _write_generations(project, store, run.run_id, limit, file_name, output, force)
            return
        files = prediction_files(store, run.run_id)
    finally:
        store.close()
    predictions = read_predictions(pick_prediction_file(files, run.run_id, file_name))
    done = read_corrections(project.corrections_file)
    items = select_items(predictions.items, by, limit, skip=done.keys())
    if not items:
        echo(f"nothing to review in {predictions.path.name} ({describe_selection(by)})")
        return
    target = _target(project, run.run_id, output, force)
    write_review_file(target, run.run_id, predictions.labels, items)
    echo(
        f"wrote {len(items)} examples of {predictions.path.name} ({describe_selection(by)}) "
        f"to {_shown(target)}"
    )
    echo(
        f"fill its corrected_label column (labels: {', '.join(predictions.labels)}; empty = "
        f"skip), then run: tuneboard review --apply {_shown(target)}"
    )


def _write_generations(
    project: Project,
    store: Store,
    run_id: str,
    limit: int,
    file_name: str | None,
    output: Path | None,
    force: bool,
) -> None:
    from tuneboard.review.generations import (
        generation_files,
        pick_generation_file,
        read_generations,
        reviewed_prompts,
        select_generations,
        write_generation_review_file,
    )

    path = pick_generation_file(generation_files(store, run_id), run_id, file_name)
    done = reviewed_prompts(project.responses_file, project.preferences_file)
    items = select_generations(read_generations(path), limit, skip=done)
    if not items:
        echo(f"nothing left to review in {path.name}")
        return
    target = _target(project, run_id, output, force)
    write_generation_review_file(target, run_id, items)
    echo(f"wrote {len(items)} outputs of {path.name} to {_shown(target)}")
    echo(
        "write accept or bad in its decision column, or a better output in its edited column "
        f"(empty = skip), then run: tuneboard review --apply {_shown(target)}"
    )


def _target(project: Project, run_id: str, output: Path | None, force: bool) -> Path:
    if output is None:  # in the project: never through a link that leads out of it
        from tuneboard.sdk.files import private_folder

        reviews = private_folder(project.root / "reviews", project.root, "review file")
        target = reviews / f"{run_id}.csv"
    else:
        target = output
    if target.exists() and not force:
        raise TuneboardError(
            f"{_shown(target)} exists: apply it with `tuneboard review --apply {_shown(target)}`, "
            "or pass --force to write it again"
        )
    return target


def _apply(project_dir: Path | None, path: Path) -> None:
    from tuneboard.review.corrections import save_corrections
    from tuneboard.review.items import read_review_file

    project = load_project_from(project_dir)
    if _generation_review(path):
        _apply_generations(project, path)
        return
    corrections = read_review_file(path)
    if not corrections:
        echo(f"no corrected_label filled in {path}; nothing saved")
        return
    added, changed = save_corrections(project.corrections_file, corrections)
    echo(
        f"saved {len(corrections)} corrections to {_shown(project.corrections_file)} "
        f"({added} new, {changed} changed label)"
    )


def _generation_review(path: Path) -> bool:
    """True when `path` is a generations review file (by its header)."""
    from tuneboard.review.generations import is_generation_review_file

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False  # the labels' reader says what is wrong
    return is_generation_review_file(header)


def _apply_generations(project: Project, path: Path) -> None:
    from tuneboard.review.generations import read_generation_review_file, save_review

    run, items, decisions = read_generation_review_file(path)
    if not decisions:
        echo(f"no decision or edited output filled in {path}; nothing saved")
        return
    outcome = save_review(
        project.responses_file, project.preferences_file, items, decisions, run or ""
    )
    echo(
        f"saved {outcome.responses} responses to {_shown(project.responses_file)} and "
        f"{outcome.preferences} preference pairs to {_shown(project.preferences_file)}"
        + (
            f"; {outcome.unsaved_bad} bad outputs without a reference saved nothing"
            if outcome.unsaved_bad
            else ""
        )
    )


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
