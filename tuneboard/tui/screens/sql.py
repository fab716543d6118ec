"""DuckDB SQL over the project database: editor, schema, history, saved queries, results, chart.

`.attach [ALIAS=]PATH` typed alone in the editor attaches another DuckDB file (read-only) to
the queries that follow, as `ALIAS.table`; `.detach ALIAS` (or `.detach` for all) drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import (
    DataTable,
    Header,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
    Tree,
)
from textual.widgets.option_list import Option

from tuneboard.sdk.errors import QueryError, TuneboardError
from tuneboard.store import QueryJob, QueryResult, run_query
from tuneboard.store.attach import parse_attachment
from tuneboard.tui.cells import plain
from tuneboard.tui.history import QueryHistory, SavedQueries
from tuneboard.tui.screens.base import BaseScreen
from tuneboard.tui.screens.dialogs import TextPrompt
from tuneboard.tui.widgets.footer import WrappingFooter
from tuneboard.tui.widgets.nav import NavBar
from tuneboard.tui.widgets.table import Table
from tuneboard.ui.safe import safe_text

ROW_LIMIT = 1000
VIEW_KEYS = Binding.Group("views")
STARTER = """SELECT run_id, experiment, status, headline, headline_value
FROM runs
ORDER BY created_at DESC
LIMIT 20"""
# Tables of attached databases come after the project's own, named ALIAS.table.
SCHEMA_SQL = """SELECT CASE WHEN table_catalog = current_database() THEN table_name
                 ELSE table_catalog || '.' || table_name END,
       column_name, data_type
