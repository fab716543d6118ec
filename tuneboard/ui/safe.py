"""Text from the database shown safely: never read as markup, no raw control characters.

Names, SQL results, errors, event messages and generations are user data. Printed as
they are, a `[/x]` crashes Rich's markup parser, `[blink red]hi` loses its brackets, and an
escape character (`chr(27) || '[2J'`) drives the user's terminal. Everything user-controlled
that the CLI prints or the app shows goes through `visible` (for plain strings) or
`safe_text` (a Rich `Text`, which neither Rich nor Textual parses as markup).

rich is imported lazily: the CLI's start-up must not pay for it.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

# Shown escaped rather than emitted: C0 controls, DEL, C1 controls, the bidirectional
# formatting characters (which reorder what a terminal shows, "Trojan source"), the line
# and paragraph separators, and lone surrogates (which cannot be encoded at all).
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_CONTROL_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, multiline: bool = False) -> str:
    """`text` with every control character written out as an escape (ESC as `\\x1b`).

    Printable text, brackets and backslashes included, is returned unchanged. Tab and
    newline are kept where `multiline` text is legitimate (event messages, generations),
    and written as `\\t` and `\\n` otherwise.
    """
    pattern = _CONTROL_KEEP_LINES if multiline else _CONTROL
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def format_value(value: Any) -> str:
    """Any value a query can return as display text; never raises.

    Floats to 4 significant digits, timestamps as local `YYYY-MM-DD HH:MM:SS`, lists,
    structs and maps written out, blobs as `b'...'`, None as empty.
    """
    try:
        return _format(value, nested=False)
    except Exception:  # a value this formatter does not know: its repr is still useful
        return _fallback(value)


def _format(value: Any, *, nested: bool) -> str:
    if value is None:
        return "NULL" if nested else ""
    if isinstance(value, bool):
        return str(value).lower() if nested else str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, datetime):
        return _format_datetime(value)
    if isinstance(value, str):
        return repr(value) if nested else value
    if isinstance(value, date | bytes | bytearray | memoryview | int):
        return str(bytes(value)) if isinstance(value, memoryview) else str(value)
    if isinstance(value, Mapping):
        items = (f"{_format(k, nested=True)}: {_format(v, nested=True)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if type(value) is list:
        return "[" + ", ".join(_format(v, nested=True) for v in value) + "]"
    if type(value) is tuple:  # a map's (key, value) pairs; not named tuples (intervals)
        return "(" + ", ".join(_format(v, nested=True) for v in value) + ")"
    return str(value)


def _format_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _format_datetime(value: datetime) -> str:
    with contextlib.suppress(OverflowError, ValueError, OSError):  # near year 1 or 9999
        value = value.astimezone()
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _fallback(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def cell_text(value: Any) -> str:
    """A value as one table cell: `format_value`, then `visible` on one line."""
    return visible(format_value(value))


def safe_text(value: Any, style: str = "", *, multiline: bool = False) -> Text:
    """A value as a Rich `Text` that is never read as markup and holds no control codes."""
    from rich.text import Text

    text = value if isinstance(value, str) else format_value(value)
    return Text(visible(text, multiline=multiline), style=style)
