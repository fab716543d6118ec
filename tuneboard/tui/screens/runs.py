"""The home screen: every run of the project, live, with filters, sorting and actions."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Header, Input, Select, Static

from tuneboard.sdk.errors import TuneboardError
from tuneboard.tui.cells import STATUS_VARIABLES, duration_of, is_active
from tuneboard.tui.messages import RunsChanged
from tuneboard.tui.pending import Pending
from tuneboard.tui.run_columns import FITS, Fit, fit_for, row_cells, sweep_cells
from tuneboard.tui.screens.base import LiveScreen
from tuneboard.tui.screens.dialogs import ConfirmDialog, TextPrompt
from tuneboard.tui.selection import delete_question, selection_order
from tuneboard.tui.views import ActiveView, ViewPicker, load_views, views_path
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.safe import safe_text
from tuneboard.ui.sweeps import SweepReader, SweepTrials

if TYPE_CHECKING:
    from tuneboard.ui.views import View

if TYPE_CHECKING:
    from tuneboard.store import RunRow
ALL = "*"
# A refilled table gets at least this many rows (and a terminal's height) at once, the rest
# after the next frame (see `RunsScreen.redraw`).
FIRST_ROWS = 50
STATUS_ORDER = ("running", "queued", "failed", "interrupted", "cancelled", "completed")
# Row keys of sweeps; run ids never start with it.
SWEEP_KEY = "sweep:"


@dataclass(frozen=True)
class Row:
    """A row of the runs table: a run (`prefix` draws its place under an open sweep) or a
    sweep (`sweep` set, `run` its first run in the current order)."""

    key: str
    run: RunRow
    sweep: SweepTrials | None = None
    prefix: str = ""


@dataclass(frozen=True)
class RunsData:
    """What one load reads: every run, and each sweep among them."""

    runs: list[RunRow]
    sweeps: dict[str, SweepTrials]


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
        # Priority: the table would take the arrows to scroll sideways. Only with sweeps.
        Binding("right", "expand", "Expand sweep", key_display="→", priority=True),
        Binding("left", "collapse", "Collapse", key_display="←", show=False, priority=True),
        Binding("slash", "focus_filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("w", "views", "Views", show=False),
        Binding("W", "save_view", "Save view", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunRow] = []
        self.sweeps: dict[str, SweepTrials] = {}
        self.expanded: set[str] = set()
        self.selected: set[str] = set()
        self.sort_column = "started"
        self.sort_reverse = True
        self.shown: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._row_cache: dict[str, tuple[object, tuple[Any, ...]]] = {}
        self._experiments: tuple[str, ...] = ()
        self._fills = 0  # counts refills of the table; a pending rest of an older one is void
        self._rows: dict[str, Row] = {}
        self._visible_count = 0
        self._sweep_reader = SweepReader()
        self.fit: Fit = FITS[0]
        self.columns = COLUMNS  # the columns shown (a saved view may show fewer)
        self._picked = tuple(range(len(COLUMNS)))
        self.view: ActiveView | None = None  # a saved view on show (see tuneboard.tui.views)
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
        self._fit_columns(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Shorten or lengthen the cells to the new width."""
        if self._fit_columns(event.size.width):
            self.redraw()

    def _fit_columns(self, width: int) -> bool:
        """Set the cells' fit for `width` columns and the headers to match; False when the
        fit stays the same. Rows are drawn afresh on the next redraw."""
        fit = fit_for(width)
        if fit == self.fit:
            return False
        self.fit = fit
        table = self.query_one("#runs", DataTable)
        for column in self.columns:
            header = table.columns[column.key]  # type: ignore[index]
            header.label = Text(fit.header(column.key, column.label))
            header.content_width = len(header.label)
        self.shown = []  # refill: cells and widths of the old fit go
        return True

    # --- data ---------------------------------------------------------------------------

    def busy(self) -> bool:
        """Poll fast while a run is queued, running or being cancelled (in any process)."""
        return bool(self.pending.cancelling) or any(is_active(run.status) for run in self.runs)

    def load(self) -> RunsData:
        """Every run of the project, what the sweeps among them show (one open of the
        database: the runs, then the records and objectives of sweep runs not read yet or
        still active), and a saved view's ids."""
        store = self.tb.store
        with store.hold():
            runs = store.list_runs()
            sweeps = self._sweep_reader.read(store, runs, self._sweep_table, self._higher)
        if self.view is not None:  # user SQL: on a connection of its own, outside hold()
            self.view.refresh(store, runs)
        return RunsData(runs, sweeps)

    def _sweep_table(self, experiment: str) -> Any:
        from tuneboard.ui.sweeps import sweep_table

        return sweep_table(self.tb.project.experiment_tables, experiment)

    def _higher(self, metric: str) -> bool:
        """A metric's direction; by its name alone until the plugins are loaded."""
        if not self.tb.services_ready:
            from tuneboard.ui.sweeps import name_higher_is_better

            return name_higher_is_better(metric)
        from tuneboard.engine.context import metric_higher_is_better

        return metric_higher_is_better(metric, self.tb.registry)

    def show(self, data: RunsData) -> None:
        """Keep the runs (with the user's pending cancels and deletes) and sweeps, and redraw
        the table."""
        self.pending.settle(data.runs)
        self.runs = self.pending.apply(data.runs)
        self.loaded = True
        had_sweeps, self.sweeps = bool(self.sweeps), data.sweeps
        if had_sweeps != bool(self.sweeps):
            self.refresh_bindings()  # the sweep keys come and go with the sweeps
        known = {run.run_id for run in data.runs}
        self.selected &= known
        self.expanded &= data.sweeps.keys()
        for run_id in self._row_cache.keys() - known:
            del self._row_cache[run_id]
        names = dict.fromkeys(
            [*self.tb.project.experiment_names, *(r.experiment for r in data.runs)]
        )
        self._set_experiment_options(tuple(names))
        error = self.view.take_error() if self.view is not None else None
        if error:
            self.notify(error, severity="error", timeout=12)
            self.set_columns(())
        self.redraw()

    def visible_runs(self) -> list[RunRow]:
        """The runs that pass the filters, in the chosen order."""
        text = self.query_one("#filter", Input).value.strip().lower()
        status = self.query_one("#status", Select).value
        experiment = self.query_one("#experiment", Select).value
        runs = [
            run
            for run in (self.view.apply(self.runs) if self.view else self.runs)
            if (status == ALL or run.status == status)
            and (experiment == ALL or run.experiment == experiment)
            and (not text or text in _haystack(run))
        ]
        if self.view is not None and self.view.orders:
            return runs  # in the view's ORDER BY
        column = next(c for c in COLUMNS if c.key == self.sort_column)
        now = self.tb.clock()
        runs.sort(key=lambda run: run.run_id, reverse=self.sort_reverse)
        runs.sort(key=lambda run: column.sort_key(run, now), reverse=self.sort_reverse)
        return runs

    def visible_rows(self) -> list[Row]:
        """The rows of the table: each run that passes the filters, the runs of a sweep as
        one row where the first of them would be (and, when the sweep is open, its runs
        under it, in the same order)."""
        runs = self.visible_runs()
        self._visible_count = len(runs)
        members: dict[str, list[RunRow]] = {}
        for run in runs:
            if run.sweep_id is not None and run.sweep_id in self.sweeps:
                members.setdefault(run.sweep_id, []).append(run)
        rows: list[Row] = []
        for run in runs:
            sweep_id = run.sweep_id
            if sweep_id is None or sweep_id not in members:
                rows.append(Row(run.run_id, run))
                continue
            group = members[sweep_id]
            if run is not group[0]:
                continue  # listed under the sweep's row
            rows.append(Row(SWEEP_KEY + sweep_id, run, self.sweeps[sweep_id]))
            if sweep_id in self.expanded:
                for index, member in enumerate(group):
                    prefix = "└ " if index == len(group) - 1 else "├ "
                    rows.append(Row(member.run_id, member, prefix=prefix))
        return rows

    def redraw(self) -> None:
        """Bring the table in line with the runs, changing only cells that changed.

        When the rows change (new runs, another order or filter) the table is filled afresh:
        a screenful of rows at once, the rest right after that frame is drawn. DataTable
        measures every cell of a new row and the frame waits for it: with 1,000 runs, the
        first paint and every re-sort or filter keystroke would wait for all of them.
        """
        table = self.query_one("#runs", DataTable)
        rows = self.visible_rows()
        now = self.tb.clock()
        variables = self.app.theme_variables
        keys = [row.key for row in rows]
        self._rows = {row.key: row for row in rows}
        if keys == self.shown:
            # Rows not added yet get their cells when they are (see `_add_rest`).
            for row in rows[: table.row_count]:
                cells = self._shown_cells(row, now, variables)
                old = self._cells.get(row.key)
                if cells is old:
                    continue
                for column, value, before in zip(self.columns, cells, old or (), strict=False):
                    if value != before:
                        table.update_cell(row.key, column.key, value, update_width=True)
                self._cells[row.key] = cells
        else:
            current = self.current_key()
            table.clear()
            self._cells = {}
            self.shown = keys
            self._fills += 1
            cursor = keys.index(current) if current in keys else None
            first = max(FIRST_ROWS, self.app.size.height) + (cursor or 0)
            self._add_rows(table, rows[:first], now, variables)
            if cursor is not None:
                table.move_cursor(row=cursor, animate=False)
            if len(rows) > first:
                # A layout is due, so the callback runs once the frame is on screen.
                self.refresh(layout=True)
                self.call_after_refresh(self._add_rest, self._fills)
        self._update_summary(self._visible_count)

    def _add_rows(
        self,
        table: DataTable[Any],
        rows: Sequence[Row],
        now: float,
        variables: dict[str, str],
    ) -> None:
        for row in rows:
            cells = self._shown_cells(row, now, variables)
            table.add_row(*cells, key=row.key)
            self._cells[row.key] = cells

    def _add_rest(self, fill: int) -> None:
        """Add the rows that the last refill left for after its first frame."""
        if fill != self._fills or not self.is_mounted:
            return  # the table was filled afresh since, or the screen is gone
        table = self.query_one("#runs", DataTable)
        rest = [self._rows[key] for key in self.shown[table.row_count :]]
        self._add_rows(table, rest, self.tb.clock(), self.app.theme_variables)

    def _cached_row(self, row: Row, now: float, variables: dict[str, str]) -> tuple[Any, ...]:
        """The cells of a row, reused while its run (and what its cells depend on) is the same.

        With a thousand runs, building every cell twice a second would keep the app busy.
        Sweep rows (a few) are built each time.
        """
        if row.sweep is not None:
            return self._sweep_row(row.sweep, now, variables)
        run = row.run
        key = (run, run.run_id in self.selected, _palette(variables), row.prefix, self.fit)
        cached = self._row_cache.get(run.run_id)
        if cached is not None and cached[0] == key and run.status != "running":
            return cached[1]
        cells = self._row(run, now, variables, row.prefix)
        self._row_cache[run.run_id] = (key, cells)
        return cells

    def _shown_cells(self, row: Row, now: float, variables: dict[str, str]) -> tuple[Any, ...]:
        """A row's cells, only those of the columns shown (a saved view may show fewer)."""
        cells = self._cached_row(row, now, variables)
        return cells if len(self._picked) == len(cells) else tuple(cells[i] for i in self._picked)

    def _row(
        self, run: RunRow, now: float, variables: dict[str, str], prefix: str = ""
    ) -> tuple[Any, ...]:
        return row_cells(run, now, variables, run.run_id in self.selected, self.fit, prefix)

    def _sweep_row(
        self, sweep: SweepTrials, now: float, variables: dict[str, str]
    ) -> tuple[Any, ...]:
        chosen = sum(1 for trial in sweep.trials if trial.run_id in self.selected)
        expanded = sweep.sweep_id in self.expanded
        return sweep_cells(sweep, now, variables, chosen, expanded, self.fit)

    def _update_summary(self, visible: int) -> None:
        if not self.loaded:
            # Not "0 of 0 runs": nothing has been read yet.
            self.query_one("#summary", Static).update("loading runs…")
            return
        arrow = "↓" if self.sort_reverse else "↑"
        parts = [f"{visible} of {len(self.runs)} runs"]
        if self.sweeps:
            count = len(self.sweeps)
            parts.append(f"{count} sweep{'s' if count != 1 else ''}")
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        if self.view is not None and self.view.view is not None:
            parts.insert(0, f"view {self.view.view.name}")
        if self.view is not None and self.view.orders:
            parts.append("in the view's order")
        else:
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

    def current_key(self) -> str | None:
        """The key of the row under the cursor (a run id, or `SWEEP_KEY` and a sweep id)."""
        table = self.query_one("#runs", DataTable)
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def current_run_id(self) -> str | None:
        """The id of the run under the cursor (None on a sweep's row)."""
        key = self.current_key()
        return None if key is None or key.startswith(SWEEP_KEY) else key

    def current_run(self) -> RunRow | None:
        """The run under the cursor."""
        row = self._rows.get(self.current_run_id() or "")
        return row.run if row is not None else None

    def current_sweep(self) -> SweepTrials | None:
        """The sweep whose row is under the cursor."""
        key = self.current_key()
        row = self._rows.get(key) if key is not None else None
        return row.sweep if row is not None else None

    def _sweep_members(self, sweep: SweepTrials) -> list[str]:
        """Ids of the sweep's runs that pass the filters, in the table's order."""
        return [run.run_id for run in self.visible_runs() if run.sweep_id == sweep.sweep_id]

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
        self._own_sort()

    def action_sort(self) -> None:
        """Sort by the next column."""
        index = SORTABLE.index(self.sort_column)
        self.sort_column = SORTABLE[(index + 1) % len(SORTABLE)]
        self._own_sort()

    def action_reverse(self) -> None:
        """Reverse the order."""
        self.sort_reverse = not self.sort_reverse
        self._own_sort()

    def _own_sort(self) -> None:
        """The screen's sort from now on (over a view's ORDER BY)."""
        if self.view is not None:
            self.view.orders = False
        self.redraw()

    # --- saved views (tuneboard.tui.views) ------------------------------------------------

    def action_views(self) -> None:
        """Pick a saved view (or every run)."""
        views = load_views(self.tb, SORTABLE)
        current = self.view.view.name if self.view and self.view.view else None

        def chosen(name: str | None) -> None:
            if name is not None:
                self.use_view(views.get(name))

        self.app.push_screen(ViewPicker(views, current), chosen)

    def use_view(self, view: View | None) -> None:
        """Show the runs of `view` (None: every run), with its columns; the filters reset.

        The view's query runs first, in a thread: the table changes once its runs are known
        (a view the database refuses changes nothing and says why).
        """
        if self.view is None:
            self.view = ActiveView(views_path(self.tb.project))
        if view is None:
            self._view_ready(None, None)
        else:
            self._query_view(self.view, view)

    @work(thread=True, exit_on_error=False, name="reading a saved view", group="view")
    def _query_view(self, active: ActiveView, view: View) -> None:
        try:
            ids = active.query(self.tb.store, view)
        except TuneboardError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error", timeout=12)
            return
        self.app.call_from_thread(self._view_ready, view, ids)

    def _view_ready(self, view: View | None, ids: list[str] | None) -> None:
        assert self.view is not None
        self.view.use(view, ids)
        self.query_one("#filter", Input).value = ""
        self.query_one("#status", Select).value = ALL
        self.query_one("#experiment", Select).value = ALL
        self.set_columns(view.columns if view else ())
        self.request_refresh()

    def set_columns(self, keys: Sequence[str]) -> None:
        """Show these columns (the selection mark always; none given: all of them)."""
        wanted = [c for c in COLUMNS if c.key == "sel" or not keys or c.key in keys]
        if tuple(wanted) == self.columns:
            return
        self.columns = tuple(wanted)
        self._picked = tuple(COLUMNS.index(c) for c in wanted)
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        for column in self.columns:
            table.add_column(self.fit.header(column.key, column.label), key=column.key)
        self.shown, self._cells = [], {}
        self.redraw()

    def action_save_view(self) -> None:
        """Save the filters, the sort and the columns as a view (asks for a name)."""
        from tuneboard.tui.views import state_view
        from tuneboard.ui.views import save_view

        current = self.view.view.name if self.view and self.view.view else ""

        def named(name: str | None) -> None:
            if not name:
                return
            view = state_view(self, name)
            try:
                save_view(views_path(self.tb.project), view, SORTABLE)
            except TuneboardError as error:
                self.notify(str(error), severity="error", timeout=12)
                return
            self.notify(f"saved view {name!r} in {views_path(self.tb.project).name}")
            self.use_view(view)

        self.app.push_screen(TextPrompt("Save this view as:", current), named)

    def action_focus_filter(self) -> None:
        """Type to filter."""
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        """Back to the table."""
        self.query_one("#runs", DataTable).focus()

    # --- actions ------------------------------------------------------------------------

    def action_toggle_select(self) -> None:
        """Select or unselect the run under the cursor (for comparing); on a sweep's row,
        all its runs."""
        sweep = self.current_sweep()
        if sweep is not None:
            members = set(self._sweep_members(sweep))
            if members <= self.selected:
                self.selected -= members
            else:
                self.selected |= members
        else:
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
        """Enter (or a click on a selected row) opens the run, or the sweep view."""
        self.action_open()

    def action_open(self) -> None:
        """Open the run under the cursor, or the view of the sweep under it."""
        from tuneboard.tui.screens.detail import DetailScreen

        sweep = self.current_sweep()
        if sweep is not None:
            from tuneboard.tui.screens.sweep import SweepScreen

            self.app.push_screen(SweepScreen(sweep.sweep_id))
            return
        run_id = self.current_run_id()
        if run_id is not None:
            self.app.push_screen(DetailScreen(run_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The sweep keys exist (and show in the footer) only while there are sweeps."""
        if action in ("expand", "collapse"):
            return bool(self.sweeps)
        return True

    def action_expand(self) -> None:
        """Open the sweep under the cursor in place: its runs show under its row."""
        table = self.query_one("#runs", DataTable)
        sweep = self.current_sweep()
        if self.focused is not table or sweep is None:
            raise SkipAction()
        if sweep.sweep_id in self.expanded:
            if table.cursor_row + 1 < len(self.shown):
                table.move_cursor(row=table.cursor_row + 1)
            return
        self.expanded.add(sweep.sweep_id)
        self.redraw()

    def action_collapse(self) -> None:
        """Close the open sweep under the cursor (or of the run under it) back to one row."""
        table = self.query_one("#runs", DataTable)
        if self.focused is not table:
            raise SkipAction()
        sweep = self.current_sweep()
        run = self.current_run()
        sweep_id = sweep.sweep_id if sweep is not None else run.sweep_id if run else None
        if sweep_id is None or sweep_id not in self.expanded:
            raise SkipAction()
        self.expanded.discard(sweep_id)
        key = SWEEP_KEY + sweep_id
        self.redraw()
        if key in self.shown:
            table.move_cursor(row=self.shown.index(key))

    def action_launch(self) -> None:
        """Open the launch form, on the experiment of the run (or sweep) under the cursor if
        any."""
        if not self.tb.project.experiment_names:
            self.notify("tuneboard.toml has no experiments to launch", severity="warning")
            return
        run, sweep = self.current_run(), self.current_sweep()
        experiment = run.experiment if run else sweep.experiment if sweep else None
        self.tb.open_launch(experiment)

    def action_compare(self) -> None:
        """Compare the selected runs, those the filters hide too (a notice says how many)."""
        from tuneboard.tui.screens.compare import CompareScreen

        ids, hidden = selection_order(self.selected, self.shown)
        if len(ids) < 2:
            self.notify("select two or more runs with space, then press c", severity="warning")
            return
        if hidden:
            self.notify(f"comparing {len(ids)} selected runs, {hidden} hidden by the filters")
        self.app.push_screen(CompareScreen(ids))

    def action_cancel_run(self) -> None:
        """Cancel the queued or running run under the cursor (on a sweep, its active runs)."""
        sweep = self.current_sweep()
        if sweep is not None:
            active = [t.run_id for t in sweep.trials if is_active(t.status)]
            if not active:
                self.notify(f"sweep {sweep.sweep_id} has no active runs to cancel")
                return
            self.notify(f"cancelling the {len(active)} active runs of the sweep…")
            for run_id in active:
                self._start_cancel(run_id)
            return
        run = self.current_run()
        if run is None:
            return
        if not is_active(run.status):
            self.notify(f"run {run.run_id} is {run.status}; only active runs can be cancelled")
            return
        self.notify(f"cancelling run {run.run_id}…")
        self._start_cancel(run.run_id)

    def _start_cancel(self, run_id: str) -> None:
        """Show the run cancelling at once; the engine (which may still be loading) and the
        store in a worker."""
        self.pending.cancelling.add(run_id)
        self.show_pending()
        self._cancel(run_id)

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
        if self.current_sweep() is not None:
            self.notify("open the sweep (→) and pick one of its runs to re-launch it")
            return
        run = self.current_run()
        if run is not None:
            self.relaunch(run)

    def post_message_refresh(self) -> None:
        """Ask for a refresh from any thread."""
        self.post_message(RunsChanged())

    def action_delete(self) -> None:
        """Delete the selected runs (or the run under the cursor when none is selected),
        their rows and folders, after asking; active runs must be cancelled first. On a
        sweep's row (and nothing selected), every run of the sweep."""
        sweep = self.current_sweep()
        if sweep is not None and not self.selected:
            self._delete_sweep(sweep)
            return
        if self.selected:
            ids, hidden = selection_order(self.selected, self.shown)
        else:
            current = self.current_run_id()
            ids, hidden = ([current] if current else []), 0
        by_id = {run.run_id: run for run in self.runs}
        runs = [by_id[run_id] for run_id in ids if run_id in by_id]
        if not runs:
            return
        active = [run for run in runs if is_active(run.status)]
        if active:
            run = active[0]
            self.notify(
                f"run {run.run_id} is {run.status}: cancel it (x) before deleting it",
                severity="warning",
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete_now([run.run_id for run in runs])

        self.app.push_screen(
            ConfirmDialog(delete_question(runs, hidden), yes="Delete", no="Keep"), answered
        )

    def _delete_sweep(self, sweep: SweepTrials) -> None:
        active = sum(1 for trial in sweep.trials if is_active(trial.status))
        if active:
            self.notify(
                f"sweep {sweep.sweep_id} has {active} active runs: cancel them (x) before "
                "deleting it",
                severity="warning",
            )
            return
        run_ids = [trial.run_id for trial in sweep.trials]

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete_now(run_ids)

        self.app.push_screen(
            ConfirmDialog(
                f"Delete sweep {sweep.sweep_id} ({sweep.experiment}, {len(run_ids)} runs)?\n"
                "The metrics, events and files of all its runs are removed for good.",
                yes="Delete",
                no="Keep",
            ),
            answered,
        )

    def _delete_now(self, run_ids: list[str]) -> None:
        """Take the runs off the table at once; their rows and folders go in a worker."""
        self.pending.deleted.update(run_ids)
        self.selected.difference_update(run_ids)
        self.show_pending()
        self._delete(run_ids)

    @work(thread=True, exit_on_error=False, name="deleting runs")
    def _delete(self, run_ids: list[str]) -> None:
        app = self.tb
        runs_dir = app.project.runs_dir.resolve()
        try:
            for run_id in run_ids:
                app.store.delete_run(run_id)
            app.store.flush()
        except BaseException:
            self.pending.deleted.difference_update(run_ids)  # shown again; failure notified
            self.post_message_refresh()
            raise
        for run_id in run_ids:
            folder = (runs_dir / run_id).resolve()
            if folder.parent == runs_dir and folder.is_dir():
                shutil.rmtree(folder)
            self.selected.discard(run_id)
        done = f"deleted run {run_ids[0]}" if len(run_ids) == 1 else f"deleted {len(run_ids)} runs"
        app.call_from_thread(app.notify, done)
        self.post_message_refresh()


def _palette(variables: dict[str, str]) -> tuple[str, ...]:
    """The theme colours the cells use: rows are rebuilt when these change, not whenever
    Textual hands out a new (equal) variables dict, which it does on every style refresh."""
    return tuple(variables.get(name, "") for name in STATUS_VARIABLES.values())


def _haystack(run: RunRow) -> str:
    parts = (
        run.run_id,
        run.experiment,
        run.status,
        run.current_stage,
        run.device,
        run.error,
        run.sweep_id,
    )
    return " ".join(p for p in parts if p).lower()
