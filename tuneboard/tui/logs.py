"""The Logs tab of Run detail: a run's prints, warnings and logging records, followed live,
with a search box (`/` opens it; typing keeps only the lines holding the text, marked;
Enter keeps the search and goes back to the lines; Escape clears it)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from tuneboard.store import LogRow
from tuneboard.ui.logs import is_alarming, log_lines, log_matches
from tuneboard.ui.safe import visible

if TYPE_CHECKING:
    from tuneboard.store import Store

LOG_TAIL = 2000
"""Rows the tab reads when it opens, and keeps: the latest."""


@dataclass(frozen=True)
class LogChunk:
    """Rows read from the run's log: those after its first `after` rows."""

    after: int
    rows: list[LogRow] = field(default_factory=list)


class LogSearch(Input):
    """The search box; Escape clears the search and leaves it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Clear search"),
    ]

    def action_leave(self) -> None:
        """Clear the search and go back to the lines."""
        self.value = ""
        log_view = self.parent
        if isinstance(log_view, LogView):
            log_view.close_search()


class LogView(Vertical):
    """A run's log: the latest `LOG_TAIL` rows, new ones added as they are read.

    `read` runs in the screen's loading thread; `show` draws what it read.
    """

    DEFAULT_CSS = """
    LogView { height: 1fr; }
    LogView > LogSearch { display: none; }
    LogView.searching > LogSearch { display: block; }
    LogView > RichLog { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: deque[LogRow] = deque(maxlen=LOG_TAIL)
        self.needle = ""
        self._seen = 0  # rows of the run's log read so far (the first ones may be skipped)

    def compose(self) -> ComposeResult:
        """The search box (hidden until `/`), the empty hint, and the lines."""
        yield LogSearch(placeholder="search the log: Enter keeps it, Escape clears it")
        yield Static("nothing printed, warned or logged yet", classes="hint", id="no-logs")
        yield RichLog(id="log-lines", markup=False, highlight=False, wrap=False)

    @property
    def shown_rows(self) -> list[LogRow]:
        """The rows on screen: those matching the search."""
        return [row for row in self.rows if log_matches(row, self.needle)]

    def read(self, store: Store, run_id: str) -> LogChunk:
        """The rows added since the last read (on first read, the latest `LOG_TAIL`)."""
        after = self._seen
        if after == 0:
            after = max(0, store.log_count(run_id) - LOG_TAIL)
        return LogChunk(after, store.logs(run_id, after=after))

    def show(self, chunk: LogChunk | None) -> None:
        """Add the chunk's rows (a chunk read before the last one drew is ignored)."""
        if chunk is None or (self._seen and chunk.after != self._seen):
            return
        self._seen = chunk.after + len(chunk.rows)
        if not chunk.rows:
            self.query_one("#no-logs").display = not self.rows
            return
        self.rows.extend(chunk.rows)
        self.query_one("#no-logs").display = False
        lines = self.query_one(RichLog)
        if len(self.rows) == LOG_TAIL:  # rows fell off the front: draw again
            self._redraw()
            return
        for row in chunk.rows:
            if log_matches(row, self.needle):
                lines.write(self._line_text(row))

    def open_search(self) -> None:
        """Show the search box and focus it."""
        self.add_class("searching")
        self.query_one(LogSearch).focus()

    def close_search(self) -> None:
        """Hide the search box (once it is empty) and focus the lines."""
        if not self.needle:
            self.remove_class("searching")
        self.query_one(RichLog).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Keep only the lines holding the text."""
        event.stop()
        self.needle = event.value
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Keep the search and go back to the lines."""
        event.stop()
        self.close_search()

    def _redraw(self) -> None:
        lines = self.query_one(RichLog)
        lines.clear()
        for row in self.shown_rows:
            lines.write(self._line_text(row))

    def _line_text(self, row: LogRow) -> Text:
        prefix, message_lines = log_lines(row)
        text = Text(visible(prefix), style="dim")
        body = Text("  " + "\n    ".join(visible(line) for line in message_lines))
        if is_alarming(row):
            body.stylize("bold")
        if self.needle:
            body.highlight_words([visible(self.needle)], style="reverse", case_sensitive=False)
        return text.append_text(body)