FROM information_schema.columns WHERE table_schema = 'main'
ORDER BY table_catalog <> current_database(), table_catalog, table_name, ordinal_position"""


def numeric_columns(result: QueryResult) -> list[str]:
    """The columns whose every non-null value is a number (and that have one)."""
    columns = []
    for index, name in enumerate(result.columns):
        values = [row[index] for row in result.rows if row[index] is not None]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            columns.append(name)
    return columns


class SqlScreen(BaseScreen):
    """Read-only SQL with results in a table; long queries can be cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "run_query", "Run", priority=True),
        Binding("escape", "escape", "Cancel/leave editor", priority=True),
        Binding("ctrl+s", "save_query", "Save", priority=True),
        Binding("ctrl+g", "chart", "Chart", priority=True),
        Binding("ctrl+e", "focus_editor", "Editor", show=False),
        # Digits and q type into the editor, so the views and quitting have other keys here.
        Binding("f1", "app.switch_mode('runs')", "Runs", group=VIEW_KEYS),
        Binding("f2", "app.switch_mode('sql')", "SQL", group=VIEW_KEYS),
        Binding("f3", "app.switch_mode('plugins')", "Plugins", group=VIEW_KEYS),
        Binding("f4", "app.switch_mode('queue')", "Queue", group=VIEW_KEYS),
        Binding("ctrl+q", "app.request_quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job: QueryJob | None = None
        self.result: QueryResult | None = None
        self.error: str | None = None
        self.attachments: dict[str, Path] = {}

    @property
    def history(self) -> QueryHistory:
        """This project's query history."""
        return QueryHistory(self.tb.project.root / ".tuneboard")

    @property
    def saved(self) -> SavedQueries:
        """This project's saved queries."""
        return SavedQueries(self.tb.project.root / ".tuneboard")

    def compose(self) -> ComposeResult:
        """Editor and side panel above, status and results below."""
        yield Header()
        yield NavBar("sql")
        with Horizontal(id="sql-top"):
            language = "sql" if "sql" in TextArea().available_languages else None
            yield TextArea(
                STARTER,
                language=language,
                id="editor",
                show_line_numbers=False,
                soft_wrap=True,
                tab_behavior="focus",
            )
            with TabbedContent(id="sql-side"):
                with TabPane("Schema", id="schema-tab"):
                    yield Tree("database", id="schema")
                with TabPane("History", id="history-tab"):
                    yield OptionList(id="history")
                with TabPane("Saved", id="saved-tab"):
                    yield OptionList(id="saved")
        yield Static("ctrl+r runs the query; only read statements run", id="sql-status")
        yield Table(id="results", cursor_type="row", zebra_stripes=True)
        yield WrappingFooter()

    def on_mount(self) -> None:
        """Load the schema, history and saved queries; focus the editor."""
        self.sub_title = "SQL"
        self.query_one("#editor", TextArea).focus()
        self.load_schema()
        self.load_lists()

    @work(thread=True, exit_on_error=False, name="reading the schema")
    def load_schema(self) -> None:
        """Read the tables and columns through the store (attached databases' too)."""
        result = run_query(self.tb.store, SCHEMA_SQL, limit=10_000, attach=self.attachments)
        self.app.call_from_thread(self._show_schema, result)

    def _show_schema(self, result: QueryResult) -> None:
        tree = self.query_one("#schema", Tree)
        tree.clear()
        tree.root.expand()
        tables: dict[str, Any] = {}
        for table, column, kind in result.rows:
            node = tables.get(table)
            if node is None:
                node = tables[table] = tree.root.add(safe_text(str(table)), data=str(table))
            node.add_leaf(safe_text(f"{column}  {kind}"), data=str(column))

    @work(thread=True, exit_on_error=False, name="reading saved queries")
    def load_lists(self) -> None:
        """Read the history and the saved queries from their files."""
        history = self.history.entries()
        saved = self.saved.entries()
        self.app.call_from_thread(self._show_lists, history, saved)

    def _show_lists(self, history: list[str], saved: dict[str, str]) -> None:
        history_list = self.query_one("#history", OptionList)
        history_list.clear_options()
        history_list.add_options([Option(safe_text(_one_line(sql)), id=None) for sql in history])
        self._history = history
        saved_list = self.query_one("#saved", OptionList)
        saved_list.clear_options()
        saved_list.add_options(
            [Option(safe_text(f"{name}: {_one_line(sql)}")) for name, sql in saved.items()]
        )
        self._saved = list(saved.values())

    # --- running ----------------------------------------------------------------------------

    def action_run_query(self) -> None:
        """Run the editor's SQL (refused at once unless every statement only reads)."""
        if self.job is not None and not self.job.done:
            self.notify("a query is running: escape cancels it", severity="warning")
            return
        sql = self.query_one("#editor", TextArea).text
        if sql.strip().startswith("."):
            self._dot_command(sql.strip())
            return
        try:
            job = QueryJob(self.tb.store, sql, limit=ROW_LIMIT, attach=self.attachments)
        except QueryError as error:
            self._show_error(str(error))
            return
        self.job = job
        self._set_status(Text("running… (escape cancels)"))
        self._run(job)

    @work(thread=True, exit_on_error=False, name="running a query", group="query")
    def _run(self, job: QueryJob) -> None:
        job.run()
        try:
            result = job.result()
        except QueryError as error:
            self.app.call_from_thread(self._finished, job, None, str(error))
        else:
            self.app.call_from_thread(self._finished, job, result, None)
        self.history.add(job.sql)
        self.load_lists()

    # --- other databases ------------------------------------------------------------------

    def _dot_command(self, text: str) -> None:
        """`.attach [ALIAS=]PATH` or `.detach [ALIAS]`; anything else is reported."""
        command, _, argument = text.partition(" ")
        argument = argument.strip()
        if command == ".attach" and argument:
            try:
                alias, path = parse_attachment(argument)
            except TuneboardError as error:
                self._show_error(str(error))
                return
            if alias.lower() in (name.lower() for name in self.attachments):
                self._show_error(f"{alias!r} is attached already; .detach {alias} first")
                return
            self._set_status(safe_text(f"attaching {path}…"))
            self._try_attach(alias, path.absolute())
        elif command == ".detach":
            names = [n for n in self.attachments if not argument or n.lower() == argument.lower()]
            if not names:
                self._show_error(f"nothing is attached as {argument!r}")
                return
            for name in names:
                del self.attachments[name]
            self._set_status(safe_text(f"detached {', '.join(names)}"))
            self.load_schema()
        else:
            self._show_error("unknown command; use .attach [ALIAS=]PATH or .detach [ALIAS]")

    @work(thread=True, exit_on_error=False, name="attaching a database", group="query")
    def _try_attach(self, alias: str, path: Path) -> None:
        """Open the database with the new file attached once, so a bad file is reported now."""
        wanted = {**self.attachments, alias: path}
        try:
            run_query(self.tb.store, "SELECT 1", attach=wanted)
        except QueryError as error:
            self.app.call_from_thread(self._show_error, str(error))
            return
        self.app.call_from_thread(self._attached, alias, path)

    def _attached(self, alias: str, path: Path) -> None:
        self.attachments[alias] = path
        self._set_status(safe_text(f"attached {path} as {alias}: query its tables as {alias}.runs"))
        self.load_schema()

    def _finished(self, job: QueryJob, result: QueryResult | None, error: str | None) -> None:
        if job is not self.job:
            return
        if error is not None:
            self._show_error(error)
            return
        assert result is not None
        self.result, self.error = result, None
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        for index, column in enumerate(result.columns):
            table.add_column(safe_text(column), key=f"c{index}")
        table.add_rows([[plain(value) for value in row] for row in result.rows])
        count = len(result.rows)
        more = f" (the first {ROW_LIMIT}; more left out)" if result.truncated else ""
        chart = " · ctrl+g charts it" if numeric_columns(result) else ""
        rows = f"{count} row{'s' if count != 1 else ''}{more}"
        # Several statements: each ran, and the last one's result is shown.
        statements = len(job.results())
        last = f"the last of {statements} statements: " if statements > 1 else ""
        self._set_status(Text(f"{last}{rows} in {result.elapsed * 1000:.0f} ms{chart}"))

    def _show_error(self, message: str) -> None:
        self.error = message
        self._set_status(safe_text(f"✗ {message}", multiline=True), error=True)

    def _set_status(self, text: Text, *, error: bool = False) -> None:
        status = self.query_one("#sql-status", Static)
        status.update(text)
        status.set_class(error, "error-banner")

    def action_escape(self) -> None:
        """Cancel a running query; otherwise leave the editor for the results."""
        if self.job is not None and not self.job.done:
            self.job.cancel()
            self._set_status(Text("cancelling…"))
            return
        if isinstance(self.focused, TextArea):
            self.query_one("#results", DataTable).focus()
        elif isinstance(self.app.screen, SqlScreen):
            self.query_one("#editor", TextArea).focus()

    def action_focus_editor(self) -> None:
        """Back to the editor."""
        self.query_one("#editor", TextArea).focus()

    # --- history, saved queries, schema -----------------------------------------------------

    @on(OptionList.OptionSelected, "#history")
    def _history_chosen(self, event: OptionList.OptionSelected) -> None:
        self._load_sql(self._history[event.option_index])

    @on(OptionList.OptionSelected, "#saved")
    def _saved_chosen(self, event: OptionList.OptionSelected) -> None:
        self._load_sql(self._saved[event.option_index])

    def _load_sql(self, sql: str) -> None:
        editor = self.query_one("#editor", TextArea)
        editor.load_text(sql)
        editor.focus()

    @on(Tree.NodeSelected, "#schema")
    def _schema_chosen(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data:
            editor = self.query_one("#editor", TextArea)
            editor.insert(event.node.data)

    def action_save_query(self) -> None:
        """Save the editor's SQL under a name."""
        sql = self.query_one("#editor", TextArea).text.strip()
        if not sql:
            return

        def named(name: str | None) -> None:
            if name:
                self.saved.save(name, sql)
                self.notify(f"saved query {name!r}")
                self.load_lists()

        self.app.push_screen(TextPrompt("Save this query as:"), named)

    def action_chart(self) -> None:
        """Draw the result as a chart (x and y columns to pick)."""
        from tuneboard.tui.screens.result_chart import ResultChartScreen

        if self.result is None or not numeric_columns(self.result):
            self.notify("run a query whose result has a numeric column first", severity="warning")
            return
        self.app.push_screen(ResultChartScreen(self.result))


def _one_line(sql: str) -> str:
    return " ".join(sql.split())
