"""The driver contract: thin and dumb, bytes in and bytes out.

The store (:mod:`hubkv.store`) owns key validation, serialization, views and
the read-only switch. A driver only moves already-validated ``str`` keys and
already-encoded ``bytes`` values to and from its storage, and honours TTLs.

To add a driver, subclass :class:`Driver`, implement the abstract methods, and
register it (``hubkv.drivers.register("name", MyDriver)`` or the
``hubkv.drivers`` entry-point group). Options are the keyword parameters of
``__init__``; configuration checks names against them and converts
environment strings using their annotations (``str``, ``int``, ``float``,
``bool``). The shared suite in ``tests/drivers`` proves a driver behaves like
every other one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, ClassVar

# Keys listed per ttl_many call in the default iter_ttls.
_TTL_CHUNK = 1000


def seconds_left(expires_at: float | None, now: float) -> float | None:
    """Seconds from ``now`` until ``expires_at`` (both Unix time), never below 0;
    ``None`` for a key that never expires: what :meth:`Driver.ttl` answers.

    >>> seconds_left(1060.5, 1000.0), seconds_left(990.0, 1000.0), seconds_left(None, 1000.0)
    (60.5, 0.0, None)
    """
    return None if expires_at is None else max(expires_at - now, 0.0)


class Driver(ABC):
    """Base class of storage drivers.

    Contract, for every method:

    - keys are valid ``str`` keys; prefixes are ``str`` (``""`` means all);
    - ``ttl`` is ``None`` (never expires) or seconds ``> 0``; a write without
      a TTL makes the key permanent; expired keys are invisible everywhere;
    - failures of the storage raise :class:`hubkv.errors.DriverError` (or a
      subclass) with a message that names the store but no secret.

    Batches have defaults built on the single-key methods (a loop, or one
    ``set_many`` per distinct TTL), so a driver only has to implement the
    abstract methods; remote drivers override them with one request per batch.
    """

    #: Registry name, e.g. ``"fs-lite"``.
    name: ClassVar[str] = ""
    #: True when the driver can only read (e.g. a read-only token); the store
    #: then refuses writes before calling the driver.
    read_only: bool = False

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The stored bytes, or ``None`` when the key is missing or expired."""

    @abstractmethod
    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` under ``key``; durable (or acknowledged) on return."""

    def has(self, key: str) -> bool:
        """Whether ``key`` exists. Override when a cheaper request answers it."""
        return self.get(key) is not None

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Live keys starting with ``prefix``, in any order, streamed in bounded memory.

        Every key that lives throughout the iteration is yielded at least once.
        A driver may yield a key twice when the storage's own cursor does:
        Redis ``SCAN`` repeats keys (rarely) when the database is resized
        during the scan, and remembering every key to hide that would hold the
        whole keyspace in memory. Callers that count keys or write what they
        list must tolerate a repeat (hubkv's writes are idempotent overwrites);
        :meth:`keys` removes repeats.
        """

    def keys(self, prefix: str) -> list[str]:
        """Live keys starting with ``prefix``, each once, sorted by code point."""
        return sorted(set(self.iter_keys(prefix)))

    def iter_ttls(self, prefix: str) -> Iterator[tuple[str, float | None]]:
        """``(key, seconds left or None)`` for the live keys starting with ``prefix``, streamed.

        The keys are :meth:`iter_keys`'s (any order, a rare repeat where it
        repeats). The default lists keys and reads their TTLs with one
        :meth:`ttl_many` per 1,000 keys; a key that vanishes between the two is
        left out, as if it had gone before the listing. Drivers whose listing
        carries expirations (Cloudflare KV) override it with the listing alone.
        """
        listed = self.iter_keys(prefix)
        while chunk := list(islice(listed, _TTL_CHUNK)):
            ttls = self.ttl_many(list(dict.fromkeys(chunk)))
            for key in chunk:
                if key in ttls:
                    yield key, ttls[key]

    @abstractmethod
    def clear(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many live keys went."""

    @abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, ``None`` if it never does.

        Raises :class:`KeyError` when the key is missing or expired.
        """

    def ttl_many(self, keys: Sequence[str]) -> dict[str, float | None]:
        """:meth:`ttl` of each present key among ``keys`` (distinct), in any order.

        Missing and expired keys are left out (no :class:`KeyError`). The
        default asks key by key; override it with one request per batch.
        """
        found: dict[str, float | None] = {}
        for key in keys:
            try:
                found[key] = self.ttl(key)
            except KeyError:
                continue
        return found

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Values of the present keys among ``keys`` (distinct), in any order."""
        found = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        """Store every pair (distinct keys); all or nothing where the storage allows."""
        for key, value in items:
            self.set(key, value, ttl)

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        """Store every ``(key, value, ttl)`` (distinct keys), each with its own TTL.

        What an import or a copy writes: keys whose remaining TTLs all differ.
        The default makes one :meth:`set_many` per distinct TTL; override it
        with one request (or transaction) per batch, all or nothing where the
        storage allows.
        """
        groups: dict[float | None, list[tuple[str, bytes]]] = {}
        for key, value, ttl in items:
            groups.setdefault(ttl, []).append((key, value))
        for ttl, pairs in groups.items():
            self.set_many(pairs, ttl)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key of ``keys``."""
        for key in keys:
            self.delete(key)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and sessions. Using the driver again reopens them."""

    def describe(self) -> str:
        """Where the data lives, for logs, ``repr`` and ``hubkv info`` (no secrets)."""
        return self.name

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> tuple[dict[str, Any], str] | None:
        """Options and a reason when the host's credentials configure this driver.

        Remote drivers override this so that, with nothing else configured,
        ``hubkv.KV()`` picks them on a host that provides their variables.
        It must not import anything slow: it runs on every default start.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
