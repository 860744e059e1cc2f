"""An Upstash-REST-compatible server over a real Redis, for tests (and a pytest plugin).

It speaks the protocol of Upstash's REST API as its official SDKs use it:

- ``POST /`` with a JSON command array, e.g. ``["SET", "k", "v", "PX", "500"]``
  -> ``{"result": ...}``, or HTTP 400 ``{"error": "ERR ..."}``;
- ``POST /pipeline`` with an array of commands -> an array of ``{"result"}`` /
  ``{"error"}`` objects (HTTP 200 even when some commands failed);
- ``POST /multi-exec``: the same, run as one ``MULTI``/``EXEC`` transaction;
  a transaction Redis refuses to queue is HTTP 400 ``{"error": ...}``;
- ``Authorization: Bearer <token>`` (or ``?_token=``); anything else is HTTP
  401 ``{"error": "Unauthorized"}``. A read-only token may run read commands only;
- ``Upstash-Encoding: base64``: every string in a result is base64, except the
  status reply ``OK`` (the SDKs rely on that);
- bodies over ``max_request_bytes`` (10 MB, Upstash's limit) are refused with
  HTTP 400 ``{"error": "ERR max request size exceeded"}``;
- every answer carries an ``Upstash-Sync-Token`` header; the tokens requests
  carry back are recorded.

Replies come from redis-py with its response callbacks removed, i.e. the raw
RESP values. Two facts learned building it: the handler turns off Nagle's
algorithm (else every request waits ~40 ms for a delayed ACK), and redis-py
strips an error's code (``ERR ``, ``NOPERM ``, ...), which is put back here so
errors read as Upstash's do.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from redis._parsers.base import BaseParser

from .redis_server import RedisServer

__all__ = ["UpstashRest", "upstash_rest"]

MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: Commands a read-only token may run.
READ_COMMANDS = frozenset(
    {"GET", "MGET", "EXISTS", "TTL", "PTTL", "SCAN", "KEYS", "TYPE", "STRLEN", "PING", "ECHO"}
)
# Error classes of redis-py -> the code it stripped from the message.
_CODES = {cls: code for code, cls in BaseParser.EXCEPTION_CLASSES.items() if isinstance(cls, type)}


class UpstashRest:
    """The server; :meth:`start` runs it in a daemon thread on a free 127.0.0.1 port.

    It serves Redis database ``db`` of the redis-server on ``redis_port``.
    """

    def __init__(
        self,
        redis_port: int,
        token: str | None = None,
        read_only_token: str | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        db: int = 0,
    ) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.read_only_token = read_only_token or secrets.token_urlsafe(24)
        self.max_request_bytes = max_request_bytes
        self.redis = redis.Redis(host="127.0.0.1", port=redis_port, db=db, max_connections=64)
        self.redis.response_callbacks.clear()  # raw RESP replies
        #: Every command run, in order (tests count round trips with it).
        self.commands: list[list[str]] = []
        #: HTTP requests received, by path.
        self.requests: list[str] = []
        #: The ``Upstash-Sync-Token`` each request carried ("" for none).
        self.sync_tokens_received: list[str] = []
        self._sync = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> UpstashRest:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.redis.close()

    def next_sync_token(self) -> str:
        """A new ``Upstash-Sync-Token`` for an answer (a counter here; opaque to clients)."""
        with self._lock:
            self._sync += 1
            return f"sync-{self._sync}"

    # -- protocol --------------------------------------------------------

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        """(HTTP status, JSON answer) for one request."""
        parts = urlsplit(path)
        with self._lock:
            self.requests.append(parts.path)
            self.sync_tokens_received.append(headers.get("Upstash-Sync-Token", ""))
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        token = token or parse_qs(parts.query).get("_token", [None])[0]
        if token not in (self.token, self.read_only_token):
            return 401, {"error": "Unauthorized"}
        if len(body) > self.max_request_bytes:
            return 400, {"error": "ERR max request size exceeded"}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"error": "ERR failed to parse command"}
        encode = headers.get("Upstash-Encoding", "").lower() == "base64"
        read_only = token == self.read_only_token
        route = parts.path.rstrip("/")
        if route == "":
            return self._single(data, encode, read_only)
        if route in ("/pipeline", "/multi-exec"):
            if not (isinstance(data, list) and data and all(isinstance(c, list) for c in data)):
                return 400, {"error": "ERR pipeline body must be an array of commands"}
            return self._batch(data, encode, read_only, atomic=route == "/multi-exec")
        return 404, {"error": f"ERR unknown path {parts.path}"}

    def _single(self, data: Any, encode: bool, read_only: bool) -> tuple[int, Any]:
        try:
            args = self._command(data, read_only)
            return 200, {"result": _result(self.redis.execute_command(*args), encode)}
        except (redis.ResponseError, ValueError) as exc:
            return 400, {"error": _error_text(exc)}

    def _batch(
        self, commands: list[Any], encode: bool, read_only: bool, *, atomic: bool
    ) -> tuple[int, Any]:
        try:
            checked = [self._command(command, read_only) for command in commands]
        except ValueError as exc:
            return 400, {"error": _error_text(exc)}
        try:
            with self.redis.pipeline(transaction=atomic) as pipe:
                for args in checked:
                    pipe.execute_command(*args)
                replies = pipe.execute(raise_on_error=False)
        except redis.ResponseError as exc:  # the transaction was discarded
            return 400, {"error": _error_text(exc)}
        return 200, [
            {"error": _error_text(reply)}
            if isinstance(reply, Exception)
            else {"result": _result(reply, encode)}
            for reply in replies
        ]

    def _command(self, data: Any, read_only: bool) -> list[str]:
        if not (isinstance(data, list) and data):
            raise ValueError("ERR a command must be a non-empty JSON array")
        args = [arg if isinstance(arg, str) else json.dumps(arg) for arg in data]
        if read_only and args[0].upper() not in READ_COMMANDS:
            raise ValueError(
                f"NOPERM this user has no permissions to run the '{args[0].lower()}' command"
            )
        with self._lock:
            self.commands.append(args)
        return args


def _result(reply: Any, encode: bool) -> Any:
    """A raw RESP reply as JSON: strings base64-encoded when asked (``OK`` never)."""
    if isinstance(reply, bytes):
        if not encode:
            return reply.decode("utf-8", "replace")
        return "OK" if reply == b"OK" else base64.b64encode(reply).decode()
    if isinstance(reply, list):
        return [_result(item, encode) for item in reply]
    return reply


def _error_text(exc: Exception) -> str:
    """The error as Redis sent it: redis-py strips the code (``ERR ``) from most."""
    text = str(exc)
    if isinstance(exc, ValueError) or type(exc) not in _CODES and text.split(" ")[0].isupper():
        return text
    return f"{_CODES.get(type(exc), 'ERR')} {text}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service
    disable_nagle_algorithm = True  # TCP_NODELAY: no ~40 ms delayed-ACK stall per request

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        standin: UpstashRest = self.server.standin  # type: ignore[attr-defined]
        status, answer = standin.handle(self.path, self.headers, body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Upstash-Sync-Token", standin.next_sync_token())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


@pytest.fixture(scope="session")
def upstash_rest(redis_server: RedisServer) -> Iterator[UpstashRest]:
    """An Upstash REST stand-in over the session's redis-server."""
    server = UpstashRest(redis_server.port).start()
    yield server
    server.stop()
