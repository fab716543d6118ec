"""Saved views on the Runs screen: which view is on, its matching runs, the picker, the palette.

The file format and the SQL are in `tuneboard.ui.views`; this module runs a view's query
(as user SQL, through the read-only guard) when the runs change, and keeps its run ids.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tuneboard.sdk.errors import QueryError, TuneboardError
from tuneboard.ui.safe import safe_text, visible
from tuneboard.ui.views import VIEWS_FILE, View, combine, filter_sql, read_views

if TYPE_CHECKING:
    from tuneboard.config import Project
    from tuneboard.store import RunRow, Store
    from tuneboard.tui.app import TuneboardApp
    from tuneboard.tui.screens.runs import RunsScreen

# A view's query is read again when the runs change, at most this often (seconds) — each
# read opens the database read-only for user SQL — and at least this often while shown.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 5.0
# The runs screen's sort columns as SQL over `runs` (nulls sort low, as on screen).
SORT_SQL = {
    "status": "status",
    "run": "run_id",
    "experiment": "experiment",
    "stage": (
        "(SELECT s.steps / nullif(s.total_steps, 0) FROM stages s WHERE s.run_id = runs.run_id"
        " AND s.status = 'running' ORDER BY s.stage_index DESC LIMIT 1)"
    ),
    "headline": "headline_value",
    "duration": "coalesce(finished_at, now()) - started_at",
    "started": "coalesce(started_at, created_at)",
    "device": "device",
}
ALL_RUNS = "(all runs)"


def views_path(project: Project) -> Path:
    """The project's views file."""
    return project.root / VIEWS_FILE


def sort_sql(column: str, reverse: bool) -> str:
    """An ORDER BY for the screen's sort: the column, then the run id, in one direction."""
    way = "DESC NULLS LAST" if reverse else "ASC NULLS FIRST"
    return f"{SORT_SQL[column]} {way}, run_id {way}"


def _fingerprint(runs: Sequence[RunRow]) -> int:
    return hash(
        tuple(
            (r.run_id, r.status, r.headline_value, r.device, r.error, r.started_at, r.current_stage)
            for r in runs
        )
    )


class ActiveView:
    """The view the Runs screen shows, if any, and the ids of the runs its query matched.

    `refresh` (in the screen's loading thread) runs the query when needed; `apply` (on the
    event loop) keeps the matching runs in the view's order. A query that fails ends the
    view: `take_error` hands its one-line message over once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.view: View | None = None
        self.orders = False  # the view's ORDER BY orders the rows (until the user sorts)
        self._ids: list[str] | None = None
        self._queried: tuple[View, int, float] | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    def use(self, view: View | None, ids: list[str] | None = None) -> None:
        """Show `view` from now on (None: every run), with the ids its query found if known."""
        with self._lock:
            self.view = view
            self.orders = bool(view and view.order_by.strip())
            self._ids = ids
            self._queried = None

    def query(self, store: Store, view: View) -> list[str]:
        """The ids of the runs `view` shows, in order; raises TuneboardError naming the file
        and the view when the database refuses its SQL. Call from a thread."""
        from tuneboard.store import run_query

        try:
            result = run_query(store, view.sql(), limit=1_000_000)
        except (QueryError, TuneboardError) as error:
            raise TuneboardError(f"{self.path.name}: [views.{view.name}]: {error}") from None
        return [str(row[0]) for row in result.rows]

    def refresh(self, store: Store, runs: Sequence[RunRow]) -> None:
        """Run the view's query if the view or the runs changed (or a while has passed)."""
        view = self.view
        if view is None:
            return
        print_ = _fingerprint(runs)
        now = time.monotonic()
        last = self._queried
        if last is not None and last[0] is view:
            since = now - last[2]
            if since < MIN_INTERVAL or (last[1] == print_ and since < MAX_INTERVAL):
                return
        try:
            ids = self.query(store, view)
        except TuneboardError as error:
            with self._lock:
                if self.view is view:
                    self._error = str(error)
                    self.view, self.orders, self._ids = None, False, None
            return
        with self._lock:
            if self.view is view:
                self._ids = ids
                self._queried = (view, print_, now)

    def apply(self, runs: Sequence[RunRow]) -> list[RunRow]:
        """The runs the view shows, in its query's order (all runs when no view is on)."""
        with self._lock:
            view, ids = self.view, self._ids
        if view is None:
            return list(runs)
        if ids is None:
            return []  # not read yet
        by_id = {run.run_id: run for run in runs}
        return [by_id[run_id] for run_id in ids if run_id in by_id]

    def take_error(self) -> str | None:
        """The error that ended the last view, once."""
        with self._lock:
            error, self._error = self._error, None
        return error


