"""A Django cache backend on hubkv.

::

    CACHES = {
        "default": {
            "BACKEND": "hubkv.contrib.django.KVCache",
            # Optional: the prefix of the cache's keys in the store
            # (default "django-cache:"); clear() removes exactly these keys.
            "LOCATION": "django-cache:",
            # Optional: the store, as in settings.HUBKV. Without a driver the
            # cache uses the default store hubkv.kv (configured by HUBKV).
            "OPTIONS": {"driver": "fs-lite", "path": "data/cache.sqlite3"},
        }
    }

Everything else is Django's: ``TIMEOUT`` (default 300; ``None`` = never
expire), ``KEY_PREFIX``, ``VERSION``, ``KEY_FUNCTION``; values are pickled, so
``SESSION_ENGINE = "django.contrib.sessions.backends.cache"`` and the per-view
and per-site caches work. ``MAX_ENTRIES`` and ``CULL_FREQUENCY`` are accepted
and ignored (as by the memcached and Redis backends): entries leave by expiry,
:meth:`~KVCache.delete` or :meth:`~KVCache.clear`.

Keys: Django's key validation runs as in every built-in backend (a
``CacheKeyWarning`` for keys memcached would refuse). A key that Django
accepts but hubkv can't store as it is (over 512 bytes of UTF-8 with the
prefix, control characters) is stored under its SHA-256 instead, so every
Django key works.

Races: ``add``, ``incr``/``decr`` and ``touch`` read then write. They are
atomic between the threads of one process but not between processes (two
gunicorn workers can both ``add`` a key, and increments made at the same
moment by two workers can lose one): hubkv has no compare-and-set.

``close()`` (Django calls it after every request) releases nothing: the store
is shared by the process's threads and stays open until the process exits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import (  # type: ignore[import-untyped]
    DEFAULT_TIMEOUT,
    BaseCache,
)

from ...store import KV
from .._common import MISSING, PickledNamespace, shared_store

__all__ = ["KVCache", "DEFAULT_LOCATION"]

#: The key prefix in the store when ``LOCATION`` is empty.
DEFAULT_LOCATION = "django-cache:"
_IGNORED_OPTIONS = ("MAX_ENTRIES", "CULL_FREQUENCY")


class KVCache(BaseCache):  # type: ignore[misc]
    """Django's cache API over a hubkv store (see the module documentation).

    >>> cache = KVCache("", {"OPTIONS": {"driver": "memory"}})
    >>> cache.set("greeting", "hello", timeout=60)
    >>> cache.get("greeting"), cache.add("greeting", "hi"), cache.get_or_set("n", 1)
    ('hello', False, 1)
    >>> cache.incr("n", 10)
    11
    """

    def __init__(self, location: str, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        for name in _IGNORED_OPTIONS:
            options.pop(name, None)
        driver = options.pop("driver", None)
        self._entries = PickledNamespace(
            shared_store(driver, options), location or DEFAULT_LOCATION
        )

    @property
    def store(self) -> KV:
        """The store the entries live in."""
        return self._entries.store

    def _key(self, key: Any, version: int | None) -> str:
        return self.make_and_validate_key(key, version=version)  # type: ignore[no-any-return]

    def _ttl(self, timeout: Any) -> float | None:
        """Seconds to live; ``<= 0`` expires at once (Django's ``timeout=0``)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else float(timeout)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        value = self._entries.get(self._key(key, version))
        return default if value is MISSING else value

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = {self._key(key, version): key for key in keys}
        found = self._entries.get_many(made)
        return {made[key]: value for key, value in found.items()}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._entries.has(self._key(key, version))

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._entries.set(self._key(key, version), value, self._ttl(timeout))

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._entries.add(self._key(key, version), value, self._ttl(timeout))

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        made = {self._key(key, version): value for key, value in data.items()}
        self._entries.set_many(made, self._ttl(timeout))
        return []  # the keys that failed: a failure raises instead

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._entries.touch(self._key(key, version), self._ttl(timeout))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        made = self._key(key, version)
        try:
            return self._entries.incr(made, delta)
        except KeyError:
            raise ValueError(f"Key '{made}' not found") from None

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._entries.delete(self._key(key, version))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        self._entries.delete_many([self._key(key, version) for key in keys])

    def clear(self) -> None:
        self._entries.clear()

    def close(self, **kwargs: Any) -> None:
        """Nothing to do per request: the shared store stays open (see the module docs)."""
