"""hubkv: one synchronous API for small values addressed by string keys.

>>> import hubkv
>>> store = hubkv.KV("memory")
>>> store.set("settings", {"theme": "system"})
>>> store.get("settings")
{'theme': 'system'}

``from hubkv import kv`` is the default store, configured on first use (see
:mod:`hubkv.config`); :func:`configure` re-points it.
"""

from __future__ import annotations

import threading
from typing import Any

from .drivers.base import Driver
from .errors import (
    AuthenticationError,
    ConfigError,
    DriverError,
    InvalidKeyError,
    InvalidTTLError,
    KVError,
    RateLimitedError,
    ReadOnlyError,
    RequestTooLargeError,
    SerializationError,
    UnavailableError,
    ValueTooLargeError,
)
from .store import KV

__version__ = "0.1.0"

__all__ = [
    "KV",
    "kv",
    "configure",
    "Driver",
    "KVError",
    "InvalidKeyError",
    "InvalidTTLError",
    "SerializationError",
    "ValueTooLargeError",
    "ConfigError",
    "ReadOnlyError",
    "DriverError",
    "AuthenticationError",
    "RateLimitedError",
    "UnavailableError",
    "RequestTooLargeError",
]


class _DefaultStore:
    """The object behind ``hubkv.kv``: forwards to the configured :class:`KV`.

    It is created on first use from the resolved configuration, and
    :func:`configure` swaps it, so ``from hubkv import kv`` never goes stale.
    """

    def __init__(self) -> None:
        self._store: KV | None = None
        self._lock = threading.Lock()

    def _get(self) -> KV:
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = KV()
                store = self._store
        return store

    def _replace(self, store: KV | None) -> None:
        with self._lock:
            old, self._store = self._store, store
        if old is not None:
            old.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # introspection (copy, inspect, doctest) must not configure
            raise AttributeError(name)
        return getattr(self._get(), name)

    def __contains__(self, key: str) -> bool:
        return key in self._get()

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._get()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._get()[key]

    def __enter__(self) -> _DefaultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._get().close()  # closed connections reopen on next use

    def __repr__(self) -> str:
        if self._store is None:
            return "<hubkv.kv (not configured yet)>"
        return f"<hubkv.kv {self._store!r}>"


#: The default store. Behaves like a :class:`KV`.
kv: KV = _DefaultStore()  # type: ignore[assignment]


def configure(driver: str | Driver | None = None, /, **options: Any) -> KV:
    """(Re)configure the default store ``hubkv.kv`` and return the new store.

    Takes the same arguments as :class:`KV`; the previous store is closed.

    >>> import hubkv
    >>> store = hubkv.configure("memory")
    >>> hubkv.kv.set("flag", True)
    >>> store.get("flag")
    True
    """
    store = KV(driver, **options)
    kv._replace(store)  # type: ignore[attr-defined]
    return store
