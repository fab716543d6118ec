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


def one_line(error: BaseException) -> str:
    """An exception as one line: its message for tuneboard errors, `Type: message` otherwise."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, TuneboardError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
