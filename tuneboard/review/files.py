"""What reviewing predictions and reviewing generations share: finding a run's files to review,
reading them as text, the review CSV files of `tuneboard review`, and leaving out what was
reviewed already. No Textual, no torch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tuneboard.sdk.errors import DataError, TuneboardError

if TYPE_CHECKING:
    from tuneboard.store import Store


class Keyed(Protocol):
    """Something reviewed, known by its `key` (an example's text, a generation's prompt)."""

    @property
    def key(self) -> Hashable:
        """Its identity in the file the reviews are saved to."""
        ...


KeyedT = TypeVar("KeyedT", bound=Keyed)


def artifact_files(store: Store, run_id: str, kind: str) -> list[Path]:
    """The run's artifact files of `kind` that still exist, newest first."""
    seen: list[Path] = []
    for artifact in reversed(store.artifacts(run_id)):
        path = Path(artifact.path)
        if artifact.kind == kind and path.is_file() and path not in seen:
            seen.append(path)
    return seen


def named_file(
    files: Sequence[Path], run_id: str, name: str, what: str, shown: Callable[[Path], str]
) -> Path:
    """The one of `files` whose name (or path ending) is `name`; else TuneboardError saying the
    run has no `what` file `name` and listing the files (each as `shown` writes it)."""
    for path in files:
        if path.name == name or path.as_posix().endswith("/" + name.lstrip("/")):
            return path
    names = ", ".join(sorted({shown(path) for path in files}))
    raise TuneboardError(f"run {run_id} has no {what} file {name!r}; it has: {names}")


def read_text(path: Path) -> str:
    """The UTF-8 text of `path` (a leading BOM dropped); DataError when it cannot be read."""
    try:
        return path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None


def unseen(items: Iterable[KeyedT], skip: Collection[Hashable]) -> list[KeyedT]:
    """`items` in order, leaving out those whose key is in `skip` and repeats of a key."""
    seen = set(skip)
    fresh: list[KeyedT] = []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            fresh.append(item)
    return fresh


def write_review_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a review file: `header`, then `rows`, as CSV, in one step (a temporary file
    renamed over `path`), readable by its owner only."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def review_csv(path: Path) -> csv.DictReader[str]:
    """A reader of the rows of the review file at `path`; DataError when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None
    return csv.DictReader(io.StringIO(text, newline=""))
