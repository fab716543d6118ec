"""A launch-form field drawn as one line of text (name, value, help) until it is edited.

A pipeline's form has a hundred fields. As real rows (a label, an Input, Select or Checkbox,
and a help line) that is some five hundred widgets, and Textual styles and lays out each of
them before the form can show. A preview is one widget that looks like its row; when it takes
the focus (Tab, a click) the form puts the real row in its place (`LaunchScreen`).
"""

from __future__ import annotations

import textwrap
from typing import ClassVar

from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.style import Style
from textual.widget import Widget

from tuneboard.tui.launch_form import WidgetKind
from tuneboard.ui.safe import visible

NAME_WIDTH = 18
"""The field-name column, as `.field-name` in app.tcss (16 cells and padding)."""
EDITOR_WIDTH = 28
"""The value column, as `.field Input, .field Select` in app.tcss."""

# Component classes of `FieldList` (styled in app.tcss beside the real rows' rules).
_NAME = "field-preview--name"
_VALUE = "field-preview--value"
_MUTED = "field-preview--help"
_SWITCH_ON = "field-preview--on"
_SWITCH_OFF = "field-preview--off"
_SWITCH_EDGE = "field-preview--edge"


class FieldList(Vertical):
    """The form's fields: holds the styles its previews draw with, as component classes
    (styled once here rather than on each of a hundred previews)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        _NAME,
        _VALUE,
        _MUTED,
        _SWITCH_ON,
        _SWITCH_OFF,
        _SWITCH_EDGE,
    }

    def part_style(self, component: str) -> Style:
        """The colours of one part of a preview (one of the component classes above)."""
        styles = self.get_component_styles(component)
        background = self.background_colors[1]
        if styles.has_rule("background"):
            background = background + styles.background
        foreground = None
        if styles.auto_color:
            foreground = background.get_contrast_text(styles.color.a)
        elif styles.has_rule("color"):
            foreground = styles.color
        return Style(
            background=background if styles.has_rule("background") else None, foreground=foreground
        )


class FieldPreview(Widget, can_focus=True):
    """One field's row as text: `name`, the value as its editor shows it, and `help` (given
    with control characters escaped: see tuneboard.ui.safe). Lives in a `FieldList`.

    `kind` is the editor it stands for ("input", "select" or "switch"); `value` is the text
    an input would hold, the choice of a select, or a switch's bool.
    """

    DEFAULT_CSS = """
    FieldPreview {
        height: auto;
    }
    """

    class Opened(Message):
        """The preview took the focus: its row is to be edited."""

        def __init__(self, preview: FieldPreview) -> None:
            super().__init__()
            self.preview = preview

    def __init__(
        self, name: str, kind: WidgetKind, value: object, help_text: str, *, id: str
    ) -> None:
        super().__init__(id=id)
        self.field_name = name
        self.kind = kind
        self.value = value
        self.help_text = help_text

    def on_focus(self) -> None:
        """Ask for the real row (see `Opened`)."""
        self.post_message(self.Opened(self))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As many lines as the name or the help needs in its column (as in the real row)."""
        return len(self._lines(width))

    def render(self) -> Content:
        """The row: the name, the value in its editor's colours, the help beside it."""
        assert isinstance(self.parent, FieldList)
        style = self.parent.part_style
        lines = []
        for number, (name, help_line) in enumerate(self._lines(self.content_size.width)):
            # A run of one style is one span: the same screen's snapshot otherwise came out
            # with neighbouring spans of one style sometimes merged, sometimes not.
            name_cell = (
                [(f" {name:<{NAME_WIDTH - 2}} ", style(_NAME))] if name or not number else []
            )
            if number == 0:
                value = [(text, style(part)) for text, part in self._value_cell()]
                help_cell = [(f" {help_line}", style(_MUTED))]
            else:
                value = []
                blank = " " * (EDITOR_WIDTH if name else NAME_WIDTH + EDITOR_WIDTH)
                help_cell = [(f"{blank} {help_line}", style(_MUTED))]
            lines.append(Content.assemble(*name_cell, *value, *help_cell))
        return Content("\n").join(lines)

    def _lines(self, width: int) -> list[tuple[str, str]]:
        """The (name, help) text of each line: the name folded, the help wrapped, each in
        its column."""
        name_width = NAME_WIDTH - 2  # its padding
        names = [
            self.field_name[start : start + name_width]
            for start in range(0, max(len(self.field_name), 1), name_width)
        ]
        room = max(8, width - NAME_WIDTH - EDITOR_WIDTH - 2)  # the help's padding
        helps = textwrap.wrap(self.help_text, room) or [""]
        count = max(len(names), len(helps))
        names += [""] * (count - len(names))
        helps += [""] * (count - len(helps))
        return list(zip(names, helps, strict=True))

    def _value_cell(self) -> list[tuple[str, str]]:
        """The value as (text, part) pieces, drawn as its editor draws it."""
        if self.kind == "switch":
            mark = _SWITCH_ON if self.value else _SWITCH_OFF
            on = " on".ljust(EDITOR_WIDTH - 3)
            return [("▐", _SWITCH_EDGE), ("X", mark), ("▌", _SWITCH_EDGE), (on, _VALUE)]
        text = "" if self.value is None else visible(str(self.value))
        if self.kind == "select":
            return [(f"{text[: EDITOR_WIDTH - 2]:<{EDITOR_WIDTH - 2}}▼ ", _VALUE)]
        return [(f"{text[:EDITOR_WIDTH]:<{EDITOR_WIDTH}}", _VALUE)]
