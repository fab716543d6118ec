"""Each run's output: its prints, Python warnings and logging records, kept in its log.

Runs are threads of one process, so the capture is process-wide and routes by thread:
`ensure_installed()` puts a proxy in front of `sys.stdout` and `sys.stderr`, wraps
`warnings.showwarning` and the logging record factory. Each looks up the current thread's
`RunLog` (set with `attach` by the runner for the run's thread, and handed on to every thread
a run's thread starts) and adds the line to it; output of other threads, and all output, goes
on to the stream it was going to (the CLI's progress bars, the app's own capture of prints).

Logging is captured where records are made, not by a handler: libraries such as transformers
keep their loggers from propagating to the root logger. A record is captured when its
logger is enabled for its level, whatever handlers print it; the line a `StreamHandler`
then writes is not captured a second time.

A `RunLog` caps what it keeps: lines are cut at `MAX_LINE_CHARS`, at most `RATE` lines a
second are kept on average (bursts of `BURST`), and at most `MAX_LINES` per run; what is
dropped is counted and said in a line of the log (``N lines dropped ...``). Lines go to the
recorder's `log_output` (the store queues them for its batched writer).

Everything here must never raise into the code that printed: a failure to record a line is
swallowed and the output still reaches its stream.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol, TextIO, runtime_checkable

MAX_LINE_CHARS = 2000
"""Characters kept of one line; the rest is cut and its length said."""
MAX_LINES = 10_000
"""Lines kept of one run (each process that runs it: a resumed run starts afresh)."""
RATE = 200.0
"""Lines a second kept on average; a plugin printing in a tight loop loses the rest."""
BURST = 1000
"""Lines kept in a burst above `RATE`."""

STREAMS = ("stdout", "stderr", "warnings", "logging", "tuneboard")
"""Where a line came from: a print, a write to stderr, a Python warning, a logging record,
or tuneboard's own note (lines dropped)."""

_ATTR = "_tuneboard_run_log"


@runtime_checkable
class OutputRecorder(Protocol):
    """A recorder that keeps a run's output lines (the project's `Store`)."""

    def log_output(
        self,
        run_id: str,
        stage_index: int | None,
        line: int,
        stream: str,
        level: str,
        source: str,
        message: str,
        *,
        at: float | None = None,
    ) -> None:
        """Keep one line of the run's log (row `line`, from 0, of this process's capture)."""


