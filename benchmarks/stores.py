"""The stores under test, each behind the same handful of plain callables.

Every store is used the way its own documentation says to, with its own
serialization, and each operation is the library's own bound method wherever
the library has one, so no adapter layer is timed that a user would not pay:

- ``hubkv fs-lite`` / ``hubkv memory``: :class:`hubkv.KV`, nothing else.
- ``raw sqlite3``: what an expert writes by hand, the limit of fs-lite's
  design: WAL (checkpointed every 4,000 pages, as fs-lite does),
  ``synchronous=NORMAL``, autocommit single statements, a
  ``WITHOUT ROWID`` table ``(key TEXT PRIMARY KEY, value BLOB)``, range
  queries for prefixes, msgspec JSON values, closures over ``execute``.
- ``diskcache``: ``diskcache.Cache`` with its defaults (WAL, NORMAL, pickled
  values); prefix operations scan every key, as it has no range API.
- ``sqlitedict``: ``SqliteDict(autocommit=True)`` with its defaults.
- ``dict+msgspec``: a dict of msgspec JSON bytes, the in-memory ceiling.
- ``lmdb`` (when it installs): one write transaction per write,
  ``sync=False`` (like WAL with NORMAL: a killed process loses nothing),
  cursor range scans for prefixes.

>>> import tempfile
>>> store = open_store("raw sqlite3", tempfile.mkdtemp())
>>> store.set("users:1:profile", {"id": 1})
>>> store.get("users:1:profile"), store.keys("users:"), store.clear("users:")
({'id': 1}, ['users:1:profile'], 1)
>>> store.close()
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

import hubkv

__all__ = [
    "Store",
    "RAW",
    "HUBKV",
    "STORE_NAMES",
    "PERSISTENT",
    "available_stores",
    "open_store",
    "disk_bytes",
]

RAW = "raw sqlite3"
HUBKV = "hubkv fs-lite"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass
class Store:
    """One open store: its operations as plain callables (see the module docstring)."""

    name: str
    set: Callable[[str, Any], Any]
    get: Callable[[str], Any]
    has: Callable[[str], bool]
    delete: Callable[[str], Any]
    keys: Callable[[str], list[str]]
    clear: Callable[[str], int]
    set_many: Callable[[Mapping[str, Any]], Any]
    close: Callable[[], None]
    #: Untimed bulk load before the phases; ``set_many`` unless the store has a faster way.
    load: Callable[[Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        if self.load is None:
            self.load = self.set_many


def _hubkv_fs_lite(folder: Path) -> Store:
    return _hubkv_store(HUBKV, hubkv.KV("fs-lite", path=str(folder / "kv.sqlite3")))


def _hubkv_memory(folder: Path) -> Store:
    return _hubkv_store("hubkv memory", hubkv.KV("memory"))


def _hubkv_store(name: str, kv: hubkv.KV) -> Store:
    return Store(name, kv.set, kv.get, kv.has, kv.delete, kv.keys, kv.clear, kv.set_many, kv.close)


def _raw_sqlite3(folder: Path) -> Store:
    conn = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=4000")  # as fs-lite: the comparison stays fair
    conn.execute(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)"
        " WITHOUT ROWID"
    )
    execute = conn.execute
    encode, decode = _encode, _decode

    def set_(key: str, value: Any) -> None:
        execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, encode(value)))

    def get(key: str) -> Any:
        row = execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else decode(row[0])

    def has(key: str) -> bool:
        return execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None

    def delete(key: str) -> None:
        execute("DELETE FROM kv WHERE key = ?", (key,))

    def keys(prefix: str) -> list[str]:
        sql = "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key"
        return [key for (key,) in execute(sql, (prefix, _successor(prefix))).fetchall()]

    def clear(prefix: str) -> int:
        sql = "DELETE FROM kv WHERE key >= ? AND key < ?"
        return execute(sql, (prefix, _successor(prefix))).rowcount

    def set_many(items: Mapping[str, Any]) -> None:
        rows = [(key, encode(value)) for key, value in items.items()]
        execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
            execute("COMMIT")
        except BaseException:
            execute("ROLLBACK")
            raise

    return Store(RAW, set_, get, has, delete, keys, clear, set_many, conn.close)


def _successor(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (ASCII keys here)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _diskcache(folder: Path) -> Store:
    import diskcache

    cache = diskcache.Cache(str(folder / "diskcache"))

    def keys(prefix: str) -> list[str]:
        # Iterating the cache pages by rowid; iterkeys() (sorted) is quadratic.
        return sorted(key for key in cache if key.startswith(prefix))

    def clear(prefix: str) -> int:
        found = keys(prefix)
        with cache.transact():
            for key in found:
                cache.delete(key)
        return len(found)

    def set_many(items: Mapping[str, Any]) -> None:
        with cache.transact():
            for key, value in items.items():
                cache.set(key, value)

    return Store(
        "diskcache",
        cache.set,
        cache.get,
        cache.__contains__,
        cache.delete,
        keys,
        clear,
        set_many,
        cache.close,
    )


def _sqlitedict(folder: Path) -> Store:
    from sqlitedict import SqliteDict

    path = str(folder / "sqlitedict.sqlite3")
    table = SqliteDict(path, autocommit=True)

    def load(items: Mapping[str, Any]) -> None:
        # Its update() passes each key through its worker thread and (autocommit)
        # commits each; write its table directly, in one transaction, instead.
        with sqlite3.connect(path) as bulk:
            bulk.executemany(
                f'INSERT OR REPLACE INTO "{table.tablename}" (key, value) VALUES (?, ?)',
                [(key, table.encode(value)) for key, value in items.items()],
            )
        bulk.close()

    def keys(prefix: str) -> list[str]:
        return sorted(key for key in table.keys() if key.startswith(prefix))

    def clear(prefix: str) -> int:
        found = keys(prefix)
        for key in found:
            del table[key]
        return len(found)

    return Store(
        "sqlitedict",
        table.__setitem__,
        table.get,
        table.__contains__,
        table.__delitem__,
        keys,
        clear,
        table.update,
        table.close,
        load,
    )


def _dict_msgspec(folder: Path) -> Store:
    data: dict[str, bytes] = {}
    encode, decode = _encode, _decode

    def set_(key: str, value: Any) -> None:
        data[key] = encode(value)

    def get(key: str) -> Any:
        found = data.get(key)
        return None if found is None else decode(found)

    def delete(key: str) -> None:
        data.pop(key, None)

    def keys(prefix: str) -> list[str]:
        return sorted(key for key in data if key.startswith(prefix))

    def clear(prefix: str) -> int:
        found = [key for key in data if key.startswith(prefix)]
        for key in found:
            del data[key]
        return len(found)

    def set_many(items: Mapping[str, Any]) -> None:
        data.update({key: encode(value) for key, value in items.items()})

    return Store(
        "dict+msgspec", set_, get, data.__contains__, delete, keys, clear, set_many, data.clear
    )


def _lmdb(folder: Path) -> Store:
    import lmdb

    env = lmdb.open(str(folder / "lmdb"), map_size=8 << 30, sync=False)
    encode, decode = _encode, _decode

    def set_(key: str, value: Any) -> None:
        with env.begin(write=True) as txn:
            txn.put(key.encode(), encode(value))

    def get(key: str) -> Any:
        with env.begin() as txn:
            found = txn.get(key.encode())
        return None if found is None else decode(found)

    def has(key: str) -> bool:
        with env.begin() as txn:
            return txn.get(key.encode()) is not None

    def delete(key: str) -> None:
        with env.begin(write=True) as txn:
            txn.delete(key.encode())

    def _range(cursor: Any, prefix: bytes) -> Iterator[bytes]:
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix):
                    return
                yield key

    def keys(prefix: str) -> list[str]:
        with env.begin() as txn:
            return [key.decode() for key in _range(txn.cursor(), prefix.encode())]

    def clear(prefix: str) -> int:
        with env.begin(write=True) as txn:
            found = list(_range(txn.cursor(), prefix.encode()))
            for key in found:
                txn.delete(key)
        return len(found)

    def set_many(items: Mapping[str, Any]) -> None:
        rows = [(key.encode(), encode(value)) for key, value in items.items()]
        with env.begin(write=True) as txn:
            txn.cursor().putmulti(rows)

    return Store("lmdb", set_, get, has, delete, keys, clear, set_many, env.close)


_FACTORIES: dict[str, Callable[[Path], Store]] = {
    HUBKV: _hubkv_fs_lite,
    RAW: _raw_sqlite3,
    "hubkv memory": _hubkv_memory,
    "dict+msgspec": _dict_msgspec,
    "diskcache": _diskcache,
    "sqlitedict": _sqlitedict,
    "lmdb": _lmdb,
}
#: Every store, in the order of the tables.
STORE_NAMES: tuple[str, ...] = tuple(_FACTORIES)
#: Stores kept in files: reopened by the cold-open phase, written by several processes.
PERSISTENT = frozenset({HUBKV, RAW, "diskcache", "sqlitedict", "lmdb"})
_PACKAGES = {"diskcache": "diskcache", "sqlitedict": "sqlitedict", "lmdb": "lmdb"}


def available_stores() -> tuple[list[str], dict[str, str]]:
    """(stores whose package is installed, {store: why it is left out})."""
    found, missing = [], {}
    for name in STORE_NAMES:
        package = _PACKAGES.get(name)
        if package is None or importlib.util.find_spec(package) is not None:
            found.append(name)
        else:
            missing[name] = f"the {package} package is not installed (pip install 'hubkv[bench]')"
    return found, missing


def open_store(name: str, folder: str | os.PathLike[str]) -> Store:
    """Open store ``name`` with its files in ``folder`` (created or reopened)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return _FACTORIES[name](path)


def disk_bytes(folder: str | os.PathLike[str]) -> int:
    """Bytes of every file under ``folder`` (lock files included)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for file in files:
            total += os.path.getsize(os.path.join(root, file))
    return total
