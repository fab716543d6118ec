"""What a rank other than 0 of a data-parallel run changes in the runner: it reads the run's
folder (what rank 0 handed on, to resume) but writes nothing there."""

from __future__ import annotations

from tuneboard.engine.resume import RunRecovery


class ReadingRecovery(RunRecovery):
    """Restores a resumed run from the run's folder like `RunRecovery`, writing no handoffs
    (rank 0 writes them)."""

    def _write_handoff(self, *args: object, **kwargs: object) -> None:
        """Rank 0 writes the handoff."""
