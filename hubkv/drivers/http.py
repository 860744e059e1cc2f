"""The HTTP session that remote drivers share, owned in one place.

One pooled :class:`requests.Session` per store, with deadlines, bounded retries
with exponential backoff and jitter, ``Retry-After`` honoured (seconds or an
HTTP date), and failures mapped to typed :class:`~hubkv.errors.DriverError`
subclasses. Retries happen only for idempotent requests: a request that may
have reached the server is never sent twice unless repeating it is harmless.

Deadlines, not only socket timeouts: ``requests``' timeouts bound each socket
read, so a server trickling its answer a byte at a time would hold a call for
as long as it likes. Here each attempt has a deadline (``timeout`` seconds,
from connecting to the last byte of the answer): one watchdog thread shuts the
attempt's socket down when it passes. The whole call, retries and the waits
between them included, has a deadline too (:attr:`HTTPClient.call_timeout`).

Secrets (tokens) live only in the session's headers; every message built
here is scrubbed of them, and ``repr`` shows the host only.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import ipaddress
import itertools
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from time import monotonic  # not through ``time``: tests replace time.sleep, never the clock
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import (
    AuthenticationError,
    ConfigError,
    DriverError,
    RateLimitedError,
    RequestTooLargeError,
    UnavailableError,
)

if TYPE_CHECKING:
    import requests
    from requests.adapters import HTTPAdapter

__all__ = ["HTTPClient", "check_retries", "check_timeout", "check_url", "is_loopback"]

#: Statuses worth retrying (for idempotent requests): rate limits and server errors.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Longest timeout accepted, in seconds (a day): sockets refuse far larger ones.
MAX_TIMEOUT = 86400.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine without asking DNS: exactly ``localhost``, or a
    literal loopback address (127.0.0.0/8, ``::1``).

    Not ``*.localhost`` nor ``localhost.localdomain``: glibc resolves those through
    DNS (and ``/etc/hosts`` may say anything), so they may be another host.

    >>> [is_loopback(h) for h in ("localhost", "127.8.9.10", "[::1]", "app.localhost", "10.0.0.1")]
    [True, True, True, False, False]
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == _LOOPBACK_V6  # a scoped ::1%eth0 or a mapped ::ffff:127.0.0.1: no


_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


def check_url(url: str, option: str) -> str:
    """``url`` without a trailing slash, if it is ``https://`` (or ``http://`` to loopback).

    Raises :class:`ConfigError` otherwise, before any request: a token must
    never travel in clear text over a network. The URL is a base that paths are
    appended to, so it takes no query or fragment; no message shows a user, a
    password or a query (they may hold secrets).
    """
    if "@" in url:
        raise ConfigError(
            f"{option} must be an https:// URL without credentials (user:password@); "
            "pass the token separately"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ConfigError(f"{option} is not a valid URL ({exc})") from None
    shown = _without_query(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} must be an https:// URL, got {shown!r}")
    if "?" in url or "#" in url:
        raise ConfigError(
            f"{option} must not have a query or fragment (after {shown!r}): "
            "request paths are appended to it"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{option} must use https:// ({shown!r} would send the token in clear text); "
            "plain http:// is allowed only to localhost and loopback addresses (127.0.0.0/8, ::1)"
        )
    return url.rstrip("/")


def check_timeout(option: str, seconds: float) -> float:
    """``seconds`` if it is a usable timeout (more than 0, at most a day), else :class:`ConfigError`.

    Shared by every remote driver (the redis driver's sockets too).
    """
    if not 0 < seconds <= MAX_TIMEOUT:  # NaN fails too
        raise ConfigError(
            f"{option} must be more than 0 and at most {MAX_TIMEOUT:,.0f} seconds, got {seconds!r}"
        )
    return seconds


def check_retries(retries: int) -> int:
    """``retries`` if it is a whole number from 0 to 10, else :class:`ConfigError`."""
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigError(f"retries must be a whole number from 0 to 10, got {retries!r}")
    return retries


def _without_query(url: str) -> str:
    """``url`` up to its query or fragment, at most 100 characters."""
    return url.split("?", 1)[0].split("#", 1)[0][:100]


#: A header value HTTP can carry as given: printable ASCII, no space at either end.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")


class HTTPClient:
    """Requests to one service, with pooling, deadlines, retries and error mapping.

    ``timeout`` bounds each attempt as a whole (connecting, sending, and
    receiving the whole answer), not each socket read; ``connect_timeout``
    bounds connecting within it. ``describe_error(response)`` extracts the
    service's own error message from a failed response (it is scrubbed of
    secrets before it is shown).
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        headers: Mapping[str, str],
        secrets: Iterable[str],
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        verify: bool | str = True,
        describe_error: Callable[[requests.Response], str] | None = None,
    ) -> None:
        check_timeout("timeout", timeout)
        check_timeout("connect_timeout", connect_timeout)
        check_retries(retries)
        if not all(_HEADER_VALUE.fullmatch(value) for value in headers.values()):
            # Else requests or http.client would raise at the first request, naming the value.
            raise ConfigError(
                f"the credentials for {service} hold a character an HTTP header can't carry "
                "(a control or non-ASCII character, or a space at either end); check that the "
                "token was copied whole and alone"
            )
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.host = urlsplit(self.base_url).netloc
        self.timeout = (connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.verify = verify
        self._headers = dict(headers)
        self._secrets = [secret for secret in secrets if secret]
        self._describe_error = describe_error
        self._session: requests.Session | None = None
        self._pid = os.getpid()
        #: Requests sent (attempts, retries included); for tests and benchmarks.
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"<HTTPClient {self.service} {self.host}>"

    @property
    def call_timeout(self) -> float:
        """The deadline of a whole :meth:`request`, in seconds: every attempt at its full
        ``timeout``, plus the longest backoff waits between them (``backoff * 2**n``,
        jittered up to 1.5x, capped at ``max_backoff``). A ``Retry-After`` that would
        take the call past it is not waited for.

        >>> HTTPClient("https://kv.example.com", service="KV", headers={}, secrets=[],
        ...            timeout=0.3, retries=2).call_timeout
        2.025
        """
        waits = sum(min(self.max_backoff, self.backoff * 2.0**n) * 1.5 for n in range(self.retries))
        return round(self.timeout[1] * (self.retries + 1) + waits, 6)

    def session(self) -> requests.Session:
        """The pooled session, (re)created on first use and in a forked child."""
        if self._session is None or self._pid != os.getpid():
            import requests

            session = requests.Session()
            adapter = _adapter_class()(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update(self._headers)
            session.verify = self.verify
            session.trust_env = False  # no proxies or .netrc credentials picked up silently
            self._session, self._pid = session, os.getpid()
        return self._session

    def close(self) -> None:
        """Close pooled connections; the next request opens new ones."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        ok_statuses: Iterable[int] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; return the response when it succeeded (or is in ``ok_statuses``).

        Connection failures, timeouts, 429 and 5xx are retried with backoff
        when ``idempotent``; every other failure raises a typed DriverError.
        Each attempt ends by its deadline (``timeout``), the call by
        :attr:`call_timeout`, however slowly the server answers.
        """
        import requests

        url = self.base_url + path
        accepted = set(ok_statuses)
        connect_timeout, timeout = self.timeout
        call_deadline = monotonic() + self.call_timeout
        attempt = 0
        while True:
            wait: float | None = None
            timed_out = False
            started = monotonic()
            guard = _Attempt(min(started + timeout, call_deadline))
            left = max(guard.deadline - started, 0.001)
            try:
                self.requests_sent += 1
                with guard:
                    response = self.session().request(
                        method, url, timeout=(min(connect_timeout, left), left), **kwargs
                    )
            except requests.RequestException as exc:
                # Checked first: cutting the socket at the deadline surfaces as any of these.
                if guard.expired or isinstance(exc, requests.Timeout):
                    timed_out = True
                elif isinstance(exc, requests.exceptions.SSLError):
                    # Not retried: it would fail again.
                    trusted = "CERTIFICATE_VERIFY_FAILED" not in str(exc)
                    raise DriverError(
                        f"{self.service} at {self.host}: "
                        f"{'the TLS handshake failed' if trusted else 'its TLS certificate is not trusted'}"
                        " (hubkv never turns certificate verification off); check the URL, and that "
                        "this machine trusts the server's certificate authority"
                    ) from None
                elif isinstance(
                    exc,
                    (requests.ConnectionError, requests.exceptions.ChunkedEncodingError),
                ):  # refused, reset, or lost mid-body
                    failure: DriverError = self._no_answer(
                        f"could not be reached ({type(exc).__name__})", idempotent, attempt
                    )
                else:  # a malformed request or answer
                    raise DriverError(
                        f"{self.service} at {self.host}: the request failed "
                        f"({type(exc).__name__}: {self.scrub(str(exc))})"
                    ) from None
            else:
                if guard.expired:
                    # Cut at the deadline, yet parsed: headers or a body read to the end of
                    # the connection may be truncated.
                    timed_out = True
                elif response.status_code < 400 or response.status_code in accepted:
                    return response
                else:
                    failure = self.error_for(response)
                    if response.status_code not in RETRY_STATUSES:
                        raise failure
                    wait = _retry_after(response)
                    if wait is not None and wait > self.max_retry_after:
                        raise failure
            if timed_out:
                failure = self._no_answer(
                    f"timed out: no complete answer within {monotonic() - started:.1f} s "
                    f"(timeout={timeout:g})",
                    idempotent,
                    attempt,
                )
            if not idempotent or attempt >= self.retries:
                raise failure
            wait = self._backoff(attempt) if wait is None else wait
            if monotonic() + wait >= call_deadline:
                raise _noted(
                    failure,
                    f"not retried after {attempt + 1} attempt(s): waiting {wait:.1f} s more "
                    f"would pass the call's {self.call_timeout:g} s deadline (timeout x attempts, "
                    "plus backoff; a larger timeout allows longer waits)",
                )
            self.wait_before_retry(attempt, wait)
            attempt += 1

    def wait_before_retry(self, attempt: int, seconds: float | None = None) -> None:
        """Sleep before retry number ``attempt + 1``: ``seconds`` (a ``Retry-After``) if given,
        else exponential backoff with jitter (0.5x to 1.5x of ``backoff * 2**attempt``, capped
        at ``max_backoff``), so that clients failing together don't retry together.

        Drivers use it for their own retries too (Cloudflare's ``unsuccessful_keys``).
        """
        time.sleep(self._backoff(attempt) if seconds is None else seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2.0**attempt) * random.uniform(0.5, 1.5)

    def error_for(self, response: requests.Response) -> DriverError:
        """The typed error for a failed ``response``, its message scrubbed of secrets."""
        status = response.status_code
        detail = self._detail(response)
        where = f"{self.service} at {self.host}"
        if status in (401, 403):
            return AuthenticationError(
                f"{where} refused the credentials (HTTP {status}{detail}); "
                "check the token and its permissions"
            )
        if status == 429:
            retry_after = _retry_after(response)
            return RateLimitedError(
                f"{where} is rate limiting requests (HTTP 429{detail}); slow down or retry later",
                retry_after,
            )
        if status in (413, 414):
            return RequestTooLargeError(
                f"{where} refused a request as too large (HTTP {status}{detail}); "
                "store smaller values or use smaller batches"
            )
        if status >= 500:
            return UnavailableError(
                f"{where} failed (HTTP {status}{detail}); retry later or check the service status"
            )
        return DriverError(f"{where} refused the request (HTTP {status}{detail})")

    def read_json(self, response: requests.Response) -> Any:
        """The JSON body of ``response``; a typed error if it is not JSON.

        A body that is not JSON usually means something other than the API
        answered (a proxy, a captive portal, a wrong URL).
        """
        try:
            return response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "") or "no Content-Type"
            what = "an HTML page" if "html" in content_type.lower() else content_type
            raise DriverError(
                f"{self.service} at {self.host} answered HTTP {response.status_code} with "
                f"{what} that is not JSON; is a proxy or a wrong URL in the way?"
            ) from None

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _detail(self, response: requests.Response) -> str:
        text = ""
        if self._describe_error is not None:
            try:
                text = self._describe_error(response)
            except Exception:  # noqa: BLE001 - a malformed error body must not hide the status
                text = ""
        if not text:
            content_type = response.headers.get("Content-Type", "")
            if "html" in content_type.lower():
                text = "an HTML page, not the API: is a proxy or a wrong URL in the way?"
            else:
                text = response.text[:200].strip()
        return f": {self.scrub(text)}" if text else ""

    def _no_answer(self, what: str, idempotent: bool, attempt: int) -> UnavailableError:
        """The error for an attempt that got no answer: what happened, how many attempts
        were made (or that a write was not retried), and what to do."""
        then = (
            f"after {attempt + 1} attempt(s)"
            if idempotent
            else "not retried: the write may or may not have been applied, "
            "check before repeating it"
        )
        return UnavailableError(
            f"{self.service} at {self.host} {what}; {then}; "
            "check the URL and the network (a slow link or large values need a larger "
            "timeout), or retry later"
        )


def _noted(error: DriverError, note: str) -> DriverError:
    """``error`` again, same type (and ``retry_after``), with ``note`` added to its message."""
    if isinstance(error, RateLimitedError):
        return RateLimitedError(f"{error}; {note}", error.retry_after)
    return type(error)(f"{error}; {note}")


def _retry_after(response: requests.Response) -> float | None:
    """Seconds asked by a ``Retry-After`` header, if any: delta seconds or an HTTP date.

    A date is counted from now; one in the past is 0. Unparseable values are ignored.
    """
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime  # ~15 ms to import: only when needed

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):  # TypeError from some Python versions
        return None
    if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# -- deadlines ------------------------------------------------------------------


