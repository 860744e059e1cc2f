"""Plumbing shared by the framework integrations (Flask, Django, cachelib).

Two things live here so that no integration repeats them:

- :func:`configure_from_setting` turns a framework's ``HUBKV`` setting (a
  dict: ``driver`` plus that driver's options) into the default store
  ``hubkv.kv``;
- :class:`PickledNamespace` keeps pickled Python objects under one prefix of
  a store, with cache timeouts, "add only if absent" and increments: the
  part the Django and cachelib cache backends have in common. Each backend
  maps its own API and timeout conventions onto it.

Stores made here are closed when the process exits (never per request:
other threads may be using them, and a closed store would only reopen).
"""

from __future__ import annotations

import atexit
import hashlib
import pickle
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import hubkv

from ..drivers.base import Driver
from ..errors import ConfigError, InvalidKeyError
from ..store import KV, MAX_KEY_BYTES, MAX_TTL, validate_key, validate_prefix

__all__ = ["configure_from_setting", "shared_store", "PickledNamespace", "MISSING"]

#: Returned by :meth:`PickledNamespace.get` for a missing key.
MISSING: Any = object()

# Keys hubkv refuses (too long, control characters) are stored under this mark
# followed by the SHA-256 of the key; a key that itself starts with the mark is
# hashed too, so two different keys never share a storage key.
_HASHED = "#sha256:"
_HASHED_LENGTH = len(_HASHED) + 64
_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Read-modify-write operations (add, incr, touch) of one process hold one of
# these, picked by key, so they are atomic between the threads of a process.
_LOCKS = tuple(threading.Lock() for _ in range(64))

_stores: dict[Any, KV] = {}
_configured: list[KV] = []
_stores_lock = threading.Lock()


def configure_from_setting(config: object, where: str) -> KV:
    """Point ``hubkv.kv`` at the store ``config`` describes; return the store to use.

    ``config`` is the framework's ``HUBKV`` setting: ``None`` or ``{}`` keeps
    hubkv's own resolution (``HUBKV_*`` environment variables,
    ``[tool.hubkv]`` in ``pyproject.toml``, else fs-lite at
    ``.data/kv.sqlite3``) and returns ``hubkv.kv`` itself; a dict names the
    driver and its options. ``where`` names the setting in error messages.

    >>> store = configure_from_setting({"driver": "memory"}, "HUBKV")
    >>> store.set("flag", True)
    >>> hubkv.kv.get("flag")
    True
    """
    if config is None:
        return hubkv.kv
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"{where} must be a dict such as {{'driver': 'fs-lite', 'path': 'data/kv.sqlite3'}}, "
            f"not {type(config).__name__}"
        )
    options = dict(config)
    if not options:
        return hubkv.kv
    driver = options.pop("driver", None)
    if driver is None:
        raise ConfigError(
            f"{where} has options but no 'driver'; name it, e.g. "
            "{'driver': 'fs-lite', 'path': 'data/kv.sqlite3'}: the other keys are its options"
        )
    store = hubkv.configure(driver, **options)
    with _stores_lock:
        _configured[:] = [store]
    return store


def shared_store(driver: str | Driver | KV | None, options: Mapping[str, Any]) -> KV:
    """The store for ``driver`` and ``options``, one per process and configuration.

    Cache backends are created once per thread (Django) or per app; sharing
    the store keeps one set of connections per process. No driver and no
    options means the default store ``hubkv.kv`` (which follows
    :func:`hubkv.configure`); a :class:`KV` is used as it is.

    >>> shared_store("memory", {}) is shared_store("memory", {})
    True
    >>> shared_store(None, {}) is hubkv.kv
    True
    """
    if isinstance(driver, KV):
        if options:
            raise ConfigError(
                f"options {sorted(options)} can't apply to a store that is already open; "
                "pass either a store or a driver with its options"
            )
        return driver
    if driver is None and not options:
        return hubkv.kv
    key: object = (driver, tuple(sorted(options.items())))
    try:
        hash(key)
    except TypeError:  # an unhashable option value: don't share
        key = object()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = KV(driver, **options)
    return store


@atexit.register
def _close_stores() -> None:
    with _stores_lock:
        stores = [*_stores.values(), *_configured]
    for store in stores:
        store.close()


