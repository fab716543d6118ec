"""What the user just asked for, shown on the runs table before the store confirms it.

Cancelling a run takes the run's thread (or another process) a moment to notice, and a
deleted run leaves the store when a worker is done: a table that waited for the next read
showed either 1-2 s late. The runs table draws the store's rows through `Pending.apply`,
which shows those runs as the user will see them; `Pending.settle` forgets each request as
soon as a read from the store shows it done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneboard.store import RunRow

CANCELLING = "cancelling"
"""The status shown for a run asked to cancel whose stop the store has not recorded yet."""


@dataclass
class Pending:
    """Runs the user has cancelled or deleted, until the store says so too."""

    cancelling: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    def settle(self, runs: Sequence[RunRow]) -> None:
        """Forget the requests that `runs` (fresh from the store) show done."""
        from tuneboard.store import ACTIVE_STATUSES

        status = {run.run_id: run.status for run in runs}
        self.cancelling = {i for i in self.cancelling if status.get(i) in ACTIVE_STATUSES}
        self.deleted &= status.keys()

    def apply(self, runs: Sequence[RunRow]) -> list[RunRow]:
        """`runs` as they will be: deleted runs left out, cancelled ones `cancelling`."""
        if not self.cancelling and not self.deleted:
            return list(runs)
        return [
            replace(run, status=CANCELLING) if run.run_id in self.cancelling else run
            for run in runs
            if run.run_id not in self.deleted
        ]
