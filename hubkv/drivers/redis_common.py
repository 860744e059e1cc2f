"""What the ``upstash`` and ``redis`` drivers share: the key layout and the commands.

Both drivers speak Redis commands to the same kind of database, so they use
one key layout and can read each other's data (and the JavaScript
``@vite-hub/kv``/unstorage's, which stores the same JSON under the same keys):

- a key is stored under its own name, or under ``base:key`` with the ``base``
  option, so several apps can share one database;
- a value is the stored bytes as a Redis string; a TTL is ``SET ... PX ms``;
- listing is ``SCAN cursor MATCH <prefix, glob characters escaped>* COUNT 10000``
  to the end, streamed as SCAN returns it (``iter_keys``: SCAN may repeat a key,
  see there) or de-duplicated and sorted (``keys``). SCAN walks the whole
  database, whatever the prefix: about one request per 10,000 keys in the
  database, so listing or clearing a ``base`` of a big shared database costs
  more than its own keys suggest;
- batches are one command (``MGET``, ``UNLINK k1 k2 ...``), one pipeline
  (``PTTL`` of each key, for ``ttl_many``) or one transaction (``SET`` each key,
  each with its own ``PX``), split only when a request would get too large;
  ``clear`` gathers the keys of successive SCAN pages into full ``UNLINK`` batches.

:class:`RedisCommandsDriver` implements the whole driver contract on top of
one primitive, :meth:`~RedisCommandsDriver.send`; a driver only moves commands
and raw replies (``bytes``, ``int``, ``None`` or lists of them) over its wire.
Nothing here imports a network library.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import TypeAlias, TypeVar

from ..errors import ConfigError, DriverError, InvalidKeyError
from .base import Driver

__all__ = [
    "Arg",
    "Command",
    "Reply",
    "RedisCommandsDriver",
    "check_base",
    "escape_glob",
    "px",
]

#: One argument of a command, as the wire takes it.
Arg: TypeAlias = "str | bytes"
#: A command: its name, then its arguments.
Command: TypeAlias = "Sequence[Arg]"
#: A raw reply: bulk strings are ``bytes``; status replies (``OK``) too.
Reply: TypeAlias = "bytes | int | None | list[Reply]"

_GLOB_SPECIAL = frozenset("*?[]\\")
_T = TypeVar("_T")


def escape_glob(text: str) -> str:
    """``text`` with every Redis glob character escaped, so ``MATCH`` takes it literally.

    >>> escape_glob("users:[42]*")
    'users:\\\\[42\\\\]\\\\*'
    """
    return "".join("\\" + char if char in _GLOB_SPECIAL else char for char in text)


def px(ttl: float) -> str:
    """A TTL in seconds as the milliseconds of ``SET ... PX``, rounded up (at least 1).

    >>> px(0.3), px(60), px(0.0001)
    ('300', '60000', '1')
    """
    # round() first: 0.3 * 1000 must be 300, not 301 through float noise.
    return str(max(1, math.ceil(round(ttl * 1000, 6))))


def check_base(base: str) -> str:
    """``base`` if it can namespace keys (empty means none); :class:`ConfigError` if not.

    >>> check_base("my-app")
    'my-app'
    """
    from ..store import validate_prefix

    if not isinstance(base, str):
        raise ConfigError(f"base must be a str, not {type(base).__name__}")
    try:
        validate_prefix(base)
    except InvalidKeyError as exc:
        raise ConfigError(f"base is not usable as a key namespace: {exc}") from None
    return base


class RedisCommandsDriver(Driver):
    """The driver contract in Redis commands; subclasses only implement :meth:`send`.

    Class attributes bound the size of one request (instances may lower them):
    ``batch_keys`` keys per ``MGET``/``UNLINK``/transaction and ``batch_bytes``
    bytes of keys and values per request.
    """

    #: Keys asked per SCAN step. SCAN visits every key of the database, matching or
    #: not, so this sets the requests of a listing: one per this many keys in the
    #: whole database (Upstash bills each). Larger steps block the server a little
    #: longer each (a few ms for 10,000 keys).
    scan_count = 10_000
    #: Most keys in one batch request.
    batch_keys = 1000
    #: Most bytes of keys and values in one batch request (Upstash refuses 10 MB).
    batch_bytes = 4 * 1024 * 1024

    def __init__(self, base: str = "") -> None:
        self.base = check_base(base)
        self._namespace = f"{base}:" if base else ""

    @abstractmethod
    def send(self, commands: Sequence[Command], *, atomic: bool, idempotent: bool) -> list[Reply]:
        """Run ``commands`` in one round trip and return their replies, in order.

        ``atomic``: run them as one transaction (``MULTI``/``EXEC``).
        ``idempotent``: repeating them is harmless, so a failed attempt may be
        retried. An error reply raises :class:`~hubkv.errors.DriverError`.
        """

    def describe(self) -> str:
        return f"base={self.base!r}" if self.base else "(no base)"

    # -- key layout ------------------------------------------------------

    def _key(self, key: str) -> str:
        return self._namespace + key

    def _pattern(self, prefix: str) -> str:
        return escape_glob(self._namespace + prefix) + "*"

    def _run(self, *command: Arg, idempotent: bool = True) -> Reply:
        return self.send([command], atomic=False, idempotent=idempotent)[0]

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return self._bytes_or_none(self._run("GET", self._key(key)))

    def has(self, key: str) -> bool:
        return self._run("EXISTS", self._key(key)) == 1

    def ttl(self, key: str) -> float | None:
        remaining = self._run("PTTL", self._key(key))
        if remaining == -2:
            raise KeyError(key)
        return self._seconds(remaining)

    def ttl_many(self, keys: Sequence[str]) -> dict[str, float | None]:
        # One PTTL per key, pipelined: one round trip per batch_keys keys (not a
        # transaction: each reply stands alone, and a pipeline blocks no one).
        found: dict[str, float | None] = {}
        for chunk in self._chunks(keys, len):
            replies = self.send(
                [("PTTL", self._key(key)) for key in chunk], atomic=False, idempotent=True
            )
            for key, remaining in zip(chunk, replies, strict=True):
                if remaining != -2:
                    found[key] = self._seconds(remaining)
        return found

    def _seconds(self, remaining: Reply) -> float | None:
        """A PTTL reply other than -2 (missing) as seconds left, ``None`` for -1 (no TTL)."""
        if not isinstance(remaining, int) or remaining < -1:
            raise self._unexpected("PTTL", remaining)
        return None if remaining == -1 else remaining / 1000

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in self._chunks(keys, len):
            replies = self._run("MGET", *map(self._key, chunk))
            if not isinstance(replies, list) or len(replies) != len(chunk):
                raise self._unexpected("MGET", replies)
            for key, reply in zip(chunk, replies, strict=True):
                value = self._bytes_or_none(reply)
                if value is not None:
                    found[key] = value
        return found

    def iter_keys(self, prefix: str) -> Iterator[str]:
        # Streamed as SCAN returns them, repeats included. SCAN returns every key
        # that lives throughout the scan at least once, and a key twice only when
        # the database is resized between two steps; such a repeat can come any
        # number of pages later, so no bounded window of recent keys would catch
        # it, and a set of every key seen would hold the whole keyspace in memory
        # (a million keys are ~100 MB). The driver contract allows the repeat;
        # keys() de-duplicates, clear()'s UNLINK counts a key once, and tools'
        # writes are idempotent overwrites.
        for page in self._scan(prefix):
            yield from page

    def _scan(self, prefix: str) -> Iterator[list[str]]:
        """Pages of keys (relative to ``base``) starting with ``prefix``; may repeat keys."""
        pattern, cut, cursor = self._pattern(prefix), len(self._namespace), b"0"
        while True:
            reply = self._run("SCAN", cursor, "MATCH", pattern, "COUNT", str(self.scan_count))
            if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
                raise self._unexpected("SCAN", reply)
            page: list[str] = []
            for raw in reply[1]:
                if isinstance(raw, bytes):
                    try:
                        page.append(raw.decode()[cut:])
                    except UnicodeDecodeError:
                        continue  # not a key hubkv can name; left alone
            yield page
            cursor = reply[0] if isinstance(reply[0], bytes) else str(reply[0]).encode()
            if cursor == b"0":
                return

    # -- writes ----------------------------------------------------------

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self.send([self._set_command(key, value, ttl)], atomic=False, idempotent=True)

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        self.set_many_with_ttls([(key, value, ttl) for key, value in items])

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        # SET key value [PX ms] for each, in one MULTI/EXEC transaction per chunk.
        for chunk in self._chunks(items, _entry_size):
            commands = [self._set_command(key, value, ttl) for key, value, ttl in chunk]
            self.send(commands, atomic=len(commands) > 1, idempotent=True)

    def delete(self, key: str) -> None:
        self._run("UNLINK", self._key(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        for chunk in self._chunks(keys, len):
            self._run("UNLINK", *map(self._key, chunk))

    def clear(self, prefix: str) -> int:
        removed = 0
        # Keys of successive SCAN pages in full batches: a page of a big shared
        # database often holds only a few matches. A key SCAN repeats is harmless
        # (UNLINK counts only what it removed), so there is no de-duplication.
        for chunk in self._chunks(chain.from_iterable(self._scan(prefix)), len):
            # Not idempotent: a repeated UNLINK would count 0 for what the first removed.
            count = self._run("UNLINK", *map(self._key, chunk), idempotent=False)
            if not isinstance(count, int):
                raise self._unexpected("UNLINK", count)
            removed += count
        return removed

    def _set_command(self, key: str, value: bytes, ttl: float | None) -> list[Arg]:
        if ttl is None:
            return ["SET", self._key(key), value]
        return ["SET", self._key(key), value, "PX", px(ttl)]

    def _chunks(self, items: Iterable[_T], size: Callable[[_T], int]) -> Iterator[list[_T]]:
        """``items`` in runs of at most ``batch_keys`` items and about ``batch_bytes`` bytes.

        An item larger than ``batch_bytes`` goes alone. ``items`` is consumed as
        the runs are taken, so it may be a stream (``clear`` passes SCAN pages).
        """
        chunk: list[_T] = []
        total = 0
        for item in items:
            weight = size(item) + len(self._namespace)
            if chunk and (len(chunk) >= self.batch_keys or total + weight > self.batch_bytes):
                yield chunk
                chunk, total = [], 0
            chunk.append(item)
            total += weight
        if chunk:
            yield chunk

    def _bytes_or_none(self, reply: Reply) -> bytes | None:
        if reply is None or isinstance(reply, bytes):
            return reply
        raise self._unexpected("GET", reply)

    def _unexpected(self, command: str, reply: object) -> DriverError:
        return DriverError(
            f"{self.name} ({self.describe()}) answered {command} with {str(reply)[:100]!r}, "
            "which is not a Redis reply to it; is the URL pointing at the right service?"
        )


def _entry_size(entry: tuple[str, bytes, float | None]) -> int:
    return len(entry[0]) + len(entry[1])