class ViewPicker(ModalScreen[str | None]):
    """The saved views, and every run; dismisses with the chosen name ("" for all runs)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ViewPicker {
        align: center middle;
    }
    """

    def __init__(self, views: dict[str, View], current: str | None) -> None:
        super().__init__()
        self.views = views
        self.current = current

    def compose(self) -> ComposeResult:
        """A title, the views (the current one marked) and how to choose."""
        options = [Option(ALL_RUNS, id="")]
        for name, view in self.views.items():
            mark = "▸ " if name == self.current else "  "
            what = " · ".join(
                part
                for part in (
                    view.where and f"where {view.where}",
                    view.order_by and f"order by {view.order_by}",
                    view.columns and f"columns {', '.join(view.columns)}",
                )
                if part
            )
            options.append(Option(safe_text(f"{mark}{name}  {' '.join(what.split())}"), id=name))
        with Vertical(classes="dialog picker-dialog"):
            yield Label(safe_text(f"saved views ({VIEWS_FILE})"), classes="question")
            yield OptionList(*options, id="views")
            if not self.views:
                yield Label(f"no views in {VIEWS_FILE} yet", classes="hint")
            yield Label("enter to show, escape to cancel; W saves the current view", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Show the chosen view."""
        self.dismiss(event.option.id or "")

    def action_cancel(self) -> None:
        """Close without changing the view."""
        self.dismiss(None)


def load_views(app: TuneboardApp, columns: Sequence[str]) -> dict[str, View]:
    """The project's views; each bad one is reported in a one-line notification."""
    views, errors = read_views(views_path(app.project), columns)
    for error in errors:
        app.notify(error, severity="error", timeout=12)
    return views


def view_commands(app: TuneboardApp) -> list[tuple[str, str, Callable[[], Any]]]:
    """Palette commands that show each saved view on the Runs screen (errors left out)."""
    from tuneboard.tui.screens.runs import SORTABLE

    views, _ = read_views(views_path(app.project), SORTABLE)
    return [
        (
            f"Show view {visible(name)}",
            f"the Runs screen through the saved view {visible(name)} (w)",
            partial(_show_view, app, view),
        )
        for name, view in views.items()
    ]


async def _show_view(app: TuneboardApp, view: View) -> None:
    from tuneboard.tui.screens.runs import RunsScreen

    await app.switch_mode("runs")
    screen = app.screen_stack[0]
    if isinstance(screen, RunsScreen):
        screen.use_view(view)


def state_view(screen: RunsScreen, name: str) -> View:
    """The Runs screen's view, filters, sort and columns as a view named `name`.

    The filters narrow the view on show (their SQL is ANDed to its WHERE); the view's
    ORDER BY stays unless the user sorted since; all columns are saved as none named.
    """
    from textual.widgets import Input, Select

    from tuneboard.tui.screens.runs import ALL, COLUMNS

    text = screen.query_one("#filter", Input).value
    status = screen.query_one("#status", Select).value
    experiment = screen.query_one("#experiment", Select).value
    base = screen.view.view if screen.view is not None else None
    where = combine(
        base.where if base else "",
        filter_sql(
            text,
            str(status) if status != ALL else None,
            str(experiment) if experiment != ALL else None,
        ),
    )
    if base is not None and screen.view is not None and screen.view.orders:
        order_by = base.order_by
    else:
        order_by = sort_sql(screen.sort_column, screen.sort_reverse)
    columns: tuple[str, ...] = ()
    if len(screen.columns) < len(COLUMNS):
        columns = tuple(c.key for c in screen.columns if c.key != "sel")
    return View(name, where, order_by, columns)
