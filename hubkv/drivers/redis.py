"""redis: any Redis server (or Valkey, KeyDB, ...) through redis-py, ``pip install 'hubkv[redis]'``.

One redis-py connection pool per store (thread-safe; a forked child opens its
own connections), socket timeouts, and redis-py's retries with exponential
backoff on connection errors for every command that is safe to repeat. The
``UNLINK`` of ``clear()`` is not (a repeat would count 0 for the keys the first
removed): it is sent once, on a pooled connection without redis-py's retries,
and its error says it may or may not have been applied, as with ``upstash``.
A batch is one round trip: ``MGET``, one ``UNLINK`` with many keys, or one
``MULTI``/``EXEC`` pipeline of ``SET`` commands.

The keys, values and commands are those of :mod:`hubkv.drivers.redis_common`,
shared with the ``upstash`` driver: on Vercel, ``KV_URL`` (``rediss://``) and
the ``KV_REST_API_*`` variables reach the same data, and both drivers read it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, unquote_plus, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import to_bool
from redis.retry import Retry

from ..errors import AuthenticationError, ConfigError, DriverError, UnavailableError
from .http import check_retries, check_timeout, is_loopback
from .redis_common import Command, RedisCommandsDriver, Reply

__all__ = ["RedisDriver", "URL_VARIABLES"]

#: Environment variables holding the URL, in the order they are looked for.
URL_VARIABLES = ("REDIS_URL", "KV_URL")

log = logging.getLogger(__name__)

#: redis-py's URL query options that hubkv passes on, by scheme. Others are refused when
#: the store is created: redis-py would raise a bare TypeError at the first command, or
#: change what hubkv relies on (raw replies, its own timeouts and retries).
_URL_OPTIONS = {"db", "username", "password", "client_name", "health_check_interval"}
_TCP_OPTIONS = {"socket_keepalive"}
_TLS_OPTIONS = {
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_ca_data",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_min_version",
    "ssl_ciphers",
    "ssl_include_verify_flags",
    "ssl_exclude_verify_flags",
    "ssl_cert_reqs",  # not "none", unless allow_unverified_tls
    "ssl_check_hostname",  # true only, unless allow_unverified_tls
}
#: Query options naming a secret: scrubbed from every message.
_SECRET_OPTIONS = ("password", "ssl_password")
#: What hubkv's own options set: a URL must not override them behind its back.
_HUBKV_OWNS = {
    "socket_timeout": "timeout",
    "socket_connect_timeout": "timeout",
    "timeout": "timeout",
    "retry_on_timeout": "retries",
    "retry_on_error": "retries",
    "max_connections": "max_connections",
}


class RedisDriver(RedisCommandsDriver):
    """A Redis server through redis-py.

    Options:

    - ``url``: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``
      (TLS) or ``unix:///path/to/redis.sock``; by default from ``REDIS_URL``,
      else ``KV_URL`` (Vercel KV's);
    - ``base``: a namespace, so apps can share a database (``base:key``);
    - ``timeout``: seconds to wait for the server (default 10);
    - ``retries``: attempts after the first on connection errors (default 3);
    - ``max_connections``: size of the connection pool (default 32);
    - ``allow_plaintext``: allow ``redis://`` to a host other than this
      machine (default False: use ``rediss://``, so the password and the data
      don't cross the network in clear text; set it for a private network
      you trust);
    - ``allow_unverified_tls``: let the URL's ``ssl_cert_reqs=none`` or
      ``ssl_check_hostname=false`` take effect, with a
      warning logged (default False: refused, as they let anyone in the middle
      read the password and the data). To trust a private certificate
      authority, add ``ssl_ca_certs=/path/to/ca.pem`` to the URL instead.

    Other URL query options redis-py knows that hubkv passes on: ``db``,
    ``username``, ``password``, ``client_name``, ``health_check_interval``,
    ``socket_keepalive`` and, for ``rediss://``, the ``ssl_*`` ones (CA,
    client certificate, ciphers, minimum version, verify flags).

    >>> RedisDriver(url="redis://:secret@127.0.0.1:6379/0", base="app")
    <RedisDriver redis://127.0.0.1:6379/0 base='app'>
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        base: str = "",
        timeout: float = 10.0,
        retries: int = 3,
        max_connections: int = 32,
        allow_plaintext: bool = False,
        allow_unverified_tls: bool = False,
    ) -> None:
        super().__init__(base)
        check_timeout("timeout", timeout)
        check_retries(retries)
        if isinstance(max_connections, bool) or not (
            isinstance(max_connections, int) and max_connections >= 1
        ):
            raise ConfigError(
                f"max_connections must be a whole number >= 1, got {max_connections!r}"
            )
        if url is None:
            url = next((os.environ[name] for name in URL_VARIABLES if os.environ.get(name)), None)
        if not url:
            raise ConfigError(
                "the redis driver needs a server URL: set REDIS_URL (or KV_URL), "
                "or pass url='redis://host:6379/0'"
            )
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:  # it names the port or the brackets, never the password
            raise ConfigError(f"invalid redis url: {exc}") from None
        query = parse_qs(parts.query)  # as redis-py reads it: blank values are ignored
        self._secrets = _url_secrets(parts)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                "url must start with redis://, rediss:// or unix://, "
                f"got {_shown(parts) if parts.scheme else 'no scheme'}"
            )
        if (
            parts.scheme == "redis"
            and not allow_plaintext
            and not is_loopback(parts.hostname or "")
        ):
            raise ConfigError(
                f"url {_shown(parts)!r} would send the password and the data in clear text: "
                "use rediss:// (TLS), or pass allow_plaintext=True for a private network you trust"
            )
        self._check_query(parts, query, allow_unverified_tls)
        self.url = _shown(parts)
        try:
            self.client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=min(timeout, 5.0),
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries),
                max_connections=max_connections,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid redis url: {self._scrub(str(exc))}") from None
        # Raw replies (bytes, ints, lists), as redis_common expects: no redis-py
        # conversions (SET -> True, SCAN -> (int, list), ...).
        self.client.response_callbacks.clear()
        #: Round trips made (one per command or pipeline); for tests and benchmarks.
        self.round_trips = 0

    def describe(self) -> str:
        return f"{self.url} {super().describe()}" if self.base else self.url

    def _check_query(
        self, parts: SplitResult, query: dict[str, list[str]], allow_unverified_tls: bool
    ) -> None:
        """Refuse the URL's query options hubkv does not pass on, and, unless allowed,
        those that turn TLS certificate verification off; log a warning if allowed."""
        supported = _URL_OPTIONS | (_TLS_OPTIONS if parts.scheme == "rediss" else set())
        supported |= _TCP_OPTIONS if parts.scheme != "unix" else set()
        for name in query:
            if name in _HUBKV_OWNS:
                raise ConfigError(
                    f"url option {name} is set by hubkv: use the {_HUBKV_OWNS[name]} option instead"
                )
            if name not in supported:
                hint = " (TLS options need rediss://)" if name.startswith("ssl_") else ""
                raise ConfigError(
                    f"url option {name[:40]!r} is not supported by the redis driver{hint}; "
                    f"supported: {', '.join(sorted(supported))}"
                )
        cert_reqs = query.get("ssl_cert_reqs", [])
        if any(value not in ("required", "optional", "none") for value in cert_reqs):
            raise ConfigError(
                "url option ssl_cert_reqs must be required (the default) or optional, "
                f"got {', '.join(repr(value[:20]) for value in cert_reqs)}"
            )
        off = [f"ssl_cert_reqs={value}" for value in cert_reqs if value == "none"]
        off += [
            f"ssl_check_hostname={value[:20]}"
            for value in query.get("ssl_check_hostname", [])
            if to_bool(value) is False  # type: ignore[no-untyped-call]  # as redis-py reads it
        ]
        if not off:
            return
        what = f"url {_shown(parts)!r} turns TLS certificate verification off ({', '.join(off)})"
        if not allow_unverified_tls:
            raise ConfigError(
                f"{what}: anyone in the middle could then read the password and the data. "
                "To trust a private certificate authority, add ssl_ca_certs=/path/to/ca.pem "
                "(or ssl_ca_path=/path/to/dir) to the URL instead; if the server's certificate "
                "can't be verified at all (self-signed), pass allow_unverified_tls=True to "
                "accept that risk"
            )
        log.warning(
            "%s, as allow_unverified_tls=True allows: the connection can be intercepted; "
            "prefer trusting the server's certificate authority with ssl_ca_certs",
            what,
        )

    def close(self) -> None:
        """Close the pool's connections; the next command opens new ones."""
        self.client.connection_pool.disconnect()

    def send(self, commands: Sequence[Command], *, atomic: bool, idempotent: bool) -> list[Reply]:
        """One round trip: the command itself, or a pipeline (``MULTI``/``EXEC`` if ``atomic``).

        Only single commands are ever sent as not ``idempotent`` (``clear()``'s ``UNLINK``).
        """
        self.round_trips += 1
        try:
            if len(commands) == 1 and not atomic:
                if not idempotent:
                    return [self._once(commands[0])]
                return [self.client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
            with self.client.pipeline(transaction=atomic) as pipe:
                for command in commands:
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                replies: list[Any] = pipe.execute()
                return replies
        except redis.RedisError as exc:
            raise self._error(exc, idempotent) from None

    def _once(self, command: Command) -> Reply:
        """``command`` sent once: what ``execute_command`` does, without its retries.

        redis-py retries inside ``execute_command`` with the connection's ``Retry``;
        here a pooled connection sends and reads directly (connecting may still be
        retried: nothing has been sent then). A failed connection is dropped, so
        that no late reply is read as the next command's.
        """
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command(*command)  # type: ignore[no-untyped-call]
            reply: Reply = self.client.parse_response(connection, str(command[0]))  # type: ignore[no-untyped-call]
            return reply
        except redis.ResponseError:
            raise  # the server answered: the connection is in step
        except BaseException:
            connection.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            pool.release(connection)

    def _error(self, exc: redis.RedisError, idempotent: bool = True) -> DriverError:
        where = f"redis at {self.url}"
        text = self._scrub(str(exc)) or type(exc).__name__
        if isinstance(exc, (redis.AuthenticationError, redis.exceptions.NoPermissionError)) or (
            text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))
        ):
            return AuthenticationError(
                f"{where} refused the credentials ({text}); check the user and password in the URL"
            )
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            unsure = (
                ""
                if idempotent
                else "; the write may or may not have been applied, check before repeating it"
            )
            return UnavailableError(
                f"{where} could not be reached or did not answer in time ({text}){unsure}; "
                "check that the server runs and the URL, or retry later"
            )
        return DriverError(f"{where} answered with an error: {text}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _url_secrets(parts: SplitResult) -> list[str]:
    """The password and secret query values of a URL, as written and decoded, longest first."""
    found = [parts.password or ""]
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if unquote_plus(name) in _SECRET_OPTIONS:
            found.append(value)
    secrets = {
        form
        for secret in found
        if secret
        for form in (secret, unquote(secret), unquote_plus(secret))
    }
    return sorted((secret for secret in secrets if secret), key=len, reverse=True)


def _shown(parts: SplitResult) -> str:
    """The URL without credentials or query (which may hold ``password=``, ``ssl_password=``)."""
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
