"""The HTTP session that remote drivers share, owned in one place.

One pooled :class:`requests.Session` per store, with connect and read
timeouts, bounded retries with exponential backoff and jitter, ``Retry-After``
honoured (seconds or an HTTP date), and failures mapped to typed
:class:`~hubkv.errors.DriverError` subclasses. Retries happen only for
idempotent requests: a request that may have reached the server is never sent
twice unless repeating it is harmless.

Secrets (tokens) live only in the session's headers; every message built
here is scrubbed of them, and ``repr`` shows the host only.
"""

from __future__ import annotations

import ipaddress
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
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

__all__ = ["HTTPClient", "check_retries", "check_timeout", "check_url", "is_loopback"]

#: Statuses worth retrying (for idempotent requests): rate limits and server errors.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Longest timeout accepted, in seconds (a day): sockets refuse far larger ones.
MAX_TIMEOUT = 86400.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, option: str) -> str:
    """``url`` without a trailing slash, if it is ``https://`` (or ``http://`` to loopback).

    Raises :class:`ConfigError` otherwise, before any request: a token must
    never travel in clear text over a network.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{option} must be an https:// URL, got {_without_secrets_in_url(url)!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{option} must use https:// ({_without_secrets_in_url(url)!r} would send the token "
            "in clear text); plain http:// is allowed only to localhost"
        )
    if parts.username or parts.password:
        raise ConfigError(f"{option} must not contain credentials; pass the token separately")
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


def _without_secrets_in_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


class HTTPClient:
    """Requests to one service, with pooling, timeouts, retries and error mapping.

    ``describe_error(response)`` extracts the service's own error message from
    a failed response (it is scrubbed of secrets before it is shown).
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

    def session(self) -> requests.Session:
        """The pooled session, (re)created on first use and in a forked child."""
        if self._session is None or self._pid != os.getpid():
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
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
        """
        import requests

        url = self.base_url + path
        accepted = set(ok_statuses)
        attempt = 0
        while True:
            wait: float | None = None
            try:
                self.requests_sent += 1
                response = self.session().request(method, url, timeout=self.timeout, **kwargs)
            except requests.exceptions.SSLError as exc:  # not retried: it would fail again
                trusted = "CERTIFICATE_VERIFY_FAILED" not in str(exc)
                raise DriverError(
                    f"{self.service} at {self.host}: "
                    f"{'the TLS handshake failed' if trusted else 'its TLS certificate is not trusted'}"
                    " (hubkv never turns certificate verification off); check the URL, and that "
                    "this machine trusts the server's certificate authority"
                ) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # connection lost mid-body
            ) as exc:
                failure: DriverError = self._connection_error(exc, idempotent)
            except requests.RequestException as exc:  # a malformed request or answer
                raise DriverError(
                    f"{self.service} at {self.host}: the request failed "
                    f"({type(exc).__name__}: {self.scrub(str(exc))})"
                ) from None
            else:
                if response.status_code < 400 or response.status_code in accepted:
                    return response
                failure = self.error_for(response)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                wait = _retry_after(response)
                if wait is not None and wait > self.max_retry_after:
                    raise failure
            if not idempotent or attempt >= self.retries:
                raise failure
            self.wait_before_retry(attempt, wait)
            attempt += 1

    def wait_before_retry(self, attempt: int, seconds: float | None = None) -> None:
        """Sleep before retry number ``attempt + 1``: ``seconds`` (a ``Retry-After``) if given,
        else exponential backoff with jitter (0.5x to 1.5x of ``backoff * 2**attempt``, capped
        at ``max_backoff``), so that clients failing together don't retry together.

        Drivers use it for their own retries too (Cloudflare's ``unsuccessful_keys``).
        """
        if seconds is None:
            seconds = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.5)
        time.sleep(seconds)

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

    def _connection_error(self, exc: Exception, idempotent: bool) -> UnavailableError:
        import requests

        kind = "timed out" if isinstance(exc, requests.Timeout) else "could not be reached"
        unsure = (
            ""
            if idempotent
            else "; the write may or may not have been applied, check before repeating it"
        )
        return UnavailableError(
            f"{self.service} at {self.host} {kind} ({type(exc).__name__}){unsure}; "
            "check the URL and the network, or retry later"
        )


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
