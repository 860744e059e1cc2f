"""The KV store: the API every driver shares, validation, and prefixed views.

Data flows one way: the store validates the key (and TTL), encodes the value
with :mod:`hubkv.codec`, and hands a ``str`` key and ``bytes`` to the driver;
reads come back as bytes and are decoded here. Nothing reaches a driver
before every check has passed, so bad input never writes anything.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from . import codec
from .config import DEFAULT_MAX_VALUE_BYTES, resolve
from .drivers.base import Driver
from .errors import (
    InvalidKeyError,
    InvalidTTLError,
    ReadOnlyError,
    SerializationError,
    ValueTooLargeError,
)

__all__ = ["KV", "MAX_KEY_BYTES", "MAX_TTL", "DEFAULT_MAX_VALUE_BYTES", "validate_key"]

#: Longest key, in bytes of UTF-8 (Cloudflare's limit, applied everywhere).
MAX_KEY_BYTES = 512
#: Longest TTL accepted, in seconds (ten years); store without a TTL instead.
MAX_TTL = 10 * 365.25 * 24 * 3600

# Unicode category Cc (C0 controls, DEL, C1 controls) and lone surrogates,
# which can't be encoded as UTF-8.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MISSING = object()
# Characters of a key short enough to be at most MAX_KEY_BYTES in any case (4 bytes each).
_FAST_KEY_CHARS = MAX_KEY_BYTES // 4
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid key, else raise :class:`InvalidKeyError`.

    A key is a ``str`` of 1 to 512 bytes of UTF-8, not ``.`` or ``..``, with
    no control characters and no lone surrogates.

    >>> validate_key("users:42:profile")
    'users:42:profile'
    >>> validate_key("..")
    Traceback (most recent call last):
    ...
    hubkv.errors.InvalidKeyError: invalid key '..': '.' and '..' are not keys
    """
    # Fast path for the usual key: 3 to 128 characters (so at most 512 bytes of
    # UTF-8), all printable (isprintable() is False for controls and surrogates).
    if type(key) is str and 2 < len(key) <= _FAST_KEY_CHARS and key.isprintable():
        return key
    _check_text(key, "key")
    if not key:
        raise InvalidKeyError("invalid key '': a key must be 1 to 512 bytes of UTF-8")
    if key == "." or key == "..":
        raise InvalidKeyError(f"invalid key {key!r}: '.' and '..' are not keys")
    return key


