"""memory: an in-process store for tests, notebooks and throwaway state.

Same semantics as every other driver, TTLs included; thread-safe; gone when
the process ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from .base import Driver, seconds_left

__all__ = ["MemoryDriver"]


class MemoryDriver(Driver):
    """Keys in a dict guarded by a lock; each entry is ``(value, expires_at)``.

    >>> driver = MemoryDriver()
    >>> driver.set("a", b"1", None)
    >>> driver.get("a"), driver.get("b")
    (b'1', None)
    """

    name = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> tuple[bytes, float | None] | None:
        """The entry for ``key`` if it has not expired (caller holds the lock)."""
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._live(key, time.time())
        return None if entry is None else entry[0]

    def ttl(self, key: str) -> float | None:
        now = time.time()
        with self._lock:
            entry = self._live(key, now)
        if entry is None:
            raise KeyError(key)
        return seconds_left(entry[1], now)

    def ttl_many(self, keys: Sequence[str]) -> dict[str, float | None]:
        now = time.time()
        found: dict[str, float | None] = {}
        with self._lock:
            for key in keys:
                entry = self._live(key, now)
                if entry is not None:
                    found[key] = seconds_left(entry[1], now)
        return found

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        expires_at = None if ttl is None else time.time() + ttl
        with self._lock:
            self._data[key] = (value, expires_at)

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        expires_at = None if ttl is None else time.time() + ttl
        with self._lock:
            self._data.update((key, (value, expires_at)) for key, value in items)

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        now = time.time()
        with self._lock:
            self._data.update(
                (key, (value, None if ttl is None else now + ttl)) for key, value, ttl in items
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        now = time.time()
        found = {}
        with self._lock:
            for key in keys:
                entry = self._live(key, now)
                if entry is not None:
                    found[key] = entry[0]
        return found

    def _matching(self, prefix: str) -> list[str]:
        """Live keys starting with ``prefix``; expired ones are dropped (caller holds the lock)."""
        now = time.time()
        return [key for key in list(self._data) if key.startswith(prefix) and self._live(key, now)]

    def iter_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            matching = self._matching(prefix)
        return iter(matching)

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            matching = self._matching(prefix)
        matching.sort()
        return matching

    def clear(self, prefix: str) -> int:
        with self._lock:
            matching = self._matching(prefix)
            for key in matching:
                del self._data[key]
        return len(matching)

    def close(self) -> None:
        """Nothing to release: the data stays for as long as the driver lives."""

    def describe(self) -> str:
        return "in-process memory"
