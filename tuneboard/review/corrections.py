"""The project's corrections file: labels people gave examples while reviewing predictions.

One JSON object per line: ``{"text": ..., "label": ..., "run": ..., "time": ...}`` (and
``"text_pair"`` for pair tasks). An example is its text (and text pair): the file holds at most
one correction per example, the latest. Saving merges into the file and replaces it in one
step (a temporary file renamed over it), so a reader never sees half a file. Standard library
only: the app, the CLI and the `feedback` stage all use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuneboard.sdk.contracts import Correction
from tuneboard.sdk.errors import DataError
from tuneboard.sdk.textfiles import read_utf8

Key = tuple[str, str | None]

_save_lock = threading.Lock()


def now_iso() -> str:
    """The current time as ISO 8601 in UTC, to the second."""
    return datetime.now(tz=UTC).replace(microsecond=0).isoformat()


def read_corrections(path: Path) -> dict[Key, Correction]:
    """The corrections in `path` by example, in file order (the last of a repeated example
    wins); empty when the file does not exist. DataError naming the file and line when a line
    is not a correction."""
    if not path.exists():
        return {}
    text = read_utf8(path)
    corrections: dict[Key, Correction] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            correction = _parse(path, number, line)
            corrections.pop(correction.key, None)
            corrections[correction.key] = correction
    return corrections


def _parse(path: Path, number: int, line: str) -> Correction:
    where = f"{path}: line {number}"
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise DataError(f'{where}: expected a JSON object like {{"text": ..., "label": ...}}')
    for key in ("text", "label"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            raise DataError(f"{where}: {key!r} must be a non-empty string, got {value.get(key)!r}")
    for key in ("text_pair", "run", "time"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise DataError(f"{where}: {key!r} must be a string, got {value[key]!r}")
    return Correction(
        text=value["text"],
        label=value["label"].strip(),
        text_pair=value.get("text_pair"),
        run=value.get("run"),
        time=value.get("time"),
    )


def save_corrections(path: Path, new: Iterable[Correction]) -> tuple[int, int]:
    """Merge `new` into the corrections file at `path` (created if missing) and return how
    many examples were added and how many changed label.

    A correction for an example already in the file replaces it (the latest wins). The file
    is rewritten through a temporary file renamed over it; it is readable by its owner only.
    A malformed existing file raises DataError and is left as it is.
    """
    new = list(new)
    with _save_lock, locked(path.parent):
        before = read_corrections(path)
        merged = dict(before)
        for correction in new:
            merged[correction.key] = correction
        _write_atomically(path, merged.values())
    added = sum(1 for key in merged if key not in before)
    changed = sum(1 for key, c in before.items() if merged[key].label != c.label)
    return added, changed


def _write_atomically(path: Path, corrections: Iterable[Correction]) -> None:
    write_json_lines({path: [correction.to_json() for correction in corrections]})


def write_json_lines(files: Mapping[Path, Iterable[Mapping[str, Any]]]) -> None:
    """Replace each file of `files` by its JSON objects, one per line, all or none.

    Every file is first written in full to a temporary file beside it (flushed to disk); only
    then are they renamed over the files, one after the other. When a rename fails, the files
    already replaced get their previous contents back, so an error leaves no file changed and
    no temporary file behind. New files are readable by their owner only.
    """
    temporaries: dict[Path, str] = {}
    try:
        for path, documents in files.items():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            temporaries[path] = temporary
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for document in documents:
                    out.write(json.dumps(document, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
        before = {path: path.read_bytes() if path.exists() else None for path in files}
        replaced: list[Path] = []
        try:
            for path, temporary in temporaries.items():
                os.replace(temporary, path)
                replaced.append(path)
        except BaseException:
            for path in replaced:
                _restore(path, before[path])
            raise
    finally:
        for temporary in temporaries.values():
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _restore(path: Path, content: bytes | None) -> None:
    """Put `content` back in `path` (remove it when it did not exist), best effort."""
    with contextlib.suppress(OSError):
        if content is None:
            path.unlink()
        else:
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(temporary, path)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (POSIX), so two processes do not merge at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the in-process lock only
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