class PickledNamespace:
    """Python objects, pickled, under ``prefix`` in ``store``: a cache's storage.

    Values are pickled (as by every Django and cachelib backend) and stored
    as ``bytes`` (base64 in hubkv's JSON). Only trusted code may write under
    the prefix: unpickling data from an attacker runs their code.

    Every key a framework accepts works: a key hubkv refuses (over 512 bytes
    with the prefix, control characters, ``.``) is stored under the SHA-256
    of the key instead.

    ``ttl`` arguments are seconds, ``None`` for never; ``ttl <= 0`` means
    "already expired" (the key is removed); TTLs over hubkv's ten-year limit
    are stored without expiry.

    >>> cache = PickledNamespace(hubkv.KV("memory"), "cache:")
    >>> cache.set("answer", {"n": 42}, ttl=60)
    >>> cache.get("answer"), cache.get("other") is MISSING
    ({'n': 42}, True)
    >>> cache.add("answer", 0, ttl=None), cache.incr("count", 1, create=True)
    (False, 1)
    """

    def __init__(self, store: KV, prefix: str) -> None:
        validate_prefix(prefix)
        # A store that is itself a view adds its prefix in front of ours (the
        # default store is not asked: that would configure it now).
        self._outer = "" if store is hubkv.kv else store.prefix
        size = len((self._outer + prefix).encode("utf-8", "surrogatepass"))
        if size + _HASHED_LENGTH > MAX_KEY_BYTES:
            raise ConfigError(
                f"the cache prefix {prefix[:40]!r}... is {size} bytes; use at most "
                f"{MAX_KEY_BYTES - _HASHED_LENGTH} bytes so every key fits"
            )
        self.store = store
        self.prefix = prefix

    def key(self, key: str) -> str:
        """The hubkv key that holds ``key``.

        >>> cache = PickledNamespace(hubkv.KV("memory"), "c:")
        >>> cache.key("a b")
        'c:a b'
        >>> cache.key("x" * 600)[:10]
        'c:#sha256:'
        """
        if not isinstance(key, str):
            raise InvalidKeyError(f"a cache key must be a str, not {type(key).__name__}")
        if not key.startswith(_HASHED):
            try:
                validate_key(self._outer + self.prefix + key)
                return self.prefix + key
            except InvalidKeyError:
                pass
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.prefix + _HASHED + digest

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> Any:
        """The object under ``key``, or :data:`MISSING`."""
        data = self.store.get(self.key(key), type=bytes)
        return MISSING if data is None else pickle.loads(data)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The present keys among ``keys`` and their objects."""
        wanted = {self.key(key): key for key in keys}
        found = self.store.get_many(list(wanted), type=bytes)
        return {wanted[full]: pickle.loads(data) for full, data in found.items()}

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (and not expired)."""
        return self.store.has(self.key(key))

    # -- writes ----------------------------------------------------------

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``<= 0``: remove it)."""
        full = self.key(key)
        data = pickle.dumps(value, _PICKLE_PROTOCOL)
        if _expired(ttl):
            self.store.delete(full)
        else:
            self.store.set(full, data, ttl=_store_ttl(ttl))

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        """Store every pair; every value is pickled before the first write."""
        encoded = {
            self.key(key): pickle.dumps(value, _PICKLE_PROTOCOL) for key, value in items.items()
        }
        if _expired(ttl):
            self.store.delete_many(encoded)
        else:
            self.store.set_many(encoded, ttl=_store_ttl(ttl))

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        """Store ``value`` only if ``key`` is absent; whether it was absent.

        Atomic between threads of this process; two processes can both find
        the key absent and both write (hubkv has no compare-and-set).
        """
        full = self.key(key)
        data = pickle.dumps(value, _PICKLE_PROTOCOL)
        with _lock(full):
            if self.store.has(full):
                return False
            if not _expired(ttl):
                self.store.set(full, data, ttl=_store_ttl(ttl))
            return True

    def incr(self, key: str, delta: Any, *, create: bool = False, ttl: float | None = None) -> Any:
        """Add ``delta`` to the object under ``key``, keeping its expiry; return the sum.

        A missing key raises :class:`KeyError`, or with ``create=True`` is
        stored as ``delta`` for ``ttl`` seconds. Atomic between threads of
        this process; increments from two processes at once can lose one.
        """
        full = self.key(key)
        with _lock(full):
            data = self.store.get(full, type=bytes)
            remaining: float | None = None
            if data is not None:
                try:
                    remaining = self.store.ttl(full)
                except KeyError:  # expired between the two reads
                    data = None
            if data is None:
                if not create:
                    raise KeyError(key)
                value, remaining = delta, ttl
            else:
                value = pickle.loads(data) + delta
            if _expired(remaining):
                self.store.delete(full)
            else:
                self.store.set(
                    full, pickle.dumps(value, _PICKLE_PROTOCOL), ttl=_store_ttl(remaining)
                )
        return value

    def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new expiry; whether it was present."""
        full = self.key(key)
        with _lock(full):
            data = self.store.get(full, type=bytes)
            if data is None:
                return False
            if _expired(ttl):
                self.store.delete(full)
            else:
                self.store.set(full, data, ttl=_store_ttl(ttl))
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was present."""
        full = self.key(key)
        present = self.store.has(full)
        self.store.delete(full)
        return present

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key of ``keys``."""
        self.store.delete_many([self.key(key) for key in keys])

    def clear(self) -> int:
        """Remove every key under the prefix (nothing else); return how many."""
        return self.store.clear(self.prefix)


def _lock(full_key: str) -> threading.Lock:
    return _LOCKS[hash(full_key) % len(_LOCKS)]


def _expired(ttl: float | None) -> bool:
    return ttl is not None and ttl <= 0


def _store_ttl(ttl: float | None) -> float | None:
    """``ttl`` as hubkv takes it: ``None`` also for TTLs beyond its ten-year limit."""
    if ttl is None or ttl > MAX_TTL:
        return None
    return ttl