class _Attempt:
    """One attempt's deadline, and the connection it uses (set as the request starts).

    While active (``with attempt:``), the watchdog holds it; at the deadline it
    shuts the connection's socket down, which wakes a read blocked in any
    thread (headers or body, plain or TLS), and the attempt is ``expired``.
    """

    __slots__ = ("_connection", "_done", "_lock", "deadline", "expired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._done = False
        self._connection: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Attempt:
        _current.attempt = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.attempt = None
        with self._lock:
            self._done = True  # from now on the watchdog leaves the connection alone

    @property
    def done(self) -> bool:
        return self._done

    def uses(self, connection: Any) -> None:
        """``connection`` is about to carry this attempt's request (in this thread)."""
        with self._lock:
            self._connection = connection
            connection.hubkv_attempt = self

    def expire(self) -> None:
        """The deadline passed (in the watchdog's thread): cut the connection, unless the
        attempt ended meanwhile or the connection went on to another attempt."""
        with self._lock:
            if self._done:
                return
            self.expired = True
            connection = self._connection
            if connection is None or connection.hubkv_attempt is not self:
                return
            sock = connection.sock
            if isinstance(sock, socket.socket):  # an SSLSocket too: its file descriptor
                with contextlib.suppress(OSError):  # already closed
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()  # .attempt: the _Attempt the current thread is making


class _Watchdog:
    """One daemon thread that expires attempts at their deadlines, for every client.

    Attempts that end in time stay in the heap until their deadline comes up
    (or a clean-up drops them), so the thread wakes about once per deadline,
    not per request.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):  # a child has no thread, and maybe a held lock
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Attempt]] = []
        self._order = itertools.count()
        self._running = False
        self._clean_at = 1024

    def add(self, attempt: _Attempt) -> None:
        with self._wake:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="hubkv-http-deadlines", daemon=True).start()
            if len(self._heap) >= self._clean_at:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._clean_at = max(1024, 2 * len(self._heap))
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._heap[0][2] is attempt:
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                now = monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    heapq.heappop(self._heap)[2].expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()


@functools.cache
def _adapter_class() -> type[HTTPAdapter]:
    """A requests adapter whose connections report to the current :class:`_Attempt`.

    Built on first use, so that importing hubkv does not import requests.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Reporting:
        """Mixed into urllib3's connections: tells the current attempt which
        connection carries it, and refuses to wait for an answer past its deadline."""

        hubkv_attempt: _Attempt | None = None

        def putrequest(self, *args: Any, **kwargs: Any) -> None:
            attempt: _Attempt | None = getattr(_current, "attempt", None)
            if attempt is not None:
                attempt.uses(self)
            super().putrequest(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            attempt: _Attempt | None = getattr(_current, "attempt", None)
            if attempt is not None and attempt.expired:  # passed while connecting or sending
                raise TimeoutError("hubkv: the attempt's deadline passed")
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]

    class Connection(Reporting, HTTPConnection):
        pass

    class TLSConnection(Reporting, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    return Adapter