def _plain_keys(keys: list[Any]) -> bool:
    """Whether ``keys`` is not empty and every key passes validate_key's fast
    path, checked in bulk (a str of them all, joined by spaces, is ASCII and
    printable; ``join`` refuses anything but str)."""
    try:
        joined = " ".join(keys)
    except TypeError:
        return False
    if not keys or not joined.isascii():
        return False
    lengths = set(map(len, keys))
    return (
        min(lengths) > 2
        and max(lengths) <= MAX_KEY_BYTES
        # ASCII is printable when deleting the printable bytes leaves nothing
        # (5x faster than str.isprintable on a long text).
        and not joined.encode().translate(None, _PRINTABLE_ASCII)
    )


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid prefix (like a key, but may be empty)."""
    if (  # fast path, as in validate_key
        type(prefix) is str
        and len(prefix) <= MAX_KEY_BYTES
        and prefix.isascii()
        and prefix.isprintable()
    ):
        return prefix
    _check_text(prefix, "prefix")
    return prefix


def _split_triples(
    triples: list[Any],
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[float | None, ...]] | None:
    """``(keys, values, ttls)`` of ``(key, value, float or None)`` tuples with valid
    TTLs and distinct keys, checked in bulk (the keys are checked by the caller);
    ``None`` when anything else is there, for the caller to check one by one."""
    if not triples or set(map(type, triples)) != {tuple} or set(map(len, triples)) != {3}:
        return None
    keys, values, ttls = zip(*triples, strict=True)
    types = set(map(type, ttls))
    if not types <= {float, type(None)}:
        return None
    real = [ttl for ttl in ttls if ttl is not None] if type(None) in types else ttls
    # The sum is NaN when a TTL is, so min and max (which skip NaN) then see every TTL.
    if real and not (math.isfinite(sum(real)) and min(real) > 0 and max(real) <= MAX_TTL):
        return None
    try:
        distinct = len(set(keys)) == len(keys)
    except TypeError:  # an unhashable key
        return None
    return (keys, values, ttls) if distinct else None


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise InvalidKeyError(f"a {what} must be a str, not {type(text).__name__}")
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"invalid {what} {text[:40]!r}...: {size} bytes of UTF-8, at most {MAX_KEY_BYTES} allowed"
        )
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise InvalidKeyError(
            f"invalid {what} {text!r}: character U+{ord(bad.group()):04X} at index {bad.start()} "
            "is a control character or a lone surrogate; use printable characters"
        )


def validate_ttl(ttl: float) -> float:
    """Return ``ttl`` as seconds if valid, else raise :class:`InvalidTTLError`."""
    if type(ttl) is not int and type(ttl) is not float:  # the usual cases, checked fast
        if isinstance(ttl, numbers.Real) and not isinstance(ttl, bool):
            return validate_ttl(float(ttl))  # numpy numbers, Fractions, int subclasses
        raise InvalidTTLError(
            f"ttl must be a number of seconds (int or float), not {type(ttl).__name__}"
        )
    if not (0 < ttl <= MAX_TTL) or not math.isfinite(ttl):
        raise InvalidTTLError(
            f"ttl must be > 0 and at most {MAX_TTL:.0f} seconds (ten years), got {ttl!r}; "
            "pass ttl=None for a key that never expires"
        )
    return float(ttl)


class KV:
    """A key-value store: small values addressed by string keys.

    ``KV()`` uses the resolved configuration (arguments, then ``HUBKV_*``
    environment variables, then ``[tool.hubkv]`` in ``pyproject.toml``, then
    host credentials, else fs-lite at ``.data/kv.sqlite3``).
    ``KV("fs-lite", path="data/app.sqlite3")`` names the driver and its
    options; a :class:`~hubkv.drivers.base.Driver` instance works too.

    >>> store = KV("memory")
    >>> store.set("settings", {"theme": "system"})
    >>> store.get("settings")
    {'theme': 'system'}
    >>> store.has("settings"), "settings" in store
    (True, True)
    >>> store.delete("settings")
    >>> store.get("settings", "fallback")
    'fallback'

    Store-level options: ``read_only=True`` (writes raise
    :class:`ReadOnlyError` before any I/O) and ``max_value_bytes`` (default
    25 MiB; larger values raise :class:`ValueTooLargeError`).
    """

    __slots__ = ("_driver", "_prefix", "_check", "_read_only", "_max_value_bytes", "_owns_driver")

    _driver: Driver
    _prefix: str
    _check: Callable[[str], str]
    _read_only: bool
    _max_value_bytes: int
    _owns_driver: bool

    def __init__(self, driver: str | Driver | None = None, /, **options: Any) -> None:
        resolved = resolve(driver, options)
        self._driver = resolved.driver
        self._prefix = ""
        self._check = validate_key
        self._read_only = resolved.read_only or resolved.driver.read_only
        self._max_value_bytes = resolved.max_value_bytes
        self._owns_driver = True

    # -- reading ---------------------------------------------------------

    def get(self, key: str, default: Any = None, *, type: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when it is missing.

        ``type=`` decodes into a msgspec Struct, dataclass, datetime, bytes,
        ``list[int]``, ... and raises :class:`SerializationError` when the
        stored value doesn't fit.

        >>> import datetime
        >>> store = KV("memory")
        >>> store.set("day", datetime.date(2026, 12, 3))
        >>> store.get("day"), store.get("day", type=datetime.date)
        ('2026-12-03', datetime.date(2026, 12, 3))
        """
        key = self._check(key)
        data = self._driver.get(key)
        if data is None:
            return default
        if type is None:
            try:
                return codec.decode_json(data)  # the usual case, a call less
            except Exception:
                pass  # not plain JSON: decode() says what it is
        return codec.decode(data, type, key)

    def has(self, key: str) -> bool:
        """Whether ``key`` exists (a stored ``None`` exists)."""
        return self._driver.has(self._check(key))

    def keys(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted by code point.

        The prefix is a plain string: ``keys("foo")`` lists ``foo``, ``foo:a``
        and ``foobar``; wildcard characters such as ``*`` or ``%`` are literal.

        >>> store = KV("memory")
        >>> store.set_many({"users:42:profile": {}, "users:42:prefs": {}, "users:7:profile": {}})
        >>> store.keys("users:42:")
        ['users:42:prefs', 'users:42:profile']
        """
        found = self._driver.keys(self._full_prefix(prefix))
        if self._prefix:
            cut = len(self._prefix)
            # A parent key equal to the view's prefix is not in the view (its
            # relative key would be empty).
            return [key[cut:] for key in found if len(key) > cut]
        return found

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, streamed in the driver's order (for huge stores)."""
        keys = self._driver.iter_keys(self._full_prefix(prefix))
        if self._prefix:
            cut = len(self._prefix)
            return (key[cut:] for key in keys if len(key) > cut)
        return keys

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires, ``None`` if never; :class:`KeyError` if missing."""
        return self._driver.ttl(self._check(key))

    def ttl_many(self, keys: Iterable[str]) -> dict[str, float | None]:
        """:meth:`ttl` of the present keys among ``keys``, in the order asked (missing ones left out).

        One request per batch on fs-lite, Upstash and Redis; on Cloudflare KV one
        per key (its listing is where TTLs are: use :meth:`iter_ttls` for many).

        >>> store = KV("memory")
        >>> store.set_many({"a": 1, "b": 2})
        >>> store.ttl_many(["b", "missing", "a"])
        {'b': None, 'a': None}
        """
        wanted = self._distinct_keys(keys)
        if not wanted:
            return {}
        found = self._driver.ttl_many(list(wanted.values()))
        return {relative: found[full] for relative, full in wanted.items() if full in found}

    def iter_ttls(self, prefix: str = "") -> Iterator[tuple[str, float | None]]:
        """``(key, seconds left or None)`` for the keys starting with ``prefix``, streamed.

        The keys of :meth:`iter_keys`, each with its :meth:`ttl`, read in batches
        (from the listing itself on Cloudflare KV): what an export reads.

        >>> store = KV("memory")
        >>> store.set("session", "abc", ttl=60)
        >>> [(key, round(ttl or 0)) for key, ttl in store.iter_ttls()]
        [('session', 60)]
        """
        entries = self._driver.iter_ttls(self._full_prefix(prefix))
        if self._prefix:
            cut = len(self._prefix)
            return ((key[cut:], ttl) for key, ttl in entries if len(key) > cut)
        return entries

    def get_many(self, keys: Iterable[str], *, type: Any = None) -> dict[str, Any]:
        """Values of the present keys among ``keys``, in the order asked.

        >>> store = KV("memory")
        >>> store.set_many({"a": 1, "b": 2})
        >>> store.get_many(["b", "missing", "a"])
        {'b': 2, 'a': 1}
        """
        wanted = self._distinct_keys(keys)
        if not wanted:
            return {}
        found = self._driver.get_many(list(wanted.values()))
        return {
            relative: codec.decode(found[full], type, full)
            for relative, full in wanted.items()
            if full in found
        }

    # -- writing ---------------------------------------------------------

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``ttl`` seconds or forever.

        Raises before writing anything if the key, value or TTL is invalid.
        """
        if self._read_only:
            raise self._read_only_error()
        key = self._check(key)
        data = self._encode(value, key)
        self._driver.set(key, data, None if ttl is None else validate_ttl(ttl))

    def set_many(
        self,
        items: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        ttl: float | None = None,
    ) -> None:
        """Store every ``key: value`` pair; all are validated before the first write.

        A key given twice keeps its last value.
        """
        if self._read_only:
            raise self._read_only_error()
        rows = self._encode_items(items)
        seconds = None if ttl is None else validate_ttl(ttl)
        if rows:
            self._driver.set_many(rows, seconds)

    def set_many_with_ttls(self, entries: Iterable[tuple[str, Any, float | None]]) -> None:
        """Store every ``(key, value, ttl)``, each for its own ``ttl`` seconds (``None``: forever).

        Validated as a whole before the first write, like :meth:`set_many`; a
        key given twice keeps its last value and TTL. One request per batch on
        every built-in driver, however the TTLs differ.

        >>> store = KV("memory")
        >>> store.set_many_with_ttls([("a", 1, None), ("b", 2, 3600)])
        >>> store.ttl("a"), round(store.ttl("b") or 0)
        (None, 3600)
        """
        if self._read_only:
            raise self._read_only_error()
        if isinstance(entries, (str, Mapping)):
            raise InvalidKeyError("set_many_with_ttls takes (key, value, ttl) triples")
        triples = entries if type(entries) is list else list(entries)
        split = _split_triples(triples)
        if split is not None:  # the usual case (a batch of an import or a copy), in bulk
            keys, values, ttls = split
            encoded = self._encode_plain(list(keys), list(values))
            if encoded is not None:
                self._driver.set_many_with_ttls(list(zip(keys, encoded, ttls, strict=True)))
                return
        # One by one, raising what the first bad entry has wrong.
        by_key: dict[str, tuple[Any, float | None]] = {}
        for entry in triples:
            try:
                if isinstance(entry, (str, bytes)):
                    raise TypeError
                key, value, ttl = entry
            except (TypeError, ValueError):
                raise InvalidKeyError(
                    f"set_many_with_ttls takes (key, value, ttl) triples, got the item {entry!r:.80}"
                ) from None
            if not isinstance(key, str):
                self._check(key)  # raises: a key must be a str
            by_key[key] = (value, None if ttl is None else validate_ttl(ttl))  # the last wins
        rows = self._encode_items({key: value for key, (value, _) in by_key.items()})
        if rows:  # in the order of by_key
            self._driver.set_many_with_ttls(
                [
                    (key, data, ttl)
                    for (key, data), (_, ttl) in zip(rows, by_key.values(), strict=True)
                ]
            )

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        if self._read_only:
            raise self._read_only_error()
        self._driver.delete(self._check(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove every key of ``keys`` (validated before the first delete)."""
        if self._read_only:
            raise self._read_only_error()
        wanted = self._distinct_keys(keys)
        if wanted:
            self._driver.delete_many(list(wanted.values()))

    def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix``; return how many were removed.

        ``clear()`` with no prefix removes everything (in a view: everything
        under the view's prefix). It removes exactly what ``keys(prefix)`` lists.
        """
        if self._read_only:
            raise self._read_only_error()
        full = self._full_prefix(prefix)
        if self._prefix and full == self._prefix and self._driver.has(full):
            # The parent's key equal to the view's prefix is not in the view: keep it.
            doomed = [key for key in self._driver.keys(full) if key != full]
            self._driver.delete_many(doomed)
            return len(doomed)
        return self._driver.clear(full)

    # -- views -----------------------------------------------------------

    def prefixed(self, prefix: str) -> KV:
        """A view whose keys are relative to ``prefix``; views nest.

        >>> store = KV("memory")
        >>> user = store.prefixed("users:42:")
        >>> user.set("prefs", {"lang": "en"})
        >>> store.keys(), user.keys()
        (['users:42:prefs'], ['prefs'])
        """
        validate_prefix(prefix)
        if not prefix:
            raise InvalidKeyError("a view's prefix must not be empty")
        full = validate_prefix(self._prefix + prefix)
        view = object.__new__(KV)
        view._driver = self._driver
        view._prefix = full
        view._check = view._check_relative
        view._read_only = self._read_only
        view._max_value_bytes = self._max_value_bytes
        view._owns_driver = False
        return view

    def read_only(self) -> KV:
        """A view of the same keys that refuses every write with :class:`ReadOnlyError`."""
        view = object.__new__(KV)
        for name in KV.__slots__:
            setattr(view, name, getattr(self, name))
        view._read_only = True
        view._owns_driver = False
        if view._prefix:
            view._check = view._check_relative
        return view

    @property
    def prefix(self) -> str:
        """The prefix of this view (``""`` for a whole store)."""
        return self._prefix

    @property
    def max_value_bytes(self) -> int:
        """The largest encoded value this store accepts, in bytes."""
        return self._max_value_bytes

    @property
    def is_read_only(self) -> bool:
        """Whether writes are refused."""
        return self._read_only

    @property
    def driver(self) -> Driver:
        """The driver behind this store."""
        return self._driver

    # -- lifecycle and Python protocols -----------------------------------

    def close(self) -> None:
        """Release connections and sessions; using the store again reopens them.

        Closing a view leaves its parent open.
        """
        if self._owns_driver:
            self._driver.close()

    def __enter__(self) -> KV:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __contains__(self, key: object) -> bool:
        return self.has(key)  # type: ignore[arg-type]  # validated: non-str raises

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if self._read_only:
            raise self._read_only_error()
        if not self.has(key):
            raise KeyError(key)
        self.delete(key)

    def __repr__(self) -> str:
        if not hasattr(self, "_driver"):  # __init__ failed (a traceback shows its locals)
            return "<KV (not configured)>"
        parts = [self._driver.describe()]
        if self._prefix:
            parts.append(f"prefix={self._prefix!r}")
        if self._read_only:
            parts.append("read-only")
        return f"<KV {self._driver.name} {' '.join(parts)}>"

    # -- internals -------------------------------------------------------

    def _check_relative(self, key: str) -> str:
        if type(key) is not str and not isinstance(key, str):
            raise InvalidKeyError(f"a key must be a str, not {type(key).__name__}")
        if not key:
            raise InvalidKeyError(
                f"invalid key '': a key relative to {self._prefix!r} must not be empty"
            )
        return validate_key(self._prefix + key)

    def _full_prefix(self, prefix: str) -> str:
        return validate_prefix(self._prefix + validate_prefix(prefix))

    def _distinct_keys(self, keys: Iterable[str]) -> dict[str, str]:
        if isinstance(keys, str):
            raise InvalidKeyError("pass an iterable of keys, not a single str")
        return {key: self._check(key) for key in keys}

    def _encode_items(
        self, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
    ) -> list[tuple[str, bytes]]:
        """(full key, encoded value) of every pair, or the first pair's error.

        A dict given to a whole store is checked and encoded in bulk when its
        keys are plain (see :func:`_plain_keys`); anything else, or any error,
        goes pair by pair, which raises exactly what it would have raised alone.
        """
        if isinstance(items, Mapping) and not self._prefix:
            keys = list(items)
            plain = self._encode_plain(keys, list(items.values()))
            if plain is not None:
                return list(zip(keys, plain, strict=True))
        pairs = items.items() if isinstance(items, Mapping) else items
        encoded: dict[str, bytes] = {}
        for pair in pairs:
            try:
                key, value = pair
            except (TypeError, ValueError):
                raise InvalidKeyError(
                    f"set_many takes a mapping or (key, value) pairs, got the item {pair!r:.80}"
                ) from None
            full = self._check(key)
            encoded[full] = self._encode(value, full)
        return list(encoded.items())

    def _encode_plain(self, keys: list[Any], values: list[Any]) -> list[bytes] | None:
        """The encoded ``values`` when this is a whole store, every key is plain (see
        :func:`_plain_keys`) and every value encodes within the size limit, checked
        in bulk; ``None`` otherwise (checking pair by pair then raises the first error)."""
        if self._prefix or not _plain_keys(keys):
            return None
        try:
            encoded = codec.encode_many(values)
        except SerializationError:
            return None
        if encoded and max(map(len, encoded)) <= self._max_value_bytes:
            return encoded
        return None

    def _encode(self, value: Any, key: str) -> bytes:
        data = codec.encode(value)
        if len(data) > self._max_value_bytes:
            raise ValueTooLargeError(
                f"the value for {key!r} is {len(data):,} bytes as JSON, over the limit of "
                f"{self._max_value_bytes:,} (max_value_bytes); KV is for small values: "
                "store large objects in a blob store and keep a reference here"
            )
        return data

    def _read_only_error(self) -> ReadOnlyError:
        where = f" (view {self._prefix!r})" if self._prefix else ""
        return ReadOnlyError(
            f"this store is read-only{where}: writes are refused; "
            "open it without read_only=True (and with a read-write credential) to write"
        )
