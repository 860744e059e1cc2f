"""A cachelib backend on hubkv: for Flask-Caching, Flask-Session and cachelib users.

>>> from hubkv.contrib.cachelib import KVCache
>>> cache = KVCache("memory", default_timeout=60)
>>> cache.set("answer", {"n": 42})
True
>>> cache.get("answer"), cache.add("answer", 0), cache.inc("hits")
({'n': 42}, False, 1)

Flask-Caching (``CACHE_OPTIONS`` are the store's ``driver`` and options, plus
``key_prefix``)::

    app.config["CACHE_TYPE"] = "hubkv.contrib.cachelib.KVCache"
    app.config["CACHE_OPTIONS"] = {"driver": "fs-lite", "path": "data/kv.sqlite3"}

``CACHE_TYPE`` may also name a subclass of :class:`KVCache` anywhere
(``"myapp.caching.AppCache"``): Flask-Caching then builds it with
:meth:`KVCache.factory`, which also reads ``CACHE_KEY_PREFIX``.

Flask-Session::

    app.config["SESSION_TYPE"] = "cachelib"
    app.config["SESSION_CACHELIB"] = KVCache(key_prefix="sessions:")

Semantics are cachelib's (:class:`cachelib.BaseCache`): ``timeout=None`` is
``default_timeout``, ``0`` never expires, a negative timeout has already
expired; ``get`` returns ``None`` for a missing key; ``add`` writes only
when the key is absent; ``inc``/``dec`` start a missing key at
``delta``/``-delta`` (with the default timeout) and keep an existing key's
expiry, like Redis. Storage errors raise :class:`hubkv.DriverError` (cachelib
backends also let their client's errors through).

Races: ``add``, ``inc``, ``dec`` are atomic between the threads of one
process, but not between processes (gunicorn workers): hubkv has no
compare-and-set, so two workers can both ``add`` the same key, and
increments made at the same moment by two workers can lose one.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any, TypeVar

from cachelib import BaseCache

from ..drivers.base import Driver
from ..store import KV
from ._common import MISSING, PickledNamespace, shared_store

__all__ = ["KVCache"]

_Cache = TypeVar("_Cache")


class _FlaskCachingAware(type):
    """Routes Flask-Caching's ``cls(app, config, args, kwargs)`` call to ``cls.factory``.

    Flask-Caching calls ``factory`` itself only on subclasses of its own
    ``BaseCache``; any other ``CACHE_TYPE`` class (whose import path doesn't
    contain "cachelib") it calls with those four arguments. Recognising the
    call here keeps this module free of any Flask-Caching import.
    """

    def __call__(cls: type[_Cache], *args: Any, **kwargs: Any) -> _Cache:
        flask = sys.modules.get("flask")
        if len(args) == 4 and not kwargs and flask and isinstance(args[0], flask.Flask):
            return cls.factory(*args)  # type: ignore[attr-defined, no-any-return]
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


class KVCache(BaseCache, metaclass=_FlaskCachingAware):
    """A :class:`cachelib.BaseCache` whose entries are pickled under ``key_prefix`` in a store.

    ``driver`` and ``options`` name the store as for :class:`hubkv.KV`
    (stores are shared per process and configuration); a :class:`hubkv.KV`
    is used as it is; nothing at all means the default store ``hubkv.kv``.
    :meth:`clear` removes the keys under ``key_prefix`` and nothing else.
    """

    def __init__(
        self,
        driver: str | Driver | KV | None = None,
        *,
        key_prefix: str = "cache:",
        default_timeout: int | dt.timedelta = 300,
        ignore_delete_many_errors: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(default_timeout, ignore_delete_many_errors=ignore_delete_many_errors)
        self._entries = PickledNamespace(shared_store(driver, options), key_prefix)

    @classmethod
    def factory(
        cls, app: Any, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> KVCache:
        """Build the cache for Flask-Caching, as its own backends are built.

        ``kwargs`` holds what Flask-Caching gathered: ``default_timeout``
        (``CACHE_DEFAULT_TIMEOUT``), ``ignore_delete_many_errors``
        (``CACHE_IGNORE_ERRORS``) and ``CACHE_OPTIONS`` (the store's ``driver``
        and options); ``args`` is ``CACHE_ARGS``. ``CACHE_KEY_PREFIX`` becomes
        ``key_prefix`` unless ``CACHE_OPTIONS`` names one (Flask-Caching
        always sets it, to ``"flask_cache_"`` by default); an empty one is ignored.
        """
        options = dict(kwargs)
        if config.get("CACHE_KEY_PREFIX"):
            options.setdefault("key_prefix", config["CACHE_KEY_PREFIX"])
        return cls(*args, **options)

    @property
    def store(self) -> KV:
        """The store the entries live in."""
        return self._entries.store

    @property
    def key_prefix(self) -> str:
        """The prefix of every entry's key in the store."""
        return self._entries.prefix

    def _ttl(self, timeout: int | dt.timedelta | None) -> float | None:
        seconds = self._normalize_timeout(timeout)
        if seconds == 0:
            return None
        return seconds if seconds > 0 else -1.0

    def get(self, key: str) -> Any:
        value = self._entries.get(key)
        return None if value is MISSING else value

    def get_many(self, *keys: str) -> list[Any]:
        found = self._entries.get_many(keys)
        return [found.get(key) for key in keys]

    def has(self, key: str) -> bool:
        return self._entries.has(key)

    def set(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        self._entries.set(key, value, self._ttl(timeout))
        return True

    def add(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        return self._entries.add(key, value, self._ttl(timeout))

    def set_many(
        self, mapping: dict[str, Any], timeout: int | dt.timedelta | None = None
    ) -> list[Any]:
        self._entries.set_many(mapping, self._ttl(timeout))
        return list(mapping)

    def delete(self, key: str) -> bool:
        return self._entries.delete(key)

    def delete_many(self, *keys: str) -> list[Any]:
        # A key that is absent afterwards counts as deleted (cachelib 0.16+).
        self._entries.delete_many(keys)
        return list(keys)

    def clear(self) -> bool:
        self._entries.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int | None:
        return self._entries.incr(key, delta, create=True, ttl=self._ttl(None))  # type: ignore[no-any-return]

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)

    def __repr__(self) -> str:
        return f"<KVCache {self._entries.store!r} key_prefix={self.key_prefix!r}>"
