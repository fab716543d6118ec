"""The app's own commands in the command palette (ctrl+p).

Launch an experiment (opens the launch form on it: launching trains, so the form gets the
last word), open a run by id (prefix match), go to a screen, compare the selected runs,
run a saved or recent SQL query, switch to a saved view of the Runs screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from tuneboard.tui.history import QueryHistory, SavedQueries
from tuneboard.tui.widgets.nav import VIEWS
from tuneboard.ui.safe import visible

if TYPE_CHECKING:
    from tuneboard.store import RunRow
    from tuneboard.tui.app import TuneboardApp

# Runs offered by id at most (newest first), and recent queries offered.
MAX_RUN_HITS = 30
RECENT_QUERIES = 10


def highlight(matcher: Matcher, text: str) -> Content:
    """`text` as plain content (never markup: it may be user data) with the matched letters
    marked."""
    content = Content(text)
    _, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets:
        if not text[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


def id_hits(query: str, runs: list[RunRow]) -> list[RunRow]:
    """The runs whose id starts or ends with a word of `query` (the Runs table's short ids,
    `a3f9`, are the ends of ids), newest first, at most MAX_RUN_HITS."""
    words = tuple(w for w in query.split() if any(c.isdigit() for c in w))
    found = [run for run in runs if run.run_id.startswith(words) or run.run_id.endswith(words)]
    return found[:MAX_RUN_HITS]


Command = Callable[[], Awaitable[None] | None]


class TuneboardCommands(Provider):
    """Launch, open a run, go to a screen, compare, run a saved query, switch views."""

    runs: list[RunRow]
    commands: list[tuple[str, str, Command]]

    @property
    def tb(self) -> TuneboardApp:
        """The app, typed."""
        return cast("TuneboardApp", self.app)

    async def startup(self) -> None:
        """Read the runs, saved queries and views once per palette opening (off the loop)."""
        app = self.tb
        self.runs = await asyncio.to_thread(app.store.list_runs) if app.store_ready else []
        self.commands = await asyncio.to_thread(self._commands)

    def _commands(self) -> list[tuple[str, str, Command]]:
        """(title, help, command) of every command but opening runs."""
        app = self.tb
        folder = app.project.root / ".tuneboard"
        commands: list[tuple[str, str, Command]] = []
        for mode, key, label in VIEWS:
            if mode in app.MODES:
                commands.append(
                    (f"Go to {label}", f"the {label} screen ({key})", partial(self._go, mode))
                )
        for name in app.project.experiment_names:
            commands.append(
                (
                    f"Launch {visible(name)}",
                    "open the launch form on this experiment (ctrl+l there launches)",
                    partial(self._launch, name),
                )
            )
        commands.append(
            ("Compare selected runs", "compare the runs selected on Runs (c)", self._compare)
        )
        for name, sql in SavedQueries(folder).entries().items():
            commands.append(
                (
                    f"Run saved query {visible(name)}",
                    visible(_one_line(sql))[:100],
                    partial(self._run_sql, sql),
                )
            )
        for sql in QueryHistory(folder).entries()[:RECENT_QUERIES]:
            line = visible(_one_line(sql))
            command = partial(self._run_sql, sql)
            commands.append((f"Run recent query {line[:60]}", line[:100], command))
        from tuneboard.tui.views import view_commands

        commands.extend(view_commands(app))
        return commands

    async def discover(self) -> Hits:
        """What the palette lists before anything is typed: every command but runs, queries."""
        for title, help, command in self.commands:
            if not title.startswith(("Run recent", "Run saved")):
                yield DiscoveryHit(Content(title), command, text=title, help=help)

    async def search(self, query: str) -> Hits:
        """Commands whose title matches `query`, and runs whose id starts or ends with a word of
        it."""
        matcher = self.matcher(query)
        for title, help, command in self.commands:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, highlight(matcher, title), command, text=title, help=help)
        for run in id_hits(query, self.runs):
            title = f"Open run {visible(run.run_id)}"
            detail = f"{visible(run.experiment)}, {run.status}"
            yield Hit(1.0, Content(title), partial(self._open, run.run_id), text=title, help=detail)
        if matcher.match("Open run") > 0 and not id_hits(query, self.runs):
            for run in self.runs[:MAX_RUN_HITS]:
                title = f"Open run {visible(run.run_id)}"
                detail = f"{visible(run.experiment)}, {run.status}"
                score = matcher.match(title)
                if score > 0:
                    yield Hit(
                        score * 0.9,
                        highlight(matcher, title),
                        partial(self._open, run.run_id),
                        text=title,
                        help=detail,
                    )

    # --- the commands -------------------------------------------------------------------

    async def _go(self, mode: str) -> None:
        await self.app.switch_mode(mode)

    async def _launch(self, experiment: str) -> None:
        await self.app.switch_mode("runs")
        self.tb.open_launch(experiment)

    def _open(self, run_id: str) -> None:
        from tuneboard.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(run_id))

    async def _compare(self) -> None:
        from tuneboard.tui.screens.runs import RunsScreen

        await self.app.switch_mode("runs")
        runs = self.app.screen_stack[0]
        if isinstance(runs, RunsScreen):
            runs.action_compare()

    async def _run_sql(self, sql: str) -> None:
        from textual.widgets import TextArea

        from tuneboard.tui.screens.sql import SqlScreen

        await self.app.switch_mode("sql")
        screen: Any = self.app.screen_stack[0]
        if isinstance(screen, SqlScreen):
            screen.query_one("#editor", TextArea).load_text(sql)
            screen.action_run_query()


def _one_line(sql: str) -> str:
    return " ".join(sql.split())
