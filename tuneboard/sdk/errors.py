"""Exceptions that reach users as one-line messages instead of tracebacks."""

from __future__ import annotations


class TuneboardError(Exception):
    """Base class for errors caused by input or environment, shown to users as one line."""


class ConfigError(TuneboardError):
    """A `tuneboard.toml` (or a `--set` override) is invalid.

    The message always names the file, and where known the table and key at fault.
    """


class PluginError(TuneboardError):
    """A plugin is unknown, failed to load, or broke its contract."""


class DataError(TuneboardError):
    """A dataset file is missing, unreadable, or does not have the expected shape."""


class QueryError(TuneboardError):
    """A user SQL statement was refused or failed."""


class RunCancelled(Exception):
    """Raised inside a run when cancellation was requested; the run ends as `cancelled`."""


MESSAGE_LIMIT = 300
"""The most characters of another library's message that an error line quotes."""


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to `limit` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(error: BaseException) -> str:
    """An exception as one line: its message for tuneboard errors, `Type: message` otherwise
    (another library's message cut to `MESSAGE_LIMIT` characters)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if not isinstance(error, TuneboardError):
        text = shorten(text)
    if isinstance(error, TuneboardError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
