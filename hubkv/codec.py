"""Values to bytes and back, with msgspec JSON.

Every driver stores exactly these bytes, so a value written by one driver
reads back the same from any other, and from the JavaScript ``@vite-hub/kv``
(which also stores JSON).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from .errors import SerializationError

__all__ = ["encode", "encode_many", "decode", "MAX_DEPTH"]

#: Deepest nesting of lists and dicts a value may have. Deeper values are
#: refused when stored: decoding recurses once per level, so a deeper value
#: could be written but fail to read back in a caller that is itself deep in
#: the stack (Python allows 1000 frames by default).
MAX_DEPTH = 256

_encode = msgspec.json.Encoder().encode
_encode_lines = msgspec.json.Encoder().encode_lines
_decode_any = msgspec.json.Decoder().decode
#: Plain JSON bytes to a value: the first thing :func:`decode` tries without a
#: type (callers on a hot path use it directly, and call decode() if it raises).
decode_json = _decode_any
_typed_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

# For counting nesting (see _depth): every byte but brackets and quotes is
# dropped, and then braces count as square brackets.
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_SQUARE = bytes.maketrans(b"{}", b"[]")
# Digits masked to 0 and "+" to "-", so a UTC offset ("+05:30") is found by one plain search.
_MASK_OFFSETS = bytes.maketrans(b"123456789+", b"000000000-")


def encode(value: Any) -> bytes:
    """JSON bytes for ``value``; :class:`SerializationError` if JSON can't hold it.

    >>> encode({"theme": "system"})
    b'{"theme":"system"}'
    >>> encode(float("nan"))
    Traceback (most recent call last):
    ...
    hubkv.errors.SerializationError: NaN and infinities can't be stored as JSON; store None or a string instead
    """
    try:
        data = _encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise SerializationError(
            f"can't store a value of type {type(value).__name__} as JSON: {exc}; "
            "store JSON types, or a msgspec Struct, dataclass, datetime, UUID, bytes or enum"
        ) from None
    _check_encoded(value, data)
    return data


def encode_many(values: Sequence[Any]) -> list[bytes]:
    """What :func:`encode` gives for each of ``values`` (same errors), faster for many.

    One msgspec call writes them all as JSON lines (JSON never holds a raw
    newline), and the cheap looks of :func:`encode` run once over the lot;
    only when they find something is each value looked at alone.

    >>> encode_many([{"theme": "system"}, [1, 2]])
    [b'{"theme":"system"}', b'[1,2]']
    """
    try:
        lines = _encode_lines(values)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return [encode(value) for value in values]  # raises for the first bad value
    found = lines.split(b"\n")
    if len(found) != len(values) + 1:  # a msgspec.Raw value held a newline
        return [encode(value) for value in values]
    found.pop()  # the empty piece after the last newline
    if _needs_look(lines) or max(map(len, found), default=0) > 2 * MAX_DEPTH:
        for value, data in zip(values, found, strict=True):
            _check_encoded(value, data)
    return found


def _needs_look(data: bytes) -> bool:
    """Whether the JSON ``data`` may hide a non-finite float or a sub-minute UTC offset.

    msgspec writes non-finite floats as null, and rounds UTC offsets to whole
    minutes ("Z" or "+HH:MM"), silently moving such a datetime. (``find``,
    not ``in``: Python 3.11's ``in`` first tries the needle as an int.)
    """
    return data.find(b"null") >= 0 or _may_hold_offset(data)


def _check_encoded(value: Any, data: bytes) -> None:
    """Raise :class:`SerializationError` when ``data``, the JSON of ``value``, is not exact."""
    # Cheap looks at the JSON decide whether a (slow) walk of the value is needed.
    if _needs_look(data):
        problem = _unstorable(value)
        if problem is not None:
            raise SerializationError(problem)
    if (
        len(data) > 2 * MAX_DEPTH  # a shorter JSON can't nest deeper
        and data.count(b"[") + data.count(b"{") > MAX_DEPTH
        and _depth(data) > MAX_DEPTH
    ):
        raise SerializationError(
            f"the value nests lists or dicts deeper than {MAX_DEPTH} levels; "
            "store a flatter structure (e.g. a list of records with parent ids)"
        )


def decode(data: bytes, type: Any = None, key: str = "") -> Any:
    """The value stored as ``data``; decoded into ``type`` when given.

    Bytes that are not JSON come back as their text when they are UTF-8: that
    is how unstorage (the JavaScript original) stores plain strings.

    >>> decode(b'{"theme":"system"}')
    {'theme': 'system'}
    >>> decode(b'"2026-12-03"', type=__import__("datetime").date)
    datetime.date(2026, 12, 3)
    """
    if type is None:
        try:
            return _decode_any(data)
        except RecursionError:
            raise _too_deep(key) from None
        except msgspec.DecodeError:
            try:
                return data.decode()
            except UnicodeDecodeError:
                raise SerializationError(
                    f"the value stored under {key!r} is neither JSON nor UTF-8 text"
                ) from None
    decoder = _typed_decoders.get(type)
    if decoder is None:
        try:
            decoder = msgspec.json.Decoder(type)
        except TypeError as exc:
            raise SerializationError(
                f"type={type!r} is not a type msgspec can decode: {exc}"
            ) from None
        if len(_typed_decoders) < 256:
            _typed_decoders[type] = decoder
    try:
        return decoder.decode(data)
    except RecursionError:
        raise _too_deep(key) from None
    except msgspec.DecodeError as exc:
        raise SerializationError(
            f"the value stored under {key!r} does not fit type={_type_name(type)}: {exc}"
        ) from None


def _too_deep(key: str) -> SerializationError:
    # Only a value written by another client (or with a raised MAX_DEPTH) gets here.
    return SerializationError(
        f"the value stored under {key!r} nests too deeply to decode here "
        f"(hubkv writes at most {MAX_DEPTH} levels); rewrite it flatter"
    )


def _type_name(type: Any) -> str:
    return getattr(type, "__name__", None) or repr(type)


def _may_hold_offset(data: bytes) -> bool:
    """Whether ``data`` may hold a datetime or time with a UTC offset ("Z", "+05:30")."""
    # One-byte finds (memchr) first: most JSON has no "Z", and no "+" or "-".
    return (data.find(b"Z") >= 0 and data.find(b'Z"') >= 0) or (
        (data.find(b"+") >= 0 or data.find(b"-") >= 0)
        and data.translate(_MASK_OFFSETS).find(b'-00:00"') >= 0
    )


def _unstorable(value: Any) -> str | None:
    """Why ``value`` can't be stored exactly as JSON (a non-finite float, a
    sub-minute UTC offset), or ``None`` when it can."""
    try:
        pending = [msgspec.to_builtins(value, builtin_types=(datetime.datetime, datetime.time))]
    except (TypeError, ValueError, RecursionError):
        return None
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return "NaN and infinities can't be stored as JSON; store None or a string instead"
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):  # to_builtins keeps tuples (namedtuples too)
            pending.extend(item)
        elif isinstance(item, (datetime.datetime, datetime.time)):
            offset = item.utcoffset()
            if offset is not None and offset % datetime.timedelta(minutes=1):
                return (
                    f"{item!r} has a UTC offset of {offset}, which JSON (RFC 3339) can only "
                    "hold in whole minutes; convert it first, e.g. to UTC with "
                    ".astimezone(datetime.timezone.utc)"
                )
    return None


def _depth(data: bytes) -> int:
    """How deeply lists and dicts nest in the JSON ``data`` (C-speed steps only).

    >>> _depth(b'[1, {"a": [[], "[[["]}, "]]"]')
    4
    """
    # Escaped backslashes, then escaped quotes, go first; then only brackets
    # and quotes are kept, and the strings' contents dropped (usually there is
    # none left: empty pairs go in one replace).
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _NOT_STRUCTURE)
    brackets = structure.replace(b'""', b"")
    if b'"' in brackets:  # a string holds brackets: keep what is outside strings
        brackets = b"".join(structure.split(b'"')[::2])
    # Each round removes the innermost pairs: the rounds are the depth.
    brackets = brackets.translate(_SQUARE)
    depth = 0
    while brackets:
        inner_removed = brackets.replace(b"[]", b"")
        if len(inner_removed) == len(brackets):  # unbalanced: not JSON from msgspec
            break
        brackets, depth = inner_removed, depth + 1
    return depth
