"""The exceptions hubkv raises. Every one is a :class:`KVError`.

Messages say what went wrong and what to do about it; they never contain
credentials (tokens, passwords in URLs).
"""

from __future__ import annotations

__all__ = [
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


class KVError(Exception):
    """Base class of every error hubkv raises."""


class InvalidKeyError(KVError, ValueError):
    """A key or prefix breaks the key rules (type, length, characters).

    >>> from hubkv import KV
    >>> KV("memory").get("")
    Traceback (most recent call last):
    ...
    hubkv.errors.InvalidKeyError: invalid key '': a key must be 1 to 512 bytes of UTF-8
    """


class InvalidTTLError(KVError, ValueError):
    """A TTL that is not a finite number of seconds > 0 (and at most ten years)."""


class SerializationError(KVError, TypeError):
    """A value can't be stored as JSON, or a stored value doesn't fit ``type=``."""


class ValueTooLargeError(KVError, ValueError):
    """An encoded value is larger than the store's ``max_value_bytes``."""


class ConfigError(KVError):
    """The configuration names an unknown driver or option, or misses a credential."""


class ReadOnlyError(KVError):
    """A write was attempted on a read-only store or view; nothing was written."""


class DriverError(KVError):
    """The storage behind the driver failed (I/O, locking, a remote service)."""


class AuthenticationError(DriverError):
    """The remote service refused the credentials."""


class RateLimitedError(DriverError):
    """The remote service kept answering 429 after the allowed retries."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the service asked to wait, when it said.
        self.retry_after = retry_after


class UnavailableError(DriverError):
    """The remote service could not be reached or kept failing (timeouts, 5xx, resets)."""


class RequestTooLargeError(DriverError):
    """The remote service refused a request as too large."""
