"""Lineage in Run detail: the line naming a run's parent and children, the keys that open
them (`p` the parent, `o` a child: at once when there is one, else from a list)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tuneboard.ui.lineage import Lineage, link_label, run_label, summary_line
from tuneboard.ui.safe import safe_text

if TYPE_CHECKING:
    from textual.screen import Screen

LINEAGE_ACTIONS = ("open_parent", "open_children")
"""The actions of the lineage keys, shown only for a run that has a parent or children."""


def lineage_action_shown(lineage: Lineage | None, action: str) -> bool:
    """Whether the key of `action` applies: a parent to open, or children."""
    if lineage is None:
        return False
    return lineage.parent is not None if action == "open_parent" else bool(lineage.children)


class LineageLine(Static):
    """The line under Run detail's summary: `from RUN (export of EXPERIMENT) · children: 2`,
    hidden for a run with neither a parent nor children."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.display = False
        self._shown: str | None = None

    def show(self, lineage: Lineage | None) -> None:
        """Draw `lineage`'s line (redrawn only when it changed: Run detail polls)."""
        line = summary_line(lineage) if lineage is not None else ""
        if line:
            keys = []
            if lineage is not None and lineage.parent is not None:
                keys.append("p: parent")
            if lineage is not None and lineage.children:
                keys.append("o: children")
            line = f"{line}  ({', '.join(keys)})"
        if line == self._shown:
            return
        self._shown = line
        self.display = bool(line)
        self.update(safe_text(line))


def open_parent(screen: Screen[None], lineage: Lineage | None) -> None:
    """Open the parent run's detail on top of `screen`."""
    from tuneboard.tui.screens.detail import DetailScreen

    if lineage is not None and lineage.parent is not None:
        screen.app.push_screen(DetailScreen(lineage.parent.parent_run_id))


def open_children(screen: Screen[None], lineage: Lineage | None) -> None:
    """Open the only child's detail, or a list of the children to pick one from."""
    from tuneboard.tui.screens.detail import DetailScreen

    if lineage is None or not lineage.children:
        return
    if len(lineage.children) == 1:
        screen.app.push_screen(DetailScreen(lineage.children[0].run_id))
        return

    def picked(run_id: str | None) -> None:
        if run_id is not None:
            screen.app.push_screen(DetailScreen(run_id))

    screen.app.push_screen(ChildPicker(lineage), picked)


class ChildPicker(ModalScreen[str | None]):
    """The runs that started from a run's models; dismisses with the chosen run's id."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, lineage: Lineage) -> None:
        super().__init__()
        self.lineage = lineage

    def compose(self) -> ComposeResult:
        """A title and one option per child: id, experiment, status, headline, link."""
        options = [
            Option(
                safe_text(
                    f"{run_label(self.lineage.runs.get(link.run_id), link.run_id)}"
                    f"  ← {link_label(link)}"
                ),
                id=link.run_id,
            )
            for link in self.lineage.children
        ]
        with Vertical(classes="dialog picker-dialog"):
            yield Label(safe_text(f"runs started from {self.lineage.run_id}"), classes="question")
            yield OptionList(*options, id="children")
            yield Label("enter to open, escape to cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Open the chosen run."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without opening anything."""
        self.dismiss(None)