class RunLog:
    """One run's log in this process: lines in, capped, out to `recorder.log_output`.

    `stage_index` is the stage running now (the runner sets it). Safe from any thread.
    """

    def __init__(
        self,
        run_id: str,
        recorder: OutputRecorder,
        *,
        max_lines: int = MAX_LINES,
        rate: float = RATE,
        burst: int = BURST,
        max_chars: int = MAX_LINE_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.recorder = recorder
        self.stage_index: int | None = None
        self.max_lines = max_lines
        self.rate = rate
        self.burst = burst
        self.max_chars = max_chars
        self.kept = 0
        self.dropped = 0
        self.closed = False
        self._clock = clock
        self._lock = threading.Lock()
        self._partial: dict[str, str] = {}
        self._tokens = float(burst)
        self._refilled = clock()
        self._rate_dropped = 0
        self._cap_dropped = 0
        self._line = 0

    def write(self, stream: str, text: str) -> None:
        """Text written to `stream` (stdout, stderr): each complete line is kept.

        A carriage return starts the line again (a progress bar redrawing itself keeps only
        its last state); a line without its newline waits for the rest, or for `close`.
        """
        with self._lock:
            if self.closed:
                return
            pending = self._partial.pop(stream, "") + text
            *lines, rest = pending.split("\n")
            for line in lines:
                self._add(stream, "info", "", _after_return(line))
            rest = _after_return(rest)
            if rest:
                self._partial[stream] = rest[-self.max_chars * 2 :]

    def add(self, stream: str, level: str, source: str, message: str) -> None:
        """One message (a warning, a logging record: it may span lines)."""
        with self._lock:
            if not self.closed:
                self._add(stream, level, source, message)

    def close(self) -> None:
        """Keep the lines still waiting for their newline, say what was dropped, stop."""
        with self._lock:
            if self.closed:
                return
            for stream, rest in self._partial.items():
                self._add(stream, "info", "", rest)
            self._partial.clear()
            self._say_rate_drops()
            if self._cap_dropped:
                self._emit(
                    f"{self._cap_dropped} lines dropped: a run keeps at most "
                    f"{self.max_lines} lines of output"
                )
            self.closed = True

    def _add(self, stream: str, level: str, source: str, message: str) -> None:
        if self.kept >= self.max_lines:
            self._cap_dropped += 1
            self.dropped += 1
            return
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < 1:
            self._rate_dropped += 1
            self.dropped += 1
            return
        self._tokens -= 1
        self._say_rate_drops()
        try:
            message.encode()
        except UnicodeEncodeError:  # lone surrogates: the database keeps only valid text
            message = message.encode(errors="backslashreplace").decode()
        if len(message) > self.max_chars:
            cut = len(message) - self.max_chars
            message = f"{message[: self.max_chars]}… ({cut} more characters)"
        self.kept += 1
        self._record(stream, level, source, message)

    def _say_rate_drops(self) -> None:
        if self._rate_dropped:
            count, self._rate_dropped = self._rate_dropped, 0
            self._emit(f"{count} lines dropped: more than {self.rate:g} lines a second")

    def _emit(self, message: str) -> None:
        self._record("tuneboard", "warning", "tuneboard", message)

    def _record(self, stream: str, level: str, source: str, message: str) -> None:
        line, self._line = self._line, self._line + 1
        # Never fail the code that printed; what recording says itself is not the run's.
        with contextlib.suppress(Exception), paused():
            self.recorder.log_output(
                self.run_id, self.stage_index, line, stream, level, source, message
            )


def _after_return(line: str) -> str:
    """What a terminal shows of `line`: the text after its last carriage return."""
    line = line.removesuffix("\r")
    return line.rsplit("\r", 1)[-1] if "\r" in line else line


# --- routing by thread --------------------------------------------------------------------

_local = threading.local()


def current() -> RunLog | None:
    """The log of the run the current thread works for, if any."""
    log: RunLog | None = getattr(threading.current_thread(), _ATTR, None)
    return None if log is None or log.closed else log


def attach(log: RunLog | None) -> None:
    """Route the current thread's output (and that of threads it starts) to `log`."""
    setattr(threading.current_thread(), _ATTR, log)


@contextlib.contextmanager
def capturing(run_id: str, recorder: object) -> Iterator[RunLog | None]:
    """For the block, the current thread's output goes to a new `RunLog` of the run too.

    Yields None (and captures nothing) when `recorder` cannot keep output lines.
    """
    if not isinstance(recorder, OutputRecorder):
        yield None
        return
    ensure_installed()
    log = RunLog(run_id, recorder)
    attach(log)
    try:
        yield log
    finally:
        attach(None)
        log.close()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Nothing the current thread writes in the block is captured (tuneboard's own output,
    such as the CLI's progress lines printed from a run's thread)."""
    before = getattr(_local, "busy", False)
    _local.busy = True
    try:
        yield
    finally:
        _local.busy = before


def _capturing_now() -> RunLog | None:
    if getattr(_local, "busy", False):
        return None
    return current()


class RoutedStream:
    """Stands in for `sys.stdout` or `sys.stderr`: a run's thread's text goes to its log,
    and all text to the stream it replaced (attributes it lacks come from that stream)."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.stream_name = name
        self.wrapped = stream

    def write(self, text: str) -> int:
        """Write to the wrapped stream; keep the text in the run's log in a run's thread."""
        log = _capturing_now()
        if log is None or sys._getframe(1).f_code is _STREAM_EMIT:
            return self.wrapped.write(text)
        _local.busy = True  # a stream under this one (another proxy) must not keep it again
        try:
            if isinstance(text, str):
                log.write(self.stream_name, text)
            return self.wrapped.write(text)
        finally:
            _local.busy = False

    def writelines(self, lines: Any) -> None:
        """Write each line."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self.wrapped.flush()

    def isatty(self) -> bool:
        """Whether the wrapped stream is a terminal."""
        return self.wrapped.isatty()

    def fileno(self) -> int:
        """The wrapped stream's file descriptor."""
        return self.wrapped.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


_STREAM_EMIT = logging.StreamHandler.emit.__code__
_install_lock = threading.Lock()
_original_start = threading.Thread.start


def _start(self: threading.Thread) -> None:
    log = current()
    if log is not None and getattr(self, _ATTR, None) is None:
        setattr(self, _ATTR, log)
    _original_start(self)


def _showwarning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    inner = _showwarning.wrapped  # type: ignore[attr-defined]
    if getattr(_local, "in_warning", False):  # a hook that wraps this one was wrapped by it
        inner = getattr(warnings, "_showwarning_orig", None)
        if inner is None:
            return
    log = _capturing_now()
    if log is not None:
        log.add("warnings", "warning", category.__name__, f"{message} ({filename}:{lineno})")
    _local.in_warning = True
    try:
        with paused():
            inner(message, category, filename, lineno, file, line)
    finally:
        _local.in_warning = False


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    if getattr(_local, "in_factory", False):  # a factory that wraps this one was wrapped by it
        return logging.LogRecord(*args, **kwargs)
    _local.in_factory = True
    try:
        record: logging.LogRecord = _record_factory.wrapped(*args, **kwargs)  # type: ignore[attr-defined]
    finally:
        _local.in_factory = False
    log = _capturing_now()
    if log is not None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:
            message = str(record.msg)
        log.add("logging", record.levelname.lower(), record.name, message)
    return record


def ensure_installed() -> None:
    """Put the capture in place, again where something replaced it since (a Textual app
    swaps `sys.stdout` while it runs; pytest swaps streams and warning hooks per test).

    Cheap when in place; never wraps its own proxy twice.
    """
    with _install_lock:
        if threading.Thread.start is not _start:
            threading.Thread.start = _start  # type: ignore[method-assign]
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, RoutedStream):
                setattr(sys, name, RoutedStream(name, stream))
        if warnings.showwarning is not _showwarning:
            _showwarning.wrapped = warnings.showwarning  # type: ignore[attr-defined]
            warnings.showwarning = _showwarning
        factory = logging.getLogRecordFactory()
        if factory is not _record_factory:
            _record_factory.wrapped = factory  # type: ignore[attr-defined]
            logging.setLogRecordFactory(_record_factory)
