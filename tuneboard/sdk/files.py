"""Where tuneboard may read and write, and with what permissions. Standard library only.

Containment is decided on real paths (symbolic links followed), so a link inside the project
that leads out of it is refused like ``../`` is. Folders are created by `private_folder`,
which checks the real path again where it creates them: a link planted after the project
file was checked is not followed for writes. Everything tuneboard writes is owner-only
(folders 0700, files 0600); `make_private` fixes the modes of what code tuneboard does not
control (transformers, safetensors, plugins) wrote.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TextIO

from tuneboard.sdk.errors import ConfigError, DataError

# Folders outside the project that a project file may name files to read from
# (os.pathsep-separated). It is the user's environment, not the project file, that says so.
READ_PATHS_ENV = "TUNEBOARD_READ_PATHS"

_FOLDER_MODE = 0o700
_FILE_MODE = 0o600


def real_path(path: Path | str) -> Path:
    """`path` absolute, with every symbolic link of its existing part followed."""
    return Path(os.path.realpath(path))


def is_inside(path: Path | str, root: Path | str) -> bool:
    """True when the real path of `path` lies in the real path of `root` (not `root` itself)."""
    real, top = real_path(path), real_path(root)
    return real != top and real.is_relative_to(top)


def project_path(root: Path, value: str, where: str, key: str) -> Path:
    """`value` (relative to the project folder `root`) as a real path inside `root`.

    Raises `ConfigError` naming `where` and `key` for an absolute path, one that climbs out
    with ``..``, the project folder itself, or one that a symbolic link leads out of it.
    """
    lexical = Path(os.path.normpath(root / value)) if value.strip() else root
    problem = f"{where}: key {key!r} must be a path inside the project folder, got {value!r}"
    if lexical == root or not lexical.is_relative_to(root):
        raise ConfigError(problem)
    if not is_inside(lexical, root):
        raise ConfigError(f"{problem} (a symbolic link leads it to {real_path(lexical)})")
    return real_path(lexical)


def readable_file(root: Path, value: str, where: str, key: str) -> Path:
    """The real path of the file `value` (relative to the project folder `root`) names.

    The file must lie inside the project, or inside a folder listed in the environment
    variable ``TUNEBOARD_READ_PATHS``: `ConfigError` otherwise, `DataError` when it does not
    exist. Both name `where` and `key`.
    """
    path = readable_path(root, value, where, key)
    if not path.is_file():
        raise DataError(f"{where}: key {key!r}: file not found: {value}")
    return path


def readable_path(root: Path, value: str, where: str, key: str) -> Path:
    """Like `readable_file`, for a file that may not exist yet."""
    path = real_path(root / Path(value).expanduser())
    allowed = [root, *_read_paths()]
    if not any(path == real_path(top) or is_inside(path, top) for top in allowed):
        raise ConfigError(
            f"{where}: key {key!r}: {value!r} is outside the project folder "
            f"(list its folder in {READ_PATHS_ENV} to read it)"
        )
    return path


def _read_paths() -> list[Path]:
    entries = os.environ.get(READ_PATHS_ENV, "").split(os.pathsep)
    return [Path(entry).expanduser() for entry in entries if entry.strip()]


def private_folder(folder: Path, root: Path, what: str) -> Path:
    """Create `folder` and its missing parents owner-only (0700); return its real path.

    `folder` must lie inside `root` (or be it) once symbolic links are followed, before and
    after each folder is created; `ConfigError` naming `what` otherwise, with nothing created
    outside `root`.
    """
    top = real_path(root)
    target = _checked(folder, top, what)
    missing: list[Path] = []
    probe = target
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, _FOLDER_MODE)
            os.chmod(path, _FOLDER_MODE)  # mkdir's mode is cut by the umask
        except FileExistsError:
            pass
        _checked(path, top, what)  # a link planted where the folder was to be
    if not target.is_dir():
        raise ConfigError(f"{what}: {folder} is not a folder")
    return _checked(folder, top, what)


def _checked(path: Path, top: Path, what: str) -> Path:
    real = real_path(path)
    if not real.is_relative_to(top):
        raise ConfigError(
            f"{what}: {path} leads outside {top} through a symbolic link; nothing was written"
        )
    return real


def open_private(path: Path, newline: str | None = None) -> TextIO:
    """`path` opened to write UTF-8 text, created owner-only (0600); never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, _FILE_MODE)
    os.fchmod(fd, _FILE_MODE)  # an existing file keeps its mode otherwise
    return os.fdopen(fd, "w", encoding="utf-8", newline=newline)


def make_private(path: Path) -> None:
    """Make `path` owner-only: folders 0700 and files 0600, all the way down.

    Symbolic links are neither followed nor changed; what vanishes meanwhile is skipped.
    """
    if path.is_symlink() or not path.exists():
        return
    _chmod(path, _FOLDER_MODE if path.is_dir() else _FILE_MODE)
    if not path.is_dir():
        return
    for folder, folders, files in os.walk(path):
        for name in folders:
            _chmod(Path(folder, name), _FOLDER_MODE)
        for name in files:
            _chmod(Path(folder, name), _FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    # Opened without following a link, so a link swapped in meanwhile is not changed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
    except OSError:
        pass  # not ours to change: best effort, like the walk itself
    finally:
        os.close(fd)
