"""upstash: Upstash Redis (and Vercel KV, which is Upstash) over its REST API.

Every operation is one blocking HTTPS request through the store's pooled
:class:`~hubkv.drivers.http.HTTPClient` (timeouts, retries with backoff for
idempotent requests, typed errors, the token kept out of every message):

- one command: ``POST {url}`` with a JSON array, e.g. ``["GET", "key"]``;
- a batch: ``POST {url}/multi-exec`` with an array of commands, run as one
  transaction (all or nothing);
- ``Authorization: Bearer {token}``, and ``Upstash-Encoding: base64`` so that
  stored bytes come back exactly (the replies' strings are base64);
- the ``Upstash-Sync-Token`` of each answer is sent with the next request
  (read-your-writes on databases with read replicas, as the official SDKs do).

The keys, values and commands are those of
:mod:`hubkv.drivers.redis_common`, shared with the ``redis`` driver: the two
read each other's data. This module imports nothing slow; ``requests`` is
loaded on the first request.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from ..errors import AuthenticationError, ConfigError, DriverError, RequestTooLargeError
from .http import HTTPClient, check_url
from .redis_common import Command, RedisCommandsDriver, Reply

if TYPE_CHECKING:
    import requests

__all__ = ["UpstashDriver", "CREDENTIAL_VARIABLES"]

#: (URL variable, token variable, read-only?) in the order they are looked for.
CREDENTIAL_VARIABLES: tuple[tuple[str, str, bool], ...] = (
    ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", False),
    ("KV_REST_API_URL", "KV_REST_API_TOKEN", False),
    ("KV_REST_API_URL", "KV_REST_API_READ_ONLY_TOKEN", True),
)

_encode_json = msgspec.json.Encoder().encode


class Credentials(NamedTuple):
    """A REST URL and token found in the environment, and where."""

    url: str
    token: str
    read_only: bool
    source: str


def find_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """The first complete pair of :data:`CREDENTIAL_VARIABLES` set in ``environ``.

    >>> find_credentials({"KV_REST_API_URL": "https://x.upstash.io", "KV_REST_API_TOKEN": "t"})
    Credentials(url='https://x.upstash.io', token='t', read_only=False, source='KV_REST_API_URL and KV_REST_API_TOKEN')
    """
    for url_name, token_name, read_only in CREDENTIAL_VARIABLES:
        url, token = environ.get(url_name, "").strip(), environ.get(token_name, "").strip()
        if url and token:
            return Credentials(url, token, read_only, f"{url_name} and {token_name}")
    return None


class UpstashDriver(RedisCommandsDriver):
    """Upstash Redis / Vercel KV over the REST API.

    Options:

    - ``url``, ``token``: the database's REST URL and token; by default from
      ``UPSTASH_REDIS_REST_URL``/``UPSTASH_REDIS_REST_TOKEN``, else Vercel's
      ``KV_REST_API_URL``/``KV_REST_API_TOKEN`` (with only
      ``KV_REST_API_READ_ONLY_TOKEN``, the store is read-only);
    - ``base``: a namespace, so apps can share a database (keys are stored as
      ``base:key``);
    - ``timeout``: seconds to wait for an answer (default 10);
    - ``retries``: attempts after the first for requests safe to repeat
      (default 3).

    >>> driver = UpstashDriver(url="https://eu1-fine-cat-1.upstash.io", token="secret", base="app")
    >>> driver
    <UpstashDriver https://eu1-fine-cat-1.upstash.io base='app'>
    """

    name = "upstash"

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        base: str = "",
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        super().__init__(base)
        if url is None or token is None:
            found = find_credentials(os.environ)
            if found is not None:
                if token is None:
                    self.read_only = found.read_only
                url, token = url or found.url, token or found.token
        token = (token or "").strip()
        if not url or not token:
            raise ConfigError(
                "the upstash driver needs a REST URL and token: set UPSTASH_REDIS_REST_URL "
                "and UPSTASH_REDIS_REST_TOKEN (on Vercel, KV_REST_API_URL and "
                "KV_REST_API_TOKEN), or pass url= and token="
            )
        if not (token.isascii() and token.isprintable()) or " " in token:
            raise ConfigError(
                "the Upstash token contains spaces, control or non-ASCII characters; copy it again "
                "from the Upstash console (or Vercel's KV_REST_API_TOKEN)"
            )
        self.url = check_url(url, "the Upstash REST URL (url)")
        self.http = HTTPClient(
            self.url,
            service="Upstash",
            headers={
                "Authorization": f"Bearer {token}",
                "Upstash-Encoding": "base64",
                "Content-Type": "application/json",
            },
            secrets=[token],
            timeout=timeout,
            retries=retries,
            describe_error=_error_message,
        )
        # Read-your-writes on databases with read replicas: each answer's sync
        # token goes with the next request, so a read sees the writes before it.
        self._sync_token = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> tuple[dict[str, Any], str] | None:
        """``url``/``token`` options (and ``read_only``) when Upstash or Vercel KV credentials are set.

        >>> UpstashDriver.from_environment({}) is None
        True
        """
        found = find_credentials(environ)
        if found is None:
            return None
        options: dict[str, Any] = {"url": found.url, "token": found.token}
        if found.read_only:
            options["read_only"] = True
        access = "read-only" if found.read_only else "read-write"
        return options, f"{found.source} are set ({access} Upstash credentials)"

    def describe(self) -> str:
        return f"{self.url} {super().describe()}" if self.base else self.url

    def close(self) -> None:
        self.http.close()

    def send(self, commands: Sequence[Command], *, atomic: bool, idempotent: bool) -> list[Reply]:
        """One request: ``POST /`` for one command, ``/multi-exec`` or ``/pipeline`` for more."""
        single = len(commands) == 1 and not atomic
        body = [[_text(arg) for arg in command] for command in commands]
        response = self.http.request(
            "POST",
            "" if single else "/multi-exec" if atomic else "/pipeline",
            idempotent=idempotent,
            ok_statuses=(400,),
            data=_encode_json(body[0] if single else body),
            headers={"Upstash-Sync-Token": self._sync_token} if self._sync_token else None,
        )
        self._sync_token = response.headers.get("Upstash-Sync-Token", self._sync_token)
        data = self.http.read_json(response)
        if response.status_code == 400:
            raise self._command_error(data.get("error") if isinstance(data, dict) else data)
        answers = [data] if single else data
        if not isinstance(answers, list) or len(answers) != len(commands):
            raise self._unexpected(str(commands[0][0]), data)
        return [self._reply(answer) for answer in answers]

    def _reply(self, answer: Any) -> Reply:
        """The raw reply in one ``{"result": ...}`` / ``{"error": ...}`` answer."""
        if isinstance(answer, dict) and "error" in answer:
            raise self._command_error(answer["error"])
        if not isinstance(answer, dict) or "result" not in answer:
            raise self._unexpected("a command", answer)
        try:
            return _decode(answer["result"])
        except (binascii.Error, ValueError):
            raise self._unexpected("a command", answer) from None

    def _unexpected(self, command: str, reply: object) -> DriverError:
        return DriverError(self.http.scrub(str(super()._unexpected(command, reply))))

    def _command_error(self, error: object) -> DriverError:
        message = self.http.scrub(str(error))
        where = f"Upstash at {self.http.host}"
        if "max request size" in message.lower():
            return RequestTooLargeError(
                f"{where} refused a request as too large ({message}); "
                "store smaller values (Upstash allows 10 MB per request on most plans)"
            )
        if message.startswith(("NOPERM", "NOAUTH", "WRONGPASS")):
            return AuthenticationError(
                f"{where} refused the command ({message}); the token lacks the permission: "
                "use a read-write token (not KV_REST_API_READ_ONLY_TOKEN) to write"
            )
        return DriverError(f"{where} answered with an error: {message}")


def _text(arg: str | bytes) -> str:
    """A command argument as JSON can carry it: the REST API takes text only."""
    if isinstance(arg, str):
        return arg
    try:
        return arg.decode()
    except UnicodeDecodeError:
        raise DriverError(
            "the Upstash REST API stores text: this value is not UTF-8 "
            "(hubkv's own values always are; was a raw driver call made with binary data?)"
        ) from None


def _decode(result: Any) -> Reply:
    """A base64-encoded result as raw bytes (status replies such as ``OK`` come unencoded)."""
    if isinstance(result, str):
        return b"OK" if result == "OK" else base64.b64decode(result, validate=True)
    if isinstance(result, list):
        return [_decode(item) for item in result]
    if result is None or (isinstance(result, int) and not isinstance(result, bool)):
        return result
    raise ValueError(f"unexpected result {result!r}")


def _error_message(response: requests.Response) -> str:
    """The ``error`` of an Upstash error body, e.g. ``{"error": "Unauthorized"}``."""
    data = response.json()
    return str(data.get("error", "")) if isinstance(data, dict) else ""
