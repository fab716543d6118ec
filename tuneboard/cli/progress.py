"""Progress bars for `tuneboard run` and `resume`: one bar per stage, latest loss and metric."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from tuneboard.engine.capture import paused
from tuneboard.engine.observer import RunObserver, StageSummary
from tuneboard.ui.render import format_number, status_text
from tuneboard.ui.safe import visible

# Shown beside a bar, in this order, when the stage logs them.
SHOWN_METRICS = ("train/loss", "val/loss")


class ProgressObserver(RunObserver):
    """Draws rich progress bars from run notifications (called from worker threads).

    `run_labels` (run id -> short text) prefixes the bars and lines of runs that have one,
    so the runs of a sweep can be told apart.
    """

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress = Progress(
            # Names and metrics are user data: never read as markup.
            TextColumn("{task.description}", markup=False, table_column=Column(no_wrap=True)),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}", markup=False),
            console=self.console,
            disable=not enabled,
        )
        self._tasks: dict[tuple[str, int], TaskID] = {}
        self._latest: dict[tuple[str, int], dict[str, float]] = {}
        self._lock = threading.Lock()
        self.run_labels: dict[str, str] = {}

    def __enter__(self) -> ProgressObserver:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def stage_started(self, run_id: str, stage_index: int, name: str, plugin: str) -> None:
        """Add a bar for the stage."""
        label = f"{stage_index} {name}" if name == plugin else f"{stage_index} {name} ({plugin})"
        if run_id in self.run_labels:
            label = f"{self.run_labels[run_id]} · {label}"
        # Called from the run's thread; rich draws the bars here: not the run's output.
        with self._lock, paused():
            self._tasks[(run_id, stage_index)] = self._progress.add_task(
                visible(label), total=None, metrics=""
            )

    def progress(
        self, run_id: str, stage_index: int, completed: int, total: int | None, description: str
    ) -> None:
        """Move the stage's bar."""
        task = self._tasks.get((run_id, stage_index))
        if task is not None:
            self._progress.update(task, completed=completed, total=total)

    def metrics(self, run_id: str, stage_index: int, step: int, values: dict[str, float]) -> None:
        """Show the latest loss and validation metrics beside the bar."""
        key = (run_id, stage_index)
        task = self._tasks.get(key)
        if task is None:
            return
        latest = self._latest.setdefault(key, {})
        latest.update(values)
        shown = [name for name in SHOWN_METRICS if name in latest]
        shown += sorted(n for n in latest if n.startswith("val/") and n not in SHOWN_METRICS)[:2]
        text = "  ".join(f"{name} {format_number(latest[name])}" for name in shown)
        self._progress.update(task, metrics=visible(text))

    def waiting(self, run_id: str, reason: str) -> None:
        """Say why a run waits in the queue (a pause, a hold, a pin, memory), even when quiet:
        a run that does not start must say why."""
        run = self.run_labels.get(run_id, f"run {run_id}")
        self._progress.console.print(
            visible(f"  {run} waits: {reason}"), highlight=False, markup=False
        )

    def stage_finished(self, run_id: str, stage_index: int, summary: StageSummary) -> None:
        """Complete the bar and print a line about the stage."""
        task = self._tasks.get((run_id, stage_index))
        if task is not None:
            self._progress.update(
                task, total=max(summary.steps, 1), completed=max(summary.steps, 1)
            )
        best = ""
        if summary.best_value is not None:
            best = f", best {summary.best_metric} {format_number(summary.best_value)}"
            best += f" at step {summary.best_step}"
        if self.enabled:
            status = status_text(summary.status)
            run = f"{self.run_labels[run_id]} · " if run_id in self.run_labels else ""
            with paused():  # called from the run's thread: tuneboard's line, not the run's
                self._progress.console.print(
                    visible(
                        f"  {run}stage {stage_index} {summary.name}: {status} in "
                        f"{summary.seconds:.1f}s{best}"
                    ),
                    highlight=False,
                    markup=False,
                )
