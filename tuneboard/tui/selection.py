"""What the runs screen's actions on selected runs act on: pure functions, no Textual.

Compare and delete act on every selected run, those the filters hide as well; they say how
many are hidden, so nothing happens to runs the user cannot see without being told.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneboard.store import RunRow


def selection_order(selected: Collection[str], shown: Sequence[str]) -> tuple[list[str], int]:
    """The selected run ids, those shown in the table's order first, then the hidden ones
    (sorted); and how many are hidden."""
    ids = [run_id for run_id in shown if run_id in selected]
    visible = set(ids)
    hidden = sorted(run_id for run_id in selected if run_id not in visible)
    return ids + hidden, len(hidden)


def delete_question(runs: Sequence[RunRow], hidden: int) -> str:
    """The delete dialog's question: the run named when there is one, else how many (and
    how many of them the filters hide)."""
    gone = "Its metrics, events and files are removed for good."
    if len(runs) == 1 and not hidden:
        run = runs[0]
        return f"Delete run {run.run_id} ({run.experiment}, {run.status})?\n{gone}"
    names = ", ".join(run.run_id for run in runs[:3]) + (", …" if len(runs) > 3 else "")
    where = f", {hidden} of them hidden by the filters" if hidden else ""
    gone = "Their metrics, events and files are removed for good."
    return f"Delete {len(runs)} selected runs{where}?\n{names}\n{gone}"
