"""Text boxes that show, in the footer, the keys that still work while you type in them.

The rule, the same on every screen: while a text box has the focus, letters and digits are
text, so the screen keys (`1`-`3`, `q`, a screen's letters) do not apply there (Textual leaves
out the bindings a focused text box takes). The F-keys (`F1`-`F3`, one per view) and `ctrl+q`
always work, and `escape` leaves the box. These widgets put those keys in the footer while
they have the focus, so the footer says the rule where it applies.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input, TextArea

from tuneboard.tui.widgets.nav import VIEWS

VIEW_KEYS = Binding.Group("screens")

# F1 for the first view, F2 for the second...: the keys that switch views while typing.
TYPING_KEYS: list[BindingType] = [
    *(
        Binding(f"f{number}", f"app.switch_mode('{mode}')", label, group=VIEW_KEYS)
        for number, (mode, _, label) in enumerate(VIEWS, start=1)
    ),
    Binding("ctrl+q", "app.request_quit", "Quit"),
]


class EditorArea(TextArea):
    """A text area (the SQL editor) whose footer shows `escape` and the typing keys.

    `escape` runs the screen's `escape` action, which leaves the editor (or first cancels
    what the editor started, such as a running query).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.escape", "Leave editor"),
        *TYPING_KEYS,
    ]


class TypingInput(Input):
    """A one-line input whose footer shows `escape` and the typing keys.

    `escape` runs the screen's `leave_input` action, which moves the focus back to the
    screen's main widget. A subclass names what `enter` does with a shown binding of its own.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.leave_input", "Back"),
        *TYPING_KEYS,
    ]
