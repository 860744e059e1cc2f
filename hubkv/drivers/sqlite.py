"""fs-lite: the default driver, one local SQLite file.

Why it is safe with many threads and many processes at once:

- WAL journal: readers never block the writer and the writer never blocks
  readers; ``synchronous=NORMAL`` makes every commit survive a killed process
  (only a power loss can drop the last commits, as with any WAL database).
- Autocommit (``isolation_level=None``): each single-statement write is its
  own transaction, committed before ``set`` returns. Multi-statement writes
  use ``BEGIN IMMEDIATE``, which takes the write lock up front so the busy
  timeout applies (a deferred transaction that upgrades to a write can fail
  at once with "database is locked" instead of waiting).
- One connection per thread, since a sqlite3 connection must not be shared
  by threads that use it at the same time.
- Fork safety: a connection must not cross ``fork()``. A child process drops
  (without closing: closing would touch the parent's locks and WAL) the
  connections it inherited and opens its own on first use.

Prefix listing and clearing are index range scans on the primary key
(``key >= prefix AND key < successor(prefix)``), never ``LIKE`` or a full
scan, so their cost depends on the keys returned, not on the store's size.
Expired rows are hidden by every query at once and deleted in bounded
batches on writes.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import warnings
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..errors import ConfigError, DriverError
from .base import Driver, seconds_left

__all__ = ["SQLiteDriver", "SCHEMA_VERSION", "APPLICATION_ID"]

DEFAULT_PATH = ".data/kv.sqlite3"
#: ``PRAGMA application_id`` of hubkv files ("hubv"), so foreign SQLite files are refused.
APPLICATION_ID = 0x68756276
#: ``PRAGMA user_version`` this code writes; newer files are refused, older migrated.
SCHEMA_VERSION = 1
# Expired rows deleted per purge, and writes between purges.
_PURGE_BATCH = 500
_WRITES_PER_PURGE = 1000
# Rows per statement for IN (...) lists and per page when streaming keys.
_CHUNK = 500
# WAL pages between automatic checkpoints (see _open).
_WAL_CHECKPOINT_PAGES = 4000
# Longest busy timeout, in seconds: SQLite's is an int of milliseconds.
_MAX_TIMEOUT = (2**31 - 1) / 1000

_LIVE = "(expires_at IS NULL OR expires_at > ?)"
# get and has check the expiry in Python: most keys have none, and then the
# clock is not even read (cheaper than binding it into the SQL).
_GET = "SELECT value, expires_at FROM kv WHERE key = ?"
_HAS = "SELECT expires_at FROM kv WHERE key = ?"
_TTL = f"SELECT expires_at FROM kv WHERE key = ? AND {_LIVE}"
# An upsert rather than INSERT OR REPLACE: replacing deletes the old row first,
# which the partial expiry index makes slower (~3% of an overwrite).
_SET = (
    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key)"
    " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
# Without a TTL the NULL is in the SQL, so SQLite knows when preparing it that
# the partial expiry index is never touched: ~1 us less per row than binding NULL.
_SET_PERMANENT = (
    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, NULL) ON CONFLICT (key)"
    " DO UPDATE SET value = excluded.value, expires_at = NULL"
)
_DELETE = "DELETE FROM kv WHERE key = ?"
_PURGE = (
    "DELETE FROM kv WHERE key IN "
    "(SELECT key FROM kv WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
)
_MIGRATIONS = {
    # version reached: statements that take the previous version there
    1: (
        "CREATE TABLE kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at REAL)"
        " WITHOUT ROWID",
        # Only keys with a TTL are indexed: permanent keys cost no index space.
        "CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL",
    ),
}


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base class can't)."""


class _PerThread(threading.local):
    """A driver's per-thread state: ``conn`` is ``None`` until the thread connects."""

    conn: _Connection | None = None


