"""cloudflare-kv-binding: a Cloudflare Workers KV namespace over Cloudflare's REST API.

A Worker reaches a namespace through its binding (``env.KV``); a Python app
reaches the same namespace through the REST API, one blocking HTTPS request
per operation, through the store's pooled
:class:`~hubkv.drivers.http.HTTPClient` (timeouts, retries with backoff,
typed errors, the token kept out of every message). Routes, under
``{base_url}/accounts/{account_id}/storage/kv/namespaces/{namespace_id}``:

==============  ===================================================  ==========================
operation       request                                              requests
==============  ===================================================  ==========================
get             ``GET /values/{key}``                                1
set             ``PUT /values/{key}?expiration_ttl=N``               1
has             ``GET /metadata/{key}`` (no value downloaded)        1
delete          ``DELETE /values/{key}``                             1
ttl             ``GET /keys?prefix={key}&limit=10`` (``expiration``)  1
ttl_many        ``ttl`` of each key                                  1 per key
keys            ``GET /keys?prefix=&cursor=`` to the end             1 per 1,000 keys
iter_ttls       the same listing (its ``expiration`` fields)         1 per 1,000 keys
get_many        ``POST /bulk/get``                                   1 per 100 keys
set_many        ``PUT /bulk``                                        1 per 10,000 keys / 95 MB
  (_with_ttls)  (an ``expiration_ttl`` per item)
delete_many     ``POST /bulk/delete``                                1 per 10,000 keys
clear           ``keys`` then ``POST /bulk/delete``                  both of the above
==============  ===================================================  ==========================

Where TTLs come from: the key listing gives every key's ``expiration`` (Unix
seconds, omitted for keys that never expire, as Cloudflare documents it), so
``iter_ttls`` (what exports and copies read) costs nothing beyond the listing.
``POST /bulk/get`` with ``withMetadata`` returns a key's metadata, and
Cloudflare's schema lists an optional ``expiration`` there too, but the
runtime's own ``getWithMetadata`` has none: an absent field could mean "no
TTL" or "not reported", so TTLs are never taken from it (a TTL silently lost
would make a copy's keys permanent). Hence ``ttl_many`` of arbitrary keys is
one listing per key: batch TTL reads go through ``iter_ttls``.

Keys travel percent-encoded whole (``/``, ``?``, ``#``, ``%`` and all).
Replies are Cloudflare's envelope ``{"success", "errors", "result",
"result_info"}``; a 404 with code 10009 is a missing key, other failures are
typed by HTTP status (403 authentication, 429 rate limited with
``Retry-After``, 413/414 too large, 5xx unavailable) and by code (a 400 with
an authentication code is an :class:`~hubkv.errors.AuthenticationError`).
Bulk writes and deletes retry the keys Cloudflare reports as
``unsuccessful_keys``, after the HTTP client's jittered backoff. Every request
is safe to repeat (a write puts the same value again), so all are retried
after timeouts, 429 and 5xx.

Cloudflare KV is eventually consistent: a write is visible at once where it
was made but can take 60 s or more to reach other locations, and keys
expire no sooner than 60 s after a write (shorter TTLs are raised to 60 s,
with a warning). This module imports nothing slow; ``requests`` is loaded on
the first request.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import msgspec

from ..errors import AuthenticationError, ConfigError, DriverError, RequestTooLargeError
from .base import Driver, seconds_left
from .http import HTTPClient, check_url

if TYPE_CHECKING:
    import requests

__all__ = [
    "CloudflareKVDriver",
    "DEFAULT_BASE_URL",
    "MIN_TTL",
    "VARIABLES",
    "wrangler_block",
]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
#: Cloudflare's shortest TTL, in seconds.
MIN_TTL = 60
#: Each required option and the environment variable it falls back to.
VARIABLES: dict[str, str] = {
    "namespace_id": "CLOUDFLARE_KV_NAMESPACE_ID",
    "account_id": "CLOUDFLARE_ACCOUNT_ID",
    "api_token": "CLOUDFLARE_API_TOKEN",
}
#: Envelope code of a missing key.
KEY_NOT_FOUND = 10009
#: Envelope codes that mean the credentials were refused (some come with HTTP 400):
#: authentication error, missing or invalid token, malformed Authorization header.
AUTH_CODES = frozenset({10000, 9106, 9109, 6003, 6111})
# Cloudflare's limits per request.
_LIST_PAGE = 1000
_BULK_GET_KEYS = 100
_BULK_KEYS = 10_000
_BULK_BYTES = 95_000_000  # "under 100 MB", with room for the envelope
_BULK_ROUNDS = 3  # attempts at keys reported as unsuccessful_keys
_BINDING = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")

_encode = msgspec.json.Encoder().encode
_JSON = {"Content-Type": "application/json"}


class _Envelope(msgspec.Struct):
    success: bool = False
    errors: list[dict[str, Any]] = []
    result: Any = None
    result_info: dict[str, Any] | None = None


class CloudflareKVDriver(Driver):
    """A Cloudflare Workers KV namespace, through the REST API.

    Options (each of the first three falls back to its environment variable):

    - ``namespace_id`` (``CLOUDFLARE_KV_NAMESPACE_ID``): the namespace's id;
    - ``account_id`` (``CLOUDFLARE_ACCOUNT_ID``): the account that owns it;
    - ``api_token`` (``CLOUDFLARE_API_TOKEN``): an API token with the
      "Workers KV Storage" permission (Read, or Edit to write);
    - ``binding``: the name the Worker binds the namespace as (default
      ``"KV"``), for ``hubkv cloudflare wrangler`` and logs;
    - ``base_url``: the API root (default ``https://api.cloudflare.com/client/v4``);
      ``https://`` only, except to localhost;
    - ``timeout``: seconds to wait for an answer (default 10);
    - ``retries``: attempts after the first after timeouts, 429 and 5xx (default 3).

    >>> driver = CloudflareKVDriver(namespace_id="0f2ac74b", account_id="023e105f", api_token="secret")
    >>> driver
    <CloudflareKVDriver namespace 0f2ac74b (binding KV, account 023e105f) at api.cloudflare.com>
    >>> "secret" in repr(driver)
    False
    """

    name = "cloudflare-kv-binding"

    def __init__(
        self,
        namespace_id: str | None = None,
        account_id: str | None = None,
        api_token: str | None = None,
        binding: str = "KV",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        given = {"namespace_id": namespace_id, "account_id": account_id, "api_token": api_token}
        values = {
            option: (value or os.environ.get(VARIABLES[option], "")).strip()
            for option, value in given.items()
        }
        missing = [f"{option} (or {VARIABLES[option]})" for option, v in values.items() if not v]
        if missing:
            raise ConfigError(
                f"the {self.name} driver is missing {_join(missing)}; pass the option(s) or set "
                "the environment variable(s) (the namespace id is shown by `wrangler kv namespace "
                "list`, the token needs the 'Workers KV Storage' permission)"
            )
        unprintable = [
            option
            for option in ("namespace_id", "account_id")
            if not (values[option].isascii() and values[option].isprintable())
        ]
        if unprintable:
            raise ConfigError(
                f"{_join(unprintable)} must be printable ASCII (Cloudflare ids are hexadecimal; "
                "copy them again from the dashboard or `wrangler kv namespace list`)"
            )
        if not _BINDING.match(binding):
            raise ConfigError(
                f"binding must be a JavaScript identifier such as 'KV' (it names env.<binding> "
                f"in the Worker), got {binding!r}"
            )
        self.namespace_id = values["namespace_id"]
        self.account_id = values["account_id"]
        self.binding = binding
        self.base_url = check_url(base_url, "base_url")
        self._path = (
            f"/accounts/{quote(self.account_id, safe='')}"
            f"/storage/kv/namespaces/{quote(self.namespace_id, safe='')}"
        )
        self._warned_short_ttl = False
        self.http = HTTPClient(
            self.base_url,
            service="Cloudflare KV",
            headers={"Authorization": f"Bearer {values['api_token']}"},
            secrets=[values["api_token"]],
            timeout=timeout,
            retries=retries,
            describe_error=_describe_error,
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> tuple[dict[str, Any], str] | None:
        """The options when all of :data:`VARIABLES` are set (and only then).

        >>> CloudflareKVDriver.from_environment({"CLOUDFLARE_API_TOKEN": "t"}) is None
        True
        """
        options = {option: environ.get(name, "").strip() for option, name in VARIABLES.items()}
        if not all(options.values()):
            return None
        return options, f"{_join(list(VARIABLES.values()))} are set (Cloudflare KV)"

    def describe(self) -> str:
        return (
            f"namespace {self.namespace_id} (binding {self.binding}, account {self.account_id}) "
            f"at {self.http.host}"
        )

    def close(self) -> None:
        self.http.close()

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        response = self._send("GET", f"/values/{_quote(key)}")
        if _missing(response):
            return None
        # Values come as application/octet-stream; an HTML page is a captive
        # portal or a proxy answering instead of the API, not a stored value.
        if "html" in response.headers.get("Content-Type", "").lower():
            raise self._unexpected(f"reading {key!r}", "an HTML page instead of a value")
        return response.content

    def has(self, key: str) -> bool:
        # A key without metadata answers success with result null (Cloudflare's SDKs
        # read it as None); a missing key is 404 code 10009. Anything else answering
        # 200 (a proxy's HTML page) is an error, not a present key.
        response = self._send("GET", f"/metadata/{_quote(key)}")
        if _missing(response):
            return False
        self._envelope(response)
        return True

    def ttl(self, key: str) -> float | None:
        # The list API gives each key's expiration without its value; the key
        # itself sorts first among the keys it prefixes.
        page = self._envelope(self._send("GET", "/keys", params={"prefix": key, "limit": 10}))
        first = page.result[0] if isinstance(page.result, list) and page.result else None
        if not isinstance(first, dict) or first.get("name") != key:
            raise KeyError(key)
        expiration = first.get("expiration")
        return seconds_left(None if expiration is None else float(expiration), time.time())

    def iter_keys(self, prefix: str) -> Iterator[str]:
        for name, _ in self._listing(prefix):
            yield name

    def iter_ttls(self, prefix: str) -> Iterator[tuple[str, float | None]]:
        # The listing's expiration, as ttl() reads it: no request per key.
        for name, expiration in self._listing(prefix):
            yield name, seconds_left(expiration, time.time())

    def _listing(self, prefix: str) -> Iterator[tuple[str, float | None]]:
        """``(name, expiration or None)`` of each listed key, page by page (1,000 a page)."""
        params: dict[str, Any] = {"prefix": prefix, "limit": _LIST_PAGE}
        while True:
            page = self._envelope(self._send("GET", "/keys", params=params))
            if not isinstance(page.result, list):
                raise self._unexpected("list keys", page.result)
            for item in page.result:
                name = item.get("name") if isinstance(item, dict) else None
                expiration = item.get("expiration") if isinstance(item, dict) else None
                if not isinstance(name, str) or not (expiration is None or _is_number(expiration)):
                    raise self._unexpected("list keys", item)
                yield name, None if expiration is None else float(expiration)
            cursor = (page.result_info or {}).get("cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), _BULK_GET_KEYS):
            chunk = keys[start : start + _BULK_GET_KEYS]
            try:
                response = self._send(
                    "POST",
                    "/bulk/get",
                    data=_encode({"keys": chunk, "type": "text"}),
                    headers=_JSON,
                )
            except RequestTooLargeError:
                # Over 25 MB of values in one reply: ask for them one by one.
                found.update(Driver.get_many(self, chunk))
                continue
            values = self._envelope(response).result
            values = values.get("values") if isinstance(values, dict) else None
            if not isinstance(values, dict):
                raise self._unexpected("bulk get", values)
            for key, value in values.items():
                if isinstance(value, str):
                    found[key] = value.encode()
                elif value is not None:
                    raise self._unexpected("bulk get", {key: value})
        return found

    # -- writes ----------------------------------------------------------

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        expiration_ttl = self._expiration_ttl(ttl)
        self._envelope(
            self._send(
                "PUT",
                f"/values/{_quote(key)}",
                params=None if expiration_ttl is None else {"expiration_ttl": expiration_ttl},
                data=value,
                headers={"Content-Type": "application/octet-stream"},
            )
        )

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        expiration_ttl = self._expiration_ttl(ttl)
        self._bulk(
            "PUT", "/bulk", [(key, _bulk_item(key, value, expiration_ttl)) for key, value in items]
        )

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        # PUT /bulk takes an expiration_ttl per item: one request whatever the TTLs.
        bulk = []
        for key, value, ttl in items:  # a loop, not a comprehension: the 60 s warning's
            bulk.append((key, _bulk_item(key, value, self._expiration_ttl(ttl))))  # stacklevel
        self._bulk("PUT", "/bulk", bulk)

    def delete(self, key: str) -> None:
        response = self._send("DELETE", f"/values/{_quote(key)}")
        if not _missing(response):  # deleting a missing key is fine either way
            self._envelope(response)

    def delete_many(self, keys: Iterable[str]) -> None:
        self._bulk("POST", "/bulk/delete", [(key, _encode(key)) for key in keys])

    def clear(self, prefix: str) -> int:
        count = 0
        batch: list[str] = []
        for key in self.iter_keys(prefix):
            batch.append(key)
            if len(batch) == _BULK_KEYS:
                self.delete_many(batch)
                count, batch = count + len(batch), []
        self.delete_many(batch)
        return count + len(batch)

    # -- internals -------------------------------------------------------

    def _expiration_ttl(self, ttl: float | None) -> int | None:
        """Whole seconds for Cloudflare: at least 60 (shorter is raised, with one warning), else
        rounded down, so that ``ttl()`` never reports more than was asked."""
        if ttl is None:
            return None
        if ttl < MIN_TTL:
            if not self._warned_short_ttl:
                self._warned_short_ttl = True
                warnings.warn(
                    f"Cloudflare KV's shortest TTL is {MIN_TTL} seconds: ttl={ttl:g} was raised to "
                    f"{MIN_TTL}, so such keys live longer than asked (warned once per store)",
                    UserWarning,
                    stacklevel=4,
                )
            return MIN_TTL
        return math.floor(ttl)

    def _bulk(self, method: str, path: str, items: list[tuple[str, bytes]]) -> None:
        """Send ``(key, JSON item)`` pairs in requests within Cloudflare's limits.

        Keys reported in ``unsuccessful_keys`` are sent again, up to
        ``_BULK_ROUNDS`` times in all.
        """
        pending = items
        for attempt in range(_BULK_ROUNDS):
            failed: set[str] = set()
            for chunk in _chunks(pending):
                body = b"[" + b",".join(item for _, item in chunk) + b"]"
                result = self._envelope(self._send(method, path, data=body, headers=_JSON)).result
                unsuccessful = result.get("unsuccessful_keys") if isinstance(result, dict) else None
                failed.update(unsuccessful or ())
            pending = [(key, item) for key, item in pending if key in failed]
            if not pending:
                return
            if attempt + 1 < _BULK_ROUNDS:
                self.http.wait_before_retry(attempt)
        raise DriverError(
            f"Cloudflare KV at {self.http.host} kept reporting {len(pending):,} key(s) as "
            f"unsuccessful after {_BULK_ROUNDS} attempts (first: {pending[0][0]!r}); "
            "the other keys were written; retry later"
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; its response if it succeeded or found the key missing, else a typed error.

        A missing key is HTTP 404 with code 10009 (see :func:`_missing`).
        """
        response = self.http.request(
            method, self._path + path, idempotent=True, ok_statuses=(400, 404), **kwargs
        )
        if response.status_code < 400:
            return response
        codes = _error_codes(response)
        if response.status_code == 404 and KEY_NOT_FOUND in codes:
            return response
        error = self.http.error_for(response)
        if codes & AUTH_CODES:
            raise AuthenticationError(
                f"{error}; Cloudflare refused the API token: check it and its "
                "'Workers KV Storage' permission"
            )
        if response.status_code == 404:
            raise DriverError(
                f"{error}; check namespace_id ({self.namespace_id}) and account_id "
                f"({self.account_id}), and that base_url is Cloudflare's API"
            )
        raise error

    def _envelope(self, response: requests.Response) -> _Envelope:
        """The parsed envelope of a successful reply."""
        data = self.http.read_json(response)
        try:
            envelope = msgspec.convert(data, _Envelope)
        except msgspec.ValidationError:
            envelope = _Envelope()
        if not envelope.success:
            raise self._unexpected(f"{response.request.method} {_route(response)}", data)
        return envelope

    def _unexpected(self, what: str, data: object) -> DriverError:
        text = self.http.scrub(repr(data)[:200])
        return DriverError(
            f"Cloudflare KV at {self.http.host} gave an unexpected answer to {what}: {text}; "
            "is base_url Cloudflare's API (https://api.cloudflare.com/client/v4)?"
        )


def wrangler_block(namespace_id: str, binding: str = "KV") -> str:
    """The ``[[kv_namespaces]]`` table that binds the namespace in ``wrangler.toml``.

    >>> print(wrangler_block("0f2ac74b498b48028cb68387c421e279"), end="")
    [[kv_namespaces]]
    binding = "KV"
    id = "0f2ac74b498b48028cb68387c421e279"
    """
    if not _BINDING.match(binding):
        raise ConfigError(f"binding must be a JavaScript identifier such as 'KV', got {binding!r}")
    # A JSON string of these characters is a TOML basic string.
    return (
        f"[[kv_namespaces]]\nbinding = {_encode(binding).decode()}\n"
        f"id = {_encode(namespace_id).decode()}\n"
    )


def _quote(key: str) -> str:
    """``key`` as one URL path segment: every reserved character percent-encoded."""
    return quote(key, safe="")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _bulk_item(key: str, value: bytes, expiration_ttl: int | None) -> bytes:
    """One item of ``PUT /bulk``: text as is, other bytes base64-encoded."""
    item: dict[str, Any] = {"key": key}
    try:
        item["value"] = value.decode()
    except UnicodeDecodeError:
        item["value"], item["base64"] = value, True  # msgspec encodes bytes as base64
    if expiration_ttl is not None:
        item["expiration_ttl"] = expiration_ttl
    return _encode(item)


def _chunks(items: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """Runs of ``items`` of at most ``_BULK_KEYS`` items and ``_BULK_BYTES`` bytes."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for pair in items:
        if chunk and (len(chunk) == _BULK_KEYS or size + len(pair[1]) + 1 > _BULK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(pair)
        size += len(pair[1]) + 1
    if chunk:
        yield chunk


def _missing(response: requests.Response) -> bool:
    """Whether ``response`` says the key is missing (HTTP 404, code 10009)."""
    return response.status_code == 404


def _route(response: requests.Response) -> str:
    """The route of ``response``'s request, without the account and namespace."""
    path = urlsplit(response.url).path
    return "/" + path.rsplit("/namespaces/", 1)[-1].partition("/")[2]


def _error_codes(response: requests.Response) -> set[int]:
    """The numeric codes in an error envelope (none if the body is not one)."""
    try:
        errors = response.json().get("errors") or []
        return {int(error["code"]) for error in errors}
    except (ValueError, AttributeError, TypeError, KeyError):
        return set()


def _describe_error(response: requests.Response) -> str:
    """The errors of an envelope, e.g. ``code 10009: get: 'key not found'``."""
    errors = response.json().get("errors") or []
    return "; ".join(f"code {error.get('code')}: {error.get('message')}" for error in errors)
