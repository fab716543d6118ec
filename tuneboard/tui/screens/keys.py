"""`?`: the keys of the screen on show, its tables' and the app's, grouped, with what they do."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table as RichTable
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static, Tabs

from tuneboard.tui.widgets.table import MOVE_KEYS, Table

if TYPE_CHECKING:
    from textual.app import App

# Screens whose class name does not say what users call them.
SCREEN_NAMES = {"DetailScreen": "Run detail", "SqlScreen": "SQL", "ResultChartScreen": "Chart"}
# DataTable's own movement keys, besides the ones `Table` adds.
TABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ / ↓", "up / down a row"),
    ("pgup / pgdn", "up / down a page"),
)
# Textual's keys for a screen with tabs (Run detail, Compare), which open on the tab bar.
TAB_KEYS: tuple[tuple[str, str], ...] = (
    ("← / →", "the previous / next tab, while the tab bar has the focus"),
    (
        "tab / shift+tab",
        "move the focus: tab bar, the tab's content (charts scroll with pgup / pgdn)",
    ),
)
CLOSE_HINT = "escape or ? closes"
PALETTE_KEY = ("ctrl+p", "command palette: launch, open a run, go to a screen, run a saved query…")


@dataclass(frozen=True)
class KeyGroup:
    """A titled list of (keys, what they do) rows."""

    title: str
    rows: tuple[tuple[str, str], ...]


def screen_name(screen: Screen[object]) -> str:
    """What users call `screen` ("Runs", "Run detail", "SQL")."""
    name = type(screen).__name__
    if name in SCREEN_NAMES:
        return SCREEN_NAMES[name]
    words = re.findall(r"[A-Z][a-z]*", name.removesuffix("Screen")) or [name]
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def _own_bindings(node: Screen[object] | App[object]) -> list[Binding]:
    """The bindings tuneboard's classes give `node` (not Textual's tab/copy keys), in order;
    a subclass's binding of a key replaces its base's."""
    by_key: dict[str, Binding] = {}
    for cls in reversed(type(node).__mro__):
        if not cls.__module__.startswith("tuneboard.") or "BINDINGS" not in vars(cls):
            continue
        for binding in Binding.make_bindings(vars(cls)["BINDINGS"]):
            by_key[binding.key] = binding
    return list(by_key.values())


def _shown(node: Screen[object] | App[object], action: str) -> bool:
    """False where the node hides the action for now (Run detail's `p` without a parent)."""
    if "." in action.split("(")[0]:
        return True
    name, _, rest = action.partition("(")
    parameters = tuple(p.strip().strip("'\"") for p in rest.rstrip(")").split(",") if p.strip())
    return node.check_action(name, parameters) is not False


def _what(node: object, binding: Binding) -> str:
    """The binding's description, and its action's docstring where that says more."""
    name = binding.action.split("(")[0]
    method = getattr(node, f"action_{name}", None)
    ours = getattr(method, "__module__", "").startswith("tuneboard.")
    doc = inspect.getdoc(method) if ours else None
    first = doc.split("\n\n")[0].replace("\n", " ").rstrip(".") if doc else ""
    if first and first != binding.description:
        return f"{binding.description}: {first[0].lower()}{first[1:]}"
    return binding.description


def _merge(app: App[object], node: object, bindings: list[Binding]) -> tuple[tuple[str, str], ...]:
    """Rows of (keys, what), one per action: `1 / f1  Runs`."""
    rows: dict[tuple[str, str], list[str]] = {}
    for binding in bindings:
        what = _what(node, binding)
        rows.setdefault((binding.action, what), []).append(app.get_key_display(binding))
    return tuple((" / ".join(dict.fromkeys(keys)), what) for (_, what), keys in rows.items())


def key_groups(screen: Screen[object]) -> list[KeyGroup]:
    """The keys `screen` answers to: its own, its tables' and the app's, in that order."""
    app = screen.app
    own = [b for b in _own_bindings(screen) if _shown(screen, b.action)]
    groups = [KeyGroup(screen_name(screen), _merge(app, screen, own))] if own else []
    if screen.query(Table):
        taken = {b.key for b in own}
        moves = [(key, what) for key, _, what in MOVE_KEYS if key not in taken]
        rows: dict[str, list[str]] = {}
        for key, what in moves:
            rows.setdefault(what, []).append(key)
        groups.append(
            KeyGroup(
                "Tables",
                (*((" / ".join(keys), what) for what, keys in rows.items()), *TABLE_KEYS),
            )
        )
    if screen.query(Tabs):
        groups.append(KeyGroup("Tabs", TAB_KEYS))
    mine = {b.key for b in own}
    app_bindings = [b for b in _own_bindings(app) if b.key not in mine and _shown(app, b.action)]
    groups.append(KeyGroup("Everywhere", (*_merge(app, app, app_bindings), PALETTE_KEY)))
    return groups


def render_groups(groups: list[KeyGroup]) -> RichTable:
    """The groups as one two-column table, each group under a bold title."""
    table = RichTable.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    for index, group in enumerate(groups):
        if index:
            table.add_row("", "")
        table.add_row(Text(group.title, style="bold underline"), "")
        for keys, what in group.rows:
            table.add_row(Text(keys), Text(what))
    return table


class KeysScreen(ModalScreen[None]):
    """The keys of the screen under it, grouped; `escape` or `?` closes it."""

    DEFAULT_CSS = """
    KeysScreen {
        align: center middle;
    }
    KeysScreen > Vertical {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        padding: 0 2;
        border: thick $primary;
        background: $surface;
    }
    /* The title and how to close sit in the border, so that keys longer than the box scroll
       inside it and never push either out. */
    KeysScreen VerticalScroll {
        height: auto;
        max-height: 100%;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "close", "Close", key_display="esc"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under
        self.groups = key_groups(under)

    def compose(self) -> ComposeResult:
        """A title, the groups (scrolling when the terminal is short) and how to close."""
        box = Vertical()
        box.border_title = f"Keys: {screen_name(self.under)}"
        box.border_subtitle = CLOSE_HINT
        with box, VerticalScroll():
            yield Static(render_groups(self.groups), id="keys")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