# Connections inherited through fork(), kept referenced in the child so they are
# never closed there (see the module docstring).
_inherited: list[_Connection] = []
_drivers: weakref.WeakSet[SQLiteDriver] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for driver in list(_drivers):
        driver._abandon_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteDriver(Driver):
    """fs-lite: keys and values in one SQLite file, safe across threads and processes.

    Options:

    - ``path``: the file, created with its folders on first use, readable by
      its owner only (default ``.data/kv.sqlite3`` under the current directory);
    - ``timeout``: seconds to wait for another writer's lock before failing
      (default 30);
    - ``synchronous``: ``"normal"`` (default; commits survive a killed process)
      or ``"full"`` (commits also survive a power loss, at a cost per write);
    - ``read_only``: open the file read-only and never create, migrate or
      write it (the store's ``read_only=True`` sets it); a missing file is
      then an error rather than a new store.

    >>> import tempfile, os
    >>> driver = SQLiteDriver(path=os.path.join(tempfile.mkdtemp(), "kv.sqlite3"))
    >>> driver.set("greeting", b'"hello"', None)
    >>> driver.get("greeting")
    b'"hello"'
    """

    name = "fs-lite"

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        timeout: float = 30.0,
        synchronous: str = "normal",
        read_only: bool = False,
    ) -> None:
        if synchronous not in ("normal", "full"):
            raise ConfigError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        self.path = Path(path).expanduser().absolute()
        text = str(self.path)
        if "\x00" in text or not _encodable(text):
            raise ConfigError(
                f"path must be a file name the system can open (no NUL character or lone "
                f"surrogate), got {text!r}"
            )
        # SQLite takes the busy timeout in int milliseconds: a larger one wraps
        # around to no wait at all, and NaN is no number of seconds.
        if not 0 <= timeout <= _MAX_TIMEOUT:
            raise ConfigError(
                f"timeout must be 0 to {_MAX_TIMEOUT:,.0f} seconds (the wait for another "
                f"writer's lock), got {timeout!r}"
            )
        self.timeout = float(timeout)
        self.synchronous = synchronous
        self.read_only = read_only
        self._local = _PerThread()
        # Each thread's latest connection, kept across close() (which replaces
        # _local) so that the thread itself closes it when it next connects.
        self._owned = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._schema_checked = False
        self._writes = 0
        _drivers.add(self)

    # -- connections -----------------------------------------------------

    def _conn(self) -> _Connection:
        return self._local.conn or self._connect()

    def _connect(self) -> _Connection:
        try:
            ready = self._open_read_only() if self.read_only else None
            if ready is None and not self._schema_checked:
                ready = self._open_if_ready()
                if ready is None:
                    self._prepare_file()
            conn = ready or self._open()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        stale = getattr(self._owned, "conn", None)
        if stale is not None:  # dropped by close(); idle, since this thread is here
            stale.close()
        self._local.conn = self._owned.conn = conn
        with self._lock:
            self._connections.add(conn)
        return conn

    def _open(self, mode: str = "rwc") -> _Connection:
        conn = sqlite3.connect(
            f"file:{urllib.parse.quote(str(self.path))}?mode={mode}",
            uri=True,
            timeout=self.timeout,
            isolation_level=None,  # autocommit; explicit BEGIN IMMEDIATE where needed
            check_same_thread=False,  # close() may run on another thread
            factory=_Connection,
            cached_statements=64,
        )
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        # Checkpoint the WAL every 4,000 pages (~16 MB) rather than SQLite's 1,000: each
        # checkpoint syncs the database file, and fewer, larger ones cost writers less
        # (a few % per set alone, more with several writer processes). The WAL is
        # removed when the last connection closes.
        conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
        return conn

    def _open_if_ready(self) -> _Connection | None:
        """A connection, when the file already is a hubkv store of this schema.

        The usual case: an existing store needs neither the lock nor a second
        connection (a cold open costs about half). Anything else (no file yet,
        an older schema, not a store) is left to :meth:`_prepare_file`.
        """
        if not os.path.isfile(self.path):  # (False on any error: the slow path reports it)
            return None
        try:
            conn = self._open()
        except sqlite3.Error:
            return None  # the slow path says what is wrong
        try:
            ready = _schema(conn) == (APPLICATION_ID, SCHEMA_VERSION)
        except sqlite3.Error:
            ready = False
        if not ready:
            conn.close()
            return None
        _warn_if_world_writable(self.path)  # as _prepare_file does
        self._schema_checked = True
        return conn

    def _open_read_only(self) -> _Connection:
        """A read-only connection to an existing store of this schema (else an error)."""
        if not os.path.isfile(self.path):
            raise DriverError(
                f"fs-lite store {self.path}: no such file, and a read-only store never creates "
                "one; fix the path, or write to it once without read_only=True"
            )
        conn = self._open("ro")
        try:
            app_id, version = _schema(conn)
            if app_id != APPLICATION_ID:
                raise self._not_a_store()
            if version != SCHEMA_VERSION:
                raise self._newer_schema(version) if version > SCHEMA_VERSION else DriverError(
                    f"fs-lite store {self.path}: written by an older hubkv (schema {version}); "
                    "open it once without read_only=True to migrate it"
                )
        except BaseException:
            conn.close()
            raise
        if not self._schema_checked:
            _warn_if_world_writable(self.path)
            self._schema_checked = True
        return conn

    def _prepare_file(self) -> None:
        """Create or migrate the file once per driver, under a cross-process file lock."""
        lock = FileLock(str(self.path) + ".lock", timeout=self.timeout, mode=0o600)
        try:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _warn_if_world_writable(self.path)
            with lock:
                self._create_private_file()
                conn = self._open()
                try:
                    self._migrate(conn)
                finally:
                    conn.close()
        except Timeout:
            raise DriverError(
                f"fs-lite store {self.path}: another process held {lock.lock_file} for over "
                f"{self.timeout:g}s while preparing the file; try again, or remove a stale lock file"
            ) from None
        except OSError as exc:
            raise DriverError(
                f"fs-lite store {self.path}: can't create or open it: {exc.strerror or exc}; "
                "check the path and its permissions, or set HUBKV_PATH"
            ) from None
        self._schema_checked = True

    def _create_private_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.close(fd)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        app_id, version = _schema(conn)
        if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
            return
        if app_id != APPLICATION_ID:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != 0 or tables or version != 0:  # only a new, empty file is taken
                raise self._not_a_store()
        elif version > SCHEMA_VERSION:
            raise self._newer_schema(version)
        conn.execute("PRAGMA journal_mode=WAL")  # persistent: set once, in the file
        conn.execute("BEGIN IMMEDIATE")
        try:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _not_a_store(self) -> DriverError:
        return DriverError(
            f"fs-lite store {self.path}: this SQLite file is not a hubkv store; "
            "point path at a new file (it is left untouched)"
        )

    def _newer_schema(self, version: int) -> DriverError:
        return DriverError(
            f"fs-lite store {self.path}: written by a newer hubkv (schema {version}, this "
            f"hubkv knows {SCHEMA_VERSION}); upgrade hubkv - the file is left untouched"
        )

    def _abandon_connections(self) -> None:
        """In a forked child: forget the parent's connections without closing them."""
        _inherited.extend(self._connections)
        self._connections = weakref.WeakSet()
        self._local = _PerThread()
        self._owned = threading.local()
        self._lock = threading.Lock()

    def close(self) -> None:
        # Closing a connection while another thread runs a query on it crashes
        # the interpreter, so only this thread's connection is closed here.
        # The others are dropped: a fresh threading.local makes every thread
        # connect anew on next use, closing its old connection first; a thread
        # that never comes back leaves its connection to the garbage collector.
        with self._lock:
            self._connections = weakref.WeakSet()
            self._local = _PerThread()
        own = getattr(self._owned, "conn", None)
        if own is not None:
            self._owned.conn = None
            own.close()

    def describe(self) -> str:
        return str(self.path)

    def _error(self, exc: sqlite3.Error) -> DriverError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            advice = "the file is not a hubkv store or is corrupt; restore it from a backup"
        elif "locked" in text or "busy" in text:
            advice = (
                f"another process held the write lock for over {self.timeout:g}s; "
                "raise timeout= or find the long transaction"
            )
        elif "readonly" in text or "read-only" in text:
            advice = "the file or its folder is read-only; fix the permissions or open with read_only=True"
        elif "disk is full" in text or "full" in text:
            advice = "the disk is full; free space and retry (nothing was written)"
        elif "unable to open" in text:
            advice = "check that the folder exists and is writable"
        else:
            advice = "see the SQLite message"
        return DriverError(f"fs-lite store {self.path}: {text}: {advice}")

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        # get and has inline _conn(): one call less on the hottest paths.
        try:
            row = (self._local.conn or self._connect()).execute(_GET, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return row[0]  # type: ignore[no-any-return]

    def has(self, key: str) -> bool:
        try:
            row = (self._local.conn or self._connect()).execute(_HAS, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return row is not None and (row[0] is None or row[0] > time.time())

    def ttl(self, key: str) -> float | None:
        now = time.time()
        try:
            row = self._conn().execute(_TTL, (key, now)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if row is None:
            raise KeyError(key)
        return seconds_left(row[0], now)

    def ttl_many(self, keys: Sequence[str]) -> dict[str, float | None]:
        rows, now = self._live_rows(keys, "key, expires_at")
        return {key: seconds_left(expires_at, now) for key, expires_at in rows}

    def keys(self, prefix: str) -> list[str]:
        where, params = _prefix_range(prefix)
        sql = _KEYS[where]  # built once: no new string to hash for the statement cache
        try:
            rows = self._conn().execute(sql, (*params, time.time())).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return [row[0] for row in rows]

    def iter_keys(self, prefix: str) -> Iterator[str]:
        for rows, _ in self._pages(prefix, "key"):
            for (key,) in rows:
                yield key

    def iter_ttls(self, prefix: str) -> Iterator[tuple[str, float | None]]:
        # The expiry comes with the key, in the same page: one query per 500 keys.
        for rows, now in self._pages(prefix, "key, expires_at"):
            for key, expires_at in rows:
                yield key, seconds_left(expires_at, now)

    def _pages(self, prefix: str, columns: str) -> Iterator[tuple[list[Any], float]]:
        """Pages of ``columns`` (``key`` first) of the live keys under ``prefix``, in key
        order, each with the time of its query.

        Each query resumes after the last key seen: no long-lived read
        transaction, bounded memory.
        """
        where, params = _prefix_range(prefix)
        sql = (
            f"SELECT {columns} FROM kv WHERE {where} AND key > ? AND {_LIVE} "
            f"ORDER BY key LIMIT {_CHUNK}"
        )
        after = ""
        while True:
            now = time.time()
            try:
                rows = self._conn().execute(sql, (*params, after, now)).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            yield rows, now
            if len(rows) < _CHUNK:
                return
            after = rows[-1][0]

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        rows, _ = self._live_rows(keys, "key, value")
        return dict(rows)

    def _live_rows(self, keys: Sequence[str], columns: str) -> tuple[list[Any], float]:
        """Rows of ``columns`` of the live keys among ``keys`` (``IN`` lists of at most
        ``_CHUNK`` keys), and the time the expiries were checked against."""
        rows: list[Any] = []
        now = time.time()
        try:
            conn = self._conn()
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {columns} FROM kv WHERE key IN ({marks}) AND {_LIVE}"
                rows += conn.execute(sql, (*chunk, now)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return rows, now

    # -- writes ----------------------------------------------------------

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        try:
            if ttl is None:
                self._conn().execute(_SET_PERMANENT, (key, value))
            else:
                self._conn().execute(_SET, (key, value, time.time() + ttl))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        self._count_write()

    def delete(self, key: str) -> None:
        try:
            self._conn().execute(_DELETE, (key,))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        if ttl is None:
            self._transaction(_SET_PERMANENT, items)
        else:
            expires_at = time.time() + ttl
            self._transaction(_SET, [(key, value, expires_at) for key, value in items])
        self._count_write(len(items))

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        # One transaction; permanent keys through the statement with NULL in its SQL.
        now = time.time()
        permanent = [(key, value) for key, value, ttl in items if ttl is None]
        expiring = [(key, value, now + ttl) for key, value, ttl in items if ttl is not None]
        self._transaction(_SET_PERMANENT, permanent, (_SET, expiring))
        self._count_write(len(items))

    def delete_many(self, keys: Iterable[str]) -> None:
        self._transaction(_DELETE, [(key,) for key in keys])

    def clear(self, prefix: str) -> int:
        where, params = _prefix_range(prefix)
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # The live rows go first (their count is the answer), then the
                # expired ones, which the range then holds alone: one pass over
                # the range, where counting first and deleting took two.
                live = conn.execute(
                    f"DELETE FROM kv WHERE {where} AND {_LIVE}", (*params, time.time())
                ).rowcount
                conn.execute(f"DELETE FROM kv WHERE {where}", params)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return int(live)

    def _transaction(
        self,
        sql: str,
        rows: Iterable[Sequence[Any]],
        *more: tuple[str, Iterable[Sequence[Any]]],
    ) -> None:
        """``executemany`` of each statement with its rows, in one write transaction."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement, parameters in ((sql, rows), *more):
                    conn.executemany(statement, parameters)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _count_write(self, count: int = 1) -> None:
        self._writes += count
        if self._writes >= _WRITES_PER_PURGE:
            # Each written row may expire later: purging up to as many rows as
            # were written keeps pace with any TTL workload, in short batches
            # (each its own transaction) so no writer waits long for the lock.
            budget, self._writes = self._writes, 0
            while budget > 0:
                batch = min(budget, _PURGE_BATCH)
                if self.purge_expired(batch) < batch:
                    break
                budget -= batch

    def purge_expired(self, limit: int = _PURGE_BATCH) -> int:
        """Delete up to ``limit`` expired rows (they are already invisible); return how many."""
        try:
            cursor = self._conn().execute(_PURGE, (time.time(), limit))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return cursor.rowcount


def _schema(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(application_id, user_version)`` of the file: whose it is, and which schema."""
    app_id, version = conn.execute(
        "SELECT * FROM pragma_application_id, pragma_user_version"
    ).fetchone()
    return int(app_id), int(version)


def _encodable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeError:
        return False
    return True


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, unless SQLite already did: it does on a
    full disk, and a second ROLLBACK would hide that error behind "cannot
    rollback - no transaction is active"."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _warn_if_world_writable(path: Path) -> None:
    """Warn when ``path`` or its folder can be written by every user of the machine."""
    for item in (path.parent, path):
        try:
            mode = item.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IWOTH:
            warnings.warn(
                f"fs-lite store {path}: {item} is writable by every user (mode "
                f"{stat.S_IMODE(mode):o}), who could then replace or read the store's files; "
                "keep the store in a folder only its owner can write (hubkv creates them so)",
                UserWarning,
                stacklevel=2,
            )
            return


def _prefix_range(prefix: str) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause (and its parameters) matching keys that start with ``prefix``.

    SQLite compares TEXT keys as UTF-8 bytes, which orders like code points, so
    the keys starting with ``prefix`` are exactly ``prefix <= key < successor``.
    """
    if not prefix:
        return "1", ()
    upper = _successor(prefix)
    if upper is None:
        return "key >= ?", (prefix,)
    return "key >= ? AND key < ?", (prefix, upper)


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    code = ord(prefix[-1]) + 1
    if code < 0xD800:  # the usual case: the last character's next one
        return prefix[:-1] + chr(code)
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates can't be stored: skip the block
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


# keys(prefix)'s statement for each WHERE clause _prefix_range gives.
_KEYS = {
    where: f"SELECT key FROM kv WHERE {where} AND {_LIVE} ORDER BY key"
    for where in ("1", "key >= ?", "key >= ? AND key < ?")
}


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
