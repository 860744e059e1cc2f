"""Values to bytes and back, with msgspec JSON.

Every driver stores exactly these bytes, so a value written by one driver
reads back the same from any other, and from the JavaScript ``@vite-hub/kv``
(which also stores JSON).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from .errors import SerializationError

__all__ = ["encode", "decode"]

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
_typed_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


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
    # msgspec writes non-finite floats as null. Only then is a (slow) look for
    # them worth it; a value without "null" in its JSON has none.
    if b"null" in data and _has_non_finite_float(value):
        raise SerializationError(
            "NaN and infinities can't be stored as JSON; store None or a string instead"
        )
    return data


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
    except msgspec.DecodeError as exc:
        raise SerializationError(
            f"the value stored under {key!r} does not fit type={_type_name(type)}: {exc}"
        ) from None


def _type_name(type: Any) -> str:
    return getattr(type, "__name__", None) or repr(type)


def _has_non_finite_float(value: Any) -> bool:
    try:
        pending = [msgspec.to_builtins(value)]
    except (TypeError, ValueError, RecursionError):
        return False
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
