"""The process's one DuckDB connection to a database file, held open only while in use.

DuckDB locks a file per process: while one process has it open read-write, no other process
can open it at all. So the file is opened when the first user needs it and closed when the
last one is done; opening retries with jittered exponential back-off while another process
holds the lock.

"Opening" attaches the file to an in-memory DuckDB instance that the process keeps (one per
file), and "closing" detaches it, which checkpoints and lets go of the lock just as closing a
connection does. A new instance costs 15-30 ms (it builds its catalog of built-in functions)
where attaching costs a few ms, and the writer opens the file twice a second while runs
train (BENCHMARKS.md, section 1).

User SQL never runs there: it gets a connection of its own (`query_cursor`), see
`QUERY_LOCKDOWN`.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import ClassVar

import duckdb

from tuneboard.sdk.errors import TuneboardError
from tuneboard.store.migrations import migrate
from tuneboard.store.privacy import private_files

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = 60.0
# The longest Python's exit waits, over all files, for other threads' uses of them to end.
EXIT_WAIT_SECONDS = 10.0

# External access off: user SQL must not read or write files, attach databases or load
# extensions (nor install or load them on its own). Registered Arrow tables still work.
# Locked so no statement can turn it back on.
CONNECTION_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,
    "lock_configuration": True,
}

# Names DuckDB gives its own catalogs: an attached database may not take one.
RESERVED_ALIASES = frozenset({"main", "memory", "system", "temp"})

# The in-memory instance's configuration; external access is turned off (and the
# configuration locked) once the file's own paths are allowed, see `Database._instance`.
# One thread, so DuckDB starts no worker threads: an idle worker calls glibc's `malloc_trim`,
# which hands back the free heap of every thread in the process, and after each writer batch
# a training thread in this process page-faulted its freed tensor memory back in (~10% slower
# MiniLM training on 2 cores; BENCHMARKS.md, section 1). tuneboard's queries are small: on one
# thread the runs table was faster, a chart series ~10% slower, batch inserts ~20% slower, all
# still well within their targets.
INSTANCE_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    key: value
    for key, value in CONNECTION_CONFIG.items()
    if key not in ("enable_external_access", "lock_configuration")
} | {"threads": 1}

# User SQL runs on a connection of its own: a new in-memory instance with the file attached
# read-only (so no statement can write, whatever the statement check let through), a memory
# bound, and no file system at all. A connection can always read its own database file as
# bytes (`read_blob`, `read_text`): DuckDB adds the files of every attached database to
# `allowed_paths` when external access is turned off. Only disabling the local file system
# stops that, and that also stops spilling to a temporary folder (measured, DuckDB 2.0.1), so
# a user query gets no temporary space: past `query_memory_limit()` it fails "Out of Memory".
# While one instance in a process holds the file read-write, DuckDB refuses to attach it to
# any other, even read-only; so the query waits for the shared instance's current uses to end,
# and writers in this process wait for the query (their rows stay queued). The new instance
# costs ~15-50 ms, once per query.
QUERY_LOCKDOWN = (
    "SET enable_external_access = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)


def query_memory_limit() -> int:
    """Bytes a user query may use: a quarter of the machine's memory, at most 2 GiB."""
    cap = 2 * 1024**3
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return cap
    return max(64 * 1024**2, min(cap, total // 4))


def query_config() -> dict[str, str | bool | int | float | list[str]]:
    """The configuration a user-SQL connection opens with (locked by `QUERY_LOCKDOWN`)."""
    return {
        **CONNECTION_CONFIG,
        # On until tuneboard has attached the files the user asked for (`attach`).
        "enable_external_access": True,
        "lock_configuration": False,
        "memory_limit": f"{query_memory_limit() // 1024**2}MiB",
        "temp_directory": "",  # no spilling: the local file system is off (QUERY_LOCKDOWN)
        "max_temp_directory_size": "0KiB",
        "allow_persistent_secrets": False,
    }


_FIRST_DELAY = 0.002
_MAX_DELAY = 0.1
_PID = re.compile(r"\(PID (\d+)\)")


class UnusableDatabase(TuneboardError):
    """The database file cannot be used, and waiting will not change that: it is damaged,
    or its folder or the file cannot be read or written (permissions, a full disk, an I/O
    error). Unlike a lock held by another process, retrying does not help."""


# The header blocks before a DuckDB file's first data block (`Storage::FILE_HEADER_SIZE * 3`).
_HEADER_BYTES = 3 * 4096


def is_damage(error: BaseException) -> bool:
    """True when a DuckDB error says the file (or the disk under it) is broken, or cannot be
    read or written, rather than that the statement was wrong or the file is locked."""
    if is_lock_error(error):
        return False
    if isinstance(error, duckdb.IOException | duckdb.FatalException | duckdb.PermissionException):
        return True
    return isinstance(error, duckdb.Error) and "corrupt" in str(error).lower()


def is_lock_error(error: BaseException) -> bool:
    """True when `error` is DuckDB saying another process holds the file's lock."""
    if not isinstance(error, duckdb.IOException):
        return False
    message = str(error).lower()
    return "conflicting lock" in message or "could not set lock" in message


class Database:
    """The process's one connection to one DuckDB file, shared by all its threads.

    Get it with `Database.for_path(path)`. `with db.cursor() as cur:` opens the connection
    if needed (read-only unless `write=True` or a writer is waiting), yields a cursor of the
    calling thread's own, and closes the connection when the last user leaves, so other
    processes can open the file. Migrations are applied on the first read-write open.
    `with db.query_cursor() as cur:` is the same for user SQL, on a connection of its own.
    """

    _registry: ClassVar[dict[Path, Database]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()
    _abandoned: ClassVar[list[dict[Path, Database]]] = []  # registries inherited through fork

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opens = 0
        # (size, mtime) of the file when this process last found it whole or let go of it:
        # it is checked again when another process changed it meanwhile.
        self._seen: tuple[int, int] | None = None
        self._cond = threading.Condition()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._writable = False
        self._users = 0
        self._writers_waiting = 0
        self._held = threading.local()  # .depth: this thread's uses in progress
        self._opening = False
        self._migrated = False
        self._attached: dict[str, Path] = {}  # other files attached to the open connection
        self._queries_waiting = 0
        self._root: duckdb.DuckDBPyConnection | None = None  # the in-memory instance
        # True while `_conn` is a user-SQL connection of its own (`query_cursor`), not `_root`.
        self._direct = False
        stem = path.stem
        # The catalog name a plain connection to the file would have.
        self._catalog = "tuneboard" if stem.lower() in RESERVED_ALIASES else stem

    @classmethod
    def for_path(cls, path: Path | str) -> Database:
        """The process's `Database` for `path` (one per resolved path)."""
        resolved = Path(path).expanduser().resolve()
        with cls._registry_lock:
            db = cls._registry.get(resolved)
            if db is None:
                db = cls._registry[resolved] = cls(resolved)
            return db

    @classmethod
    def _forget_all(cls) -> None:
        # After fork the child must not reuse the parent's connections or their locks, nor
        # free them: their DuckDB threads did not survive the fork, and freeing an instance
        # joins its threads (a crash). They are kept, unused, until the child exits or execs.
        cls._abandoned.append(cls._registry)
        cls._registry = {}
        cls._registry_lock = threading.Lock()

    @classmethod
    def _close_instances(cls) -> None:
        # At exit, close the idle instances this process made (not those inherited through
        # fork), rather than leave them to the interpreter's teardown. Other threads' uses
        # end first: a daemon thread that comes back from DuckDB while Python finalizes is
        # unwound through DuckDB's C++ frames, and that aborts the process (SIGABRT).
        # (A thread's very last moment, freeing its cursor objects after its use, is not
        # covered: threads that end with the process are joined by whoever started them.)
        deadline = time.monotonic() + EXIT_WAIT_SECONDS
        for db in list(cls._registry.values()):
            with db._cond:
                mine = getattr(db._held, "depth", 0)  # uses this thread never ended
                while (db._users > mine or db._opening) and (
                    left := deadline - time.monotonic()
                ) > 0:
                    db._cond.wait(left)
                if db._users == 0:
                    db._drop_instance()

    @property
    def is_open(self) -> bool:
        """True while a connection to the file is open in this process."""
        return self._conn is not None

    @contextmanager
    def cursor(
        self, *, write: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor on the file, opening the connection first if needed.

        Raises `TuneboardError` if the file stays locked by another process (or busy in this
        one, for a read-write use) for `lock_timeout` seconds.
        """
        with (
            private_files() if write else nullcontext(),
            self._lent(self._acquire(write, lock_timeout, {}, query=False)) as cur,
        ):
            yield cur

    @contextmanager
    def query_cursor(
        self,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        attach: Mapping[str, Path] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor for user SQL: on a read-only connection of its own (`QUERY_LOCKDOWN`).

        `attach` maps aliases to other DuckDB files that the cursor must see read-only (as
        `alias.table`); they are attached while the connection opens, before its file system
        is turned off. The connection of the process's other uses is let go of first (this
        thread must hold none). Raises `TuneboardError` if the file stays locked by another
        process (or busy in this one) for `lock_timeout` seconds, or if a file to attach is
        missing or not a DuckDB database.
        """
        wanted = {alias: Path(path) for alias, path in (attach or {}).items()}
        if wanted:
            self._check_attach(wanted)
        with self._lent(self._acquire(False, lock_timeout, wanted, query=True)) as cur:
            yield cur

    @contextmanager
    def _lent(self, cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield an acquired cursor; close it and let go of the connection afterwards."""
        try:
            yield cur
        finally:
            try:
                cur.close()
            finally:
                self._release()

    def _acquire(
        self, write: bool, lock_timeout: float, attach: dict[str, Path], *, query: bool
    ) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + lock_timeout
        with self._cond:
            if write:
                self._writers_waiting += 1
            if query:
                self._queries_waiting += 1
            try:
                while True:
                    conn = self._conn
                    nested = getattr(self._held, "depth", 0) > 0
                    if nested and write and conn is not None and not self._writable:
                        raise RuntimeError("cannot write while this thread holds a read-only use")
                    # Tuneboard's own reads may share a user-SQL connection; not the reverse.
                    fits = not query or (self._direct and attach.items() <= self._attached.items())
                    if nested and conn is not None and not fits:
                        raise RuntimeError("cannot run user SQL while this thread holds a use")
                    # Readers yield to a waiting writer (or query) so it is not starved by
                    # a stream of overlapping read-only uses; not a thread already holding a
                    # use, though, or it would wait for a writer that waits for it.
                    waiting = self._writers_waiting or self._queries_waiting
                    if (
                        conn is not None
                        and fits
                        and (self._writable or (not write and (nested or not waiting)))
                    ):
                        return self._use(conn)
                    if conn is None and not self._opening:
                        # The opener always uses what it opened: left unused, a read-only
                        # connection would keep a waiting writer out forever.
                        writable = not query and (write or self._writers_waiting > 0)
                        opened = self._open_unlocked(
                            writable, deadline, lock_timeout, attach, query=query
                        )
                        return self._use(opened)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TuneboardError(
                            f"{self.path} stayed busy in this process for {lock_timeout:g} s"
                        )
                    self._cond.wait(remaining)
            finally:
                if write:
                    self._writers_waiting -= 1
                if query:
                    self._queries_waiting -= 1

    def _use(self, conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """A new cursor on the open connection, counted as one more user (lock held)."""
        self._users += 1
        try:
            cur = conn.cursor()
            try:
                cur.execute(f"USE {_quoted_name(self._catalog)}")
            except BaseException:
                cur.close()
                raise
        except BaseException:
            self._users -= 1
            if self._users == 0:
                self._close_locked()
            raise
        self._held.depth = getattr(self._held, "depth", 0) + 1
        return cur

    def _open_unlocked(
        self,
        writable: bool,
        deadline: float,
        lock_timeout: float,
        attach: dict[str, Path],
        *,
        query: bool,
    ) -> duckdb.DuckDBPyConnection:
        """Open the connection, releasing the condition's lock meanwhile (held on entry)."""
        self._opening = True
        self._cond.release()
        try:
            if query:
                conn = self._connect_query(deadline, lock_timeout, attach)
            else:
                conn = self._connect(writable, deadline, lock_timeout)
        finally:
            self._cond.acquire()
            self._opening = False
            self._cond.notify_all()
        self._conn, self._writable, self._attached = conn, writable, dict(attach)
        self._direct = query
        return conn

    def _release(self) -> None:
        with self._cond:
            self._held.depth -= 1
            self._users -= 1
            if self._users == 0:
                self._close_locked()

    def _close_locked(self) -> None:
        conn, self._conn = self._conn, None
        self._attached = {}
        if conn is not None:
            try:
                if self._direct:
                    conn.close()
                else:
                    self._detach(conn)
                    self._seen = _signature(self.path)
            finally:
                self._cond.notify_all()

    def _detach(self, root: duckdb.DuckDBPyConnection) -> None:
        """Detach the file from the instance (checkpointing it and releasing its lock)."""
        try:
            root.execute(f"DETACH {_quoted_name(self._catalog)}")
        except BaseException:
            # A failed checkpoint leaves the instance in doubt: the next open makes a new one.
            self._drop_instance()
            raise

    def _drop_instance(self) -> None:
        root, self._root = self._root, None
        if root is not None:
            with suppress(duckdb.Error):
                root.close()

    def _instance(self) -> duckdb.DuckDBPyConnection:
        """The in-memory instance the file is attached to, made on first use.

        Configured as a connection to the file made with `CONNECTION_CONFIG`, except that the
        file's own paths (with its write-ahead log's) stay allowed with external access off.
        """
        if self._root is None:
            root = duckdb.connect(":memory:", config=INSTANCE_CONFIG)
            try:
                path = str(self.path)
                allowed = [path, f"{path}.wal", f"{path}.wal.checkpoint"]
                root.execute("SET allowed_paths = ?", [allowed])
                root.execute("SET temp_directory = ?", [f"{path}.tmp"])
                root.execute("SET enable_external_access = false")
                root.execute("SET lock_configuration = true")
            except BaseException:
                root.close()
                raise
            self._root = root
        return self._root

    def _connect(
        self, writable: bool, deadline: float, lock_timeout: float
    ) -> duckdb.DuckDBPyConnection:
        """Open the file: attach it to the process's instance."""
        self._prepare_path(writable)
        created = not self.path.exists()
        root = self._instance()
        if created:  # writable: `_prepare_path` refuses a missing file for reading
            self._create_whole()
        if not created and self._needs_check(writable):
            self._check_whole(root, writable, deadline, lock_timeout)
        mode = "" if writable else " (READ_ONLY)"
        statement = f"ATTACH {_quoted_path(self.path)} AS {_quoted_name(self._catalog)}{mode}"
        self._retry_locked(lambda: root.execute(statement), writable, deadline, lock_timeout)
        self.opens += 1
        try:
            if created:
                os.chmod(self.path, 0o600)
            if writable and not self._migrated:
                cur = root.cursor()
                try:
                    cur.execute(f"USE {_quoted_name(self._catalog)}")
                    with private_files():
                        migrate(cur)
                finally:
                    cur.close()
                self._migrated = True
        except BaseException:
            self._detach(root)
            raise
        return root

    def _create_whole(self) -> None:
        """Create the (empty) database file so that no other process ever sees it half
        written: it is made under a temporary name beside it, then linked into place, unless
        another process put one there first. (Two processes creating the file at once: the
        second one read the first one's file before its header was written.)"""
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.new")
        try:
            # An instance of its own: the process's one may touch no other file.
            with private_files():
                duckdb.connect(str(temp)).close()
            try:
                os.link(temp, self.path)
            except FileExistsError:
                pass  # another process made it first: it is whole too
            except OSError:  # a file system without hard links: a rename, nearly as safe
                if not self.path.exists():
                    os.replace(temp, self.path)
        except duckdb.Error as error:
            raise UnusableDatabase(f"cannot create {self.path}: {first_line(error)}") from None
        except OSError as error:
            raise UnusableDatabase(f"cannot create {self.path}: {os_reason(error)}") from None
        finally:
            temp.unlink(missing_ok=True)
            _wal_path(temp).unlink(missing_ok=True)

    def _needs_check(self, writable: bool) -> bool:
        """Whether to check the file before opening it: on this process's first open, when a
        write-ahead log is left beside it, and before writing to it once another process
        changed it (reading a damaged file changes nothing, and fails with its own error)."""
        if self._seen is None or _nonempty(_wal_path(self.path)):
            return True
        return writable and _signature(self.path) != self._seen

    def _check_whole(
        self, root: duckdb.DuckDBPyConnection, writable: bool, deadline: float, lock_timeout: float
    ) -> None:
        """Refuse a truncated file before anything opens it read-write, and set aside a
        write-ahead log DuckDB cannot replay before a write would replace it.

        The file is attached read-only meanwhile, which changes nothing in it. A write to a
        truncated file can commit, and the checkpoint that follows rewrites it (measured);
        DuckDB only notices the missing bytes when it reads them.
        """
        statement = f"ATTACH {_quoted_path(self.path)} AS {_quoted_name(self._catalog)} (READ_ONLY)"
        self._retry_locked(lambda: root.execute(statement), False, deadline, lock_timeout)
        try:
            wal_size = self._check_size(root)
            wal = _wal_path(self.path)
            if writable and _nonempty(wal) and str(wal_size).startswith("0 "):
                _set_aside(wal)
        except duckdb.Error as error:
            raise UnusableDatabase(f"cannot read {self.path}: {first_line(error)}") from None
        except OSError as error:
            raise UnusableDatabase(f"cannot read {self.path}: {os_reason(error)}") from None
        finally:
            root.execute(f"DETACH {_quoted_name(self._catalog)}")
        self._seen = _signature(self.path)

    def _check_size(self, conn: duckdb.DuckDBPyConnection) -> str:
        """Refuse the file (attached to `conn`) when it is cut short: it ends inside a block,
        or holds fewer blocks than are in use. Returns the size of the write-ahead log DuckDB
        replayed ("0 bytes": none).

        Not `total_blocks`: DuckDB drops free blocks at the end of the file after writing the
        header that still counts them (measured), and a replayed log adds blocks in memory.
        """
        used_blocks, block_size, wal_size = conn.execute(
            "SELECT used_blocks, block_size, wal_size FROM pragma_database_size()"
            " WHERE database_name = ?",
            [self._catalog],
        ).fetchone() or (0, 0, "")
        size = self.path.stat().st_size
        blocks, rest = divmod(size - _HEADER_BYTES, int(block_size) or 1)
        replayed = not str(wal_size).startswith("0 ")
        if size < _HEADER_BYTES or rest or (blocks < int(used_blocks) and not replayed):
            raise UnusableDatabase(
                f"{self.path} is damaged: it is cut short ({size} bytes, not whole blocks"
                " or fewer than it uses); restore it from a copy"
            )
        return str(wal_size)

    def _prepare_path(self, writable: bool) -> None:
        """Refuse a missing file for reading; make its folder for writing."""
        path = self.path
        if writable and path.parent.is_dir() and not os.access(path.parent, os.W_OK | os.X_OK):
            # DuckDB writes its log beside the file: every write would fail.
            raise UnusableDatabase(f"cannot write to {path}: {path.parent} is not writable")
        if not path.exists():
            if not writable:
                raise TuneboardError(f"there is no tuneboard database at {path}")
            if not path.parent.exists():
                try:
                    with private_files():
                        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as error:
                    raise UnusableDatabase(
                        f"cannot create {path.parent} for the database: {os_reason(error)}"
                    ) from None

    def _retry_locked(
        self, open_file: Callable[[], object], writable: bool, deadline: float, lock_timeout: float
    ) -> None:
        """Call `open_file` until no other process holds the file's lock (or time is up)."""

        def attempt() -> None:
            with private_files() if writable else nullcontext():
                open_file()

        def failed(error: duckdb.Error) -> TuneboardError:
            return UnusableDatabase(f"cannot open {self.path}: {first_line(error)}")

        retry_while_locked(attempt, self.path, deadline, lock_timeout, failed)

    def _connect_query(
        self, deadline: float, lock_timeout: float, attach: dict[str, Path]
    ) -> duckdb.DuckDBPyConnection:
        """A read-only connection of its own for user SQL, `attach` files attached read-only."""
        self._prepare_path(False)
        # The instance is made once and the file attached to it, so that each try while another
        # process holds the file costs an ATTACH, not a new instance (under two writing
        # processes, connecting to the file instead made a query ~7x slower).
        conn = duckdb.connect(":memory:", config=query_config())
        try:
            statement = f"ATTACH {_quoted_path(self.path)} AS {_quoted_name(self._catalog)}"
            self._retry_locked(
                lambda: conn.execute(f"{statement} (READ_ONLY)"), False, deadline, lock_timeout
            )
            self.opens += 1
            self._check_size(conn)
            for alias, other in attach.items():
                _attach(conn, alias, other, deadline, lock_timeout)
            for setting in QUERY_LOCKDOWN:
                conn.execute(setting)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_attach(self, attach: Mapping[str, Path]) -> None:
        """Refuse, naming the file, what cannot be attached, before anything is opened."""
        main = {self.path.stem.lower(), self._catalog.lower()}
        for alias, path in attach.items():
            if not _ALIAS.fullmatch(alias) or alias.lower() in RESERVED_ALIASES:
                raise TuneboardError(
                    f"cannot attach {path} as {alias!r}: an alias is a plain name "
                    f"(letters, digits, _) other than {', '.join(sorted(RESERVED_ALIASES))}"
                )
            if alias.lower() in main:
                raise TuneboardError(
                    f"cannot attach {path} as {alias!r}: that is the name of this database"
                    " (pick another alias)"
                )
            if not path.is_file():
                what = "is a folder, not a DuckDB file" if path.is_dir() else "no such file"
                raise TuneboardError(f"cannot attach {path}: {what}")
            if path.resolve() == self.path:
                raise TuneboardError(f"cannot attach {path}: it is this database itself")


_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lock_timeout_error(path: Path, error: BaseException, lock_timeout: float) -> TuneboardError:
    """The error for a file that another process kept locked for `lock_timeout` seconds."""
    match = _PID.search(str(error))
    holder = f" (PID {match.group(1)})" if match else ""
    return TuneboardError(
        f"{path} is locked by another process{holder}; gave up after waiting {lock_timeout:g} s"
    )


def retry_while_locked(
    attempt: Callable[[], object],
    path: Path,
    deadline: float,
    lock_timeout: float,
    failed: Callable[[duckdb.Error], TuneboardError],
) -> None:
    """Call `attempt` until no other process holds `path`'s lock, backing off (up to `deadline`).

    Any other DuckDB error becomes `failed(error)`.
    """
    delay = _FIRST_DELAY
    while True:
        try:
            attempt()
            return
        except duckdb.Error as error:
            if not is_lock_error(error):
                raise failed(error) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise lock_timeout_error(path, error, lock_timeout) from None
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, _MAX_DELAY)


def _attach(
    conn: duckdb.DuckDBPyConnection, alias: str, path: Path, deadline: float, lock_timeout: float
) -> None:
    """Attach `path` read-only as `alias`, waiting with back-off while another process has it."""
    statement = f"ATTACH {_quoted_path(path.resolve())} AS {_quoted_name(alias)} (READ_ONLY)"

    def failed(error: duckdb.Error) -> TuneboardError:
        message = first_line(error)
        if "not a valid DuckDB database" in message:
            message = "not a DuckDB database file"
        return TuneboardError(f"cannot attach {path}: {message}")

    retry_while_locked(lambda: conn.execute(statement), path, deadline, lock_timeout, failed)


def _quoted_path(path: Path) -> str:
    """`path` as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _quoted_name(name: str) -> str:
    """`name` as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _set_aside(wal: Path) -> None:
    """Keep a write-ahead log DuckDB skips (it cannot read it from its start) under another
    name: the next write would replace it. Its bytes stay for whoever wants to look."""
    kept = wal.with_name(f"{wal.name}.unreadable")
    number = 1
    while kept.exists():
        number += 1
        kept = wal.with_name(f"{wal.name}.unreadable-{number}")
    with suppress(FileNotFoundError):  # another process set it aside first
        wal.rename(kept)
        logger.warning("DuckDB cannot replay %s; kept it as %s and went on without it", wal, kept)


def os_reason(error: OSError) -> str:
    """An OSError's reason without its repeated file name ("Permission denied")."""
    return error.strerror or first_line(error)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (DuckDB's often go on with context)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


atexit.register(Database._close_instances)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Database._forget_all)
