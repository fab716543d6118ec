"""The home screen: every run of the project, live, with filters, sorting and actions."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Header, Input, Select, Static

from tuneboard.tui.cells import (
    STATUS_VARIABLES,
    duration_cell,
    duration_of,
    headline_cell,
    is_active,
    stage_cell,
    status_cell,
)
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.pending import Pending
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.render import format_time
from tuneboard.ui.safe import safe_text

if TYPE_CHECKING:
    from tuneboard.store import RunRow

ALL = "*"
# A refilled table gets at least this many rows (and a terminal's height) at once, the rest
# after the next frame (see `RunsScreen.redraw`).
FIRST_ROWS = 50
STATUS_ORDER = ("running", "queued", "failed", "interrupted", "cancelled", "completed")


@dataclass(frozen=True)
class Column:
    """A column of the runs table: its header, width and how rows sort by it."""

    key: str
    label: str
    sort_key: Callable[[RunRow, float], Any]


def _or_zero(value: float | None) -> float:
    return value if value is not None else float("-inf")


COLUMNS: tuple[Column, ...] = (
    Column("sel", " ", lambda r, now: 0),
    Column("status", "status", lambda r, now: r.status),
    Column("run", "run", lambda r, now: r.run_id),
    Column("experiment", "experiment", lambda r, now: r.experiment),
    Column("stage", "stage", lambda r, now: _or_zero(r.progress)),
    Column("headline", "headline", lambda r, now: _or_zero(r.headline_value)),
    Column("duration", "duration", lambda r, now: _or_zero(duration_of(r, now))),
    Column("started", "started", lambda r, now: _or_zero(r.started_at or r.created_at)),
    Column("device", "device", lambda r, now: r.device or ""),
)
SORTABLE = [c.key for c in COLUMNS if c.key != "sel"]


class RunsScreen(LiveScreen):
    """All runs, newest first, refreshed twice a second (runs of other processes too)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "launch", "Launch"),
        Binding("enter", "open", "Open", show=False),
        Binding("space", "toggle_select", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("x", "cancel_run", "Cancel run"),
        Binding("r", "relaunch", "Re-launch"),
        Binding("d", "delete", "Delete"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunRow] = []
        self.selected: set[str] = set()
        self.sort_column = "started"
        self.sort_reverse = True
        self.shown: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._row_cache: dict[str, tuple[object, tuple[Any, ...]]] = {}
        self._experiments: tuple[str, ...] = ()
        self._fills = 0  # counts refills of the table; a pending rest of an older one is void
        self.loaded = False  # the first read from the store has been drawn
        self.pending = Pending()  # cancels and deletes shown before the store has them

    def compose(self) -> ComposeResult:
        """Header, navigation, filters, the table and the footer."""
        yield Header()
        yield NavBar("runs")
        with Horizontal(id="filters"):
            yield Input(
                placeholder="/ filter: id, experiment, stage, error", id="filter", compact=True
            )
            yield Select(
                [("all statuses", ALL), *((s, s) for s in STATUS_ORDER)],
                value=ALL,
                allow_blank=False,
                id="status",
                compact=True,
            )
            yield Select(
                [("all experiments", ALL)],
                value=ALL,
                allow_blank=False,
                id="experiment",
                compact=True,
            )
        table: DataTable[Any] = Table(id="runs", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column.label, key=column.key)
        yield table
        yield Static(id="summary")
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Focus the table and list the experiments (`LiveScreen.on_mount` then starts polling)."""
        self.query_one("#runs", DataTable).focus()
        self._set_experiment_options(self.tb.project.experiment_names)

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast while a run is queued, running or being cancelled (in any process)."""
        return bool(self.pending.cancelling) or any(is_active(run.status) for run in self.runs)

    def load(self) -> list[RunRow]:
        """Every run of the project (one short read of the database)."""
        return self.tb.store.list_runs()

    def show(self, data: list[RunRow]) -> None:
        """Keep the runs (with the user's pending cancels and deletes) and redraw the table."""
        self.pending.settle(data)
        self.runs = data = self.pending.apply(data)
        self.loaded = True
        known = {run.run_id for run in data}
        self.selected &= known
        for run_id in self._row_cache.keys() - known:
            del self._row_cache[run_id]
        names = dict.fromkeys([*self.tb.project.experiment_names, *(r.experiment for r in data)])
        self._set_experiment_options(tuple(names))
        self.redraw()

    def visible_runs(self) -> list[RunRow]:
        """The runs that pass the filters, in the chosen order."""
        text = self.query_one("#filter", Input).value.strip().lower()
        status = self.query_one("#status", Select).value
        experiment = self.query_one("#experiment", Select).value
        runs = [
            run
            for run in self.runs
            if (status == ALL or run.status == status)
            and (experiment == ALL or run.experiment == experiment)
            and (not text or text in _haystack(run))
        ]
        column = next(c for c in COLUMNS if c.key == self.sort_column)
        now = self.tb.clock()
        runs.sort(key=lambda run: run.run_id, reverse=self.sort_reverse)
        runs.sort(key=lambda run: column.sort_key(run, now), reverse=self.sort_reverse)
        return runs

    def redraw(self) -> None:
        """Bring the table in line with the runs, changing only cells that changed.

        When the rows change (new runs, another order or filter) the table is filled afresh:
        a screenful of rows at once, the rest right after that frame is drawn. DataTable
        measures every cell of a new row and the frame waits for it: with 1,000 runs, the
        first paint and every re-sort or filter keystroke would wait for all of them.
        """
        table = self.query_one("#runs", DataTable)
        runs = self.visible_runs()
        now = self.tb.clock()
        variables = self.app.theme_variables
        ids = [run.run_id for run in runs]
        if ids == self.shown:
            # Rows not added yet get their cells when they are (see `_add_rest`).
            for run in runs[: table.row_count]:
                cells = self._cached_row(run, now, variables)
                old = self._cells.get(run.run_id)
                if cells is old:
                    continue
                for column, value, before in zip(COLUMNS, cells, old or (), strict=False):
                    if value != before:
                        table.update_cell(run.run_id, column.key, value, update_width=True)
                self._cells[run.run_id] = cells
        else:
            current = self.current_run_id()
            table.clear()
            self._cells = {}
            self.shown = ids
            self._fills += 1
            cursor = ids.index(current) if current in ids else None
            first = max(FIRST_ROWS, self.app.size.height) + (cursor or 0)
            self._add_rows(table, runs[:first], now, variables)
            if cursor is not None:
                table.move_cursor(row=cursor, animate=False)
            if len(runs) > first:
                # A layout is due, so the callback runs once the frame is on screen.
                self.refresh(layout=True)
                self.call_after_refresh(self._add_rest, self._fills)
        self._update_summary(len(runs))

    def _add_rows(
        self,
        table: DataTable[Any],
        runs: Sequence[RunRow],
        now: float,
        variables: dict[str, str],
    ) -> None:
        for run in runs:
            cells = self._cached_row(run, now, variables)
            table.add_row(*cells, key=run.run_id)
            self._cells[run.run_id] = cells

    def _add_rest(self, fill: int) -> None:
        """Add the rows that the last refill left for after its first frame."""
        if fill != self._fills or not self.is_mounted:
            return  # the table was filled afresh since, or the screen is gone
        table = self.query_one("#runs", DataTable)
        by_id = {run.run_id: run for run in self.runs}
        rest = [by_id[run_id] for run_id in self.shown[table.row_count :]]
        self._add_rows(table, rest, self.tb.clock(), self.app.theme_variables)

    def _cached_row(self, run: RunRow, now: float, variables: dict[str, str]) -> tuple[Any, ...]:
        """The cells of a run, reused while the run (and what its cells depend on) is the same.

        With a thousand runs, building every cell twice a second would keep the app busy.
        """
        key = (run, run.run_id in self.selected, _palette(variables))
        cached = self._row_cache.get(run.run_id)
        if cached is not None and cached[0] == key and run.status != "running":
            return cached[1]
        cells = self._row(run, now, variables)
        self._row_cache[run.run_id] = (key, cells)
        return cells

    def _row(self, run: RunRow, now: float, variables: dict[str, str]) -> tuple[Any, ...]:
        return (
            Text("✓" if run.run_id in self.selected else " ", style="bold"),
            status_cell(run.status, variables),
            safe_text(run.run_id),
            safe_text(run.experiment),
            safe_text(stage_cell(run)),
            safe_text(headline_cell(run)),
            Text(duration_cell(run, now)),
            Text(format_time(run.started_at)),
            safe_text(run.device or ""),
        )

    def _update_summary(self, visible: int) -> None:
        if not self.loaded:
            # Not "0 of 0 runs": nothing has been read yet.
            self.query_one("#summary", Static).update("loading runs…")
            return
        arrow = "↓" if self.sort_reverse else "↑"
        parts = [f"{visible} of {len(self.runs)} runs"]
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        parts.append(f"sorted by {self.sort_column} {arrow}")
        active = sum(1 for run in self.runs if is_active(run.status))
        if active:
            parts.append(f"{active} active")
        self.query_one("#summary", Static).update(" · ".join(parts))

    def _set_experiment_options(self, names: Sequence[str]) -> None:
        if tuple(names) == self._experiments:
            return
        self._experiments = tuple(names)
        select = self.query_one("#experiment", Select)
        value = select.value
        select.set_options([("all experiments", ALL), *((safe_text(n), n) for n in names)])
        select.value = value if value in names else ALL

    def current_run_id(self) -> str | None:
        """The id of the run under the cursor."""
        table = self.query_one("#runs", DataTable)
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def current_run(self) -> RunRow | None:
        """The run under the cursor."""
        run_id = self.current_run_id()
        return next((run for run in self.runs if run.run_id == run_id), None)

    # --- filters and sorting ------------------------------------------------------------

    @on(Input.Changed, "#filter")
    @on(Select.Changed)
    def _filters_changed(self) -> None:
        if self.is_mounted:
            self.redraw()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.action_focus_table()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Sort by the clicked column; clicking it again reverses the order."""
        key = str(event.column_key.value)
        if key not in SORTABLE:
            return
        if key == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = key, key in ("started", "headline")
        self.redraw()

    def action_sort(self) -> None:
        """Sort by the next column."""
        index = SORTABLE.index(self.sort_column)
        self.sort_column = SORTABLE[(index + 1) % len(SORTABLE)]
        self.redraw()

    def action_reverse(self) -> None:
        """Reverse the order."""
        self.sort_reverse = not self.sort_reverse
        self.redraw()

    def action_focus_filter(self) -> None:
        """Type to filter."""
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        """Back to the table."""
        self.query_one("#runs", DataTable).focus()

    # --- actions ------------------------------------------------------------------------

    def action_toggle_select(self) -> None:
        """Select or unselect the run under the cursor (for comparing)."""
        run_id = self.current_run_id()
        if run_id is None:
            return
        self.selected ^= {run_id}
        table = self.query_one("#runs", DataTable)
        row = table.cursor_row
        self.redraw()
        if row + 1 < len(self.shown):
            table.move_cursor(row=row + 1)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click on a selected row) opens the run."""
        self.action_open()

    def action_open(self) -> None:
        """Open the run under the cursor."""
        from tuneboard.tui.screens.detail import DetailScreen

        run_id = self.current_run_id()
        if run_id is not None:
            self.app.push_screen(DetailScreen(run_id))

    def action_launch(self) -> None:
        """Open the launch form, on the experiment of the run under the cursor if any."""
        from tuneboard.tui.screens.launch import LaunchScreen

        if not self.tb.project.experiment_names:
            self.notify("tuneboard.toml has no experiments to launch", severity="warning")
            return
        run = self.current_run()
        self.app.push_screen(LaunchScreen(run.experiment if run else None))

    def action_compare(self) -> None:
        """Compare the selected runs."""
        from tuneboard.tui.screens.compare import CompareScreen

        ids = [run_id for run_id in self.shown if run_id in self.selected]
        ids += [run_id for run_id in self.selected if run_id not in ids]
        if len(ids) < 2:
            self.notify("select two or more runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(ids))

    def action_cancel_run(self) -> None:
        """Cancel the queued or running run under the cursor."""
        run = self.current_run()
        if run is None:
            return
        if not is_active(run.status):
            self.notify(f"run {run.run_id} is {run.status}; only active runs can be cancelled")
            return
        # Shown at once; the engine (which may still be loading) and the store in a worker.
        self.pending.cancelling.add(run.run_id)
        self.show_pending()
        self.notify(f"cancelling run {run.run_id}…")
        self._cancel(run.run_id)

    def show_pending(self) -> None:
        """Redraw the runs now with the user's pending cancels and deletes."""
        self.runs = self.pending.apply(self.runs)
        self.redraw()

    @work(thread=True, exit_on_error=False, name="cancelling a run")
    def _cancel(self, run_id: str) -> None:
        app = self.tb
        try:
            cancelled = app.engine.cancel(run_id)
        except BaseException:
            self.pending.cancelling.discard(run_id)  # the failure is notified
            raise
        finally:
            self.post_message_refresh()
        if not cancelled:
            self.pending.cancelling.discard(run_id)
            app.call_from_thread(
                app.notify, f"run {run_id} could not be cancelled from here", severity="warning"
            )

    def action_relaunch(self) -> None:
        """Launch the run's experiment again with the config it ran with."""
        run = self.current_run()
        if run is not None:
            self.relaunch(run)

    def post_message_refresh(self) -> None:
        """Ask for a refresh from any thread."""
        self.post_message(RunsChanged())

    def action_delete(self) -> None:
        """Delete the run under the cursor, its rows and its folder, after asking."""
        run = self.current_run()
        if run is None:
            return
        if is_active(run.status):
            self.notify(
                f"run {run.run_id} is {run.status}: cancel it (x) before deleting it",
                severity="warning",
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.pending.deleted.add(run.run_id)
                self.selected.discard(run.run_id)
                self.show_pending()
                self._delete(run.run_id)

        self.app.push_screen(
            ConfirmDialog(
                f"Delete run {run.run_id} ({run.experiment}, {run.status})?\n"
                "Its metrics, events and files are removed for good.",
                yes="Delete",
                no="Keep",
            ),
            answered,
        )

    @work(thread=True, exit_on_error=False, name="deleting a run")
    def _delete(self, run_id: str) -> None:
        app = self.tb
        try:
            app.store.delete_run(run_id)
            app.store.flush()
        except BaseException:
            self.pending.deleted.discard(run_id)  # shown again; the failure is notified
            self.post_message_refresh()
            raise
        runs_dir = app.project.runs_dir.resolve()
        folder = (runs_dir / run_id).resolve()
        if folder.parent == runs_dir and folder.is_dir():
            shutil.rmtree(folder)
        self.selected.discard(run_id)
        app.call_from_thread(app.notify, f"deleted run {run_id}")
        self.post_message_refresh()


def _palette(variables: dict[str, str]) -> tuple[str, ...]:
    """The theme colours the cells use: rows are rebuilt when these change, not whenever
    Textual hands out a new (equal) variables dict, which it does on every style refresh."""
    return tuple(variables.get(name, "") for name in STATUS_VARIABLES.values())


def _haystack(run: RunRow) -> str:
    parts = (run.run_id, run.experiment, run.status, run.current_stage, run.device, run.error)
    return " ".join(p for p in parts if p).lower()
