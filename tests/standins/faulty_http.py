"""A real local HTTP server that misbehaves on cue (and a pytest plugin).

Each test scripts what the next requests get, in order; once the script is
used up, requests are forwarded to the real upstream (e.g. the Upstash
stand-in or Cloudflare's workerd), or answered 404 when there is none::

    def test_retry_after(faulty_http, upstash_rest):
        proxy = faulty_http(upstream=upstash_rest.url)
        proxy.script(rate_limited(retry_after=0), Forward())
        ...  # point the driver at proxy.url
        assert [seen.action for seen in proxy.seen] == ["rate_limited", "Forward"]

Actions: :class:`Reply` (any status, headers and body), :class:`Slow` (wait,
then another action), :class:`Trickle` (an answer a byte at a time, each byte
well within the client's read timeout: a real answer slowed down, or an
endless one), :class:`Reset` (TCP reset before answering),
:class:`ResetMidBody` (headers and half a body, then a reset),
:class:`Forward` and :class:`ForwardThenReset` (the upstream applies the
request, the client never hears back). Helpers build the usual faults:
:func:`rate_limited`, :func:`server_error`, :func:`invalid_json`,
:func:`html_page`, :func:`unauthorized`; :func:`everything_said` collects what a
failure shows, to grep it for secrets. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = [
    "FaultyHTTP",
    "Forward",
    "ForwardThenReset",
    "Reply",
    "Reset",
    "ResetMidBody",
    "Seen",
    "Slow",
    "Trickle",
    "faulty_http",
    "html_page",
    "invalid_json",
    "rate_limited",
    "server_error",
    "unauthorized",
    "everything_said",
    "everything_shown",
]


@dataclass
class Reply:
    """Answer with this status, headers and body (a dict or list is sent as JSON)."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    name: str = "Reply"


@dataclass
class Slow:
    """Wait ``seconds`` (longer than the client's timeout, say), then do ``then``."""

    seconds: float
    then: Action = field(default_factory=lambda: Forward())
    name: str = "Slow"


@dataclass
class Trickle:
    """Send an answer one byte every ``interval`` seconds, so that no socket read ever
    waits long enough to time out.

    ``then`` (a :class:`Reply` or :class:`Forward`) is the answer, sent whole
    (status line, headers, body) byte by byte; without it the answer never ends:
    with ``headers=True`` one endless header line, else complete headers promising
    a megabyte of body, then the body a byte at a time. It stops when the client
    hangs up (or the server stops).
    """

    interval: float = 0.05
    then: Reply | Forward | None = None
    headers: bool = False
    name: str = "Trickle"


@dataclass
class Reset:
    """Reset the TCP connection (RST) without answering."""

    name: str = "Reset"


@dataclass
class ResetMidBody:
    """Send the headers promising ``promised`` bytes and ``sent`` of them, then reset."""

    status: int = 200
    promised: int = 1000
    sent: bytes = b'{"result": "'
    name: str = "ResetMidBody"


@dataclass
class Forward:
    """Pass the request to the upstream and its answer back."""

    name: str = "Forward"


@dataclass
class ForwardThenReset:
    """Pass the request to the upstream (it is applied there), then reset the client."""

    name: str = "ForwardThenReset"


Action = Reply | Slow | Trickle | Reset | ResetMidBody | Forward | ForwardThenReset


def rate_limited(retry_after: float | None = None) -> Reply:
    """HTTP 429, with ``Retry-After`` when given."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return Reply(429, {"error": "Too Many Requests"}, headers, name="rate_limited")


def server_error(status: int = 500) -> Reply:
    """A 5xx with a JSON error body."""
    return Reply(status, {"error": f"internal error {status}"}, name=f"server_error_{status}")


def invalid_json(status: int = 200) -> Reply:
    """A JSON content type over a body that is not JSON."""
    return Reply(status, b'{"result": "trunc', {"Content-Type": "application/json"}, "invalid_json")


def html_page(status: int = 200) -> Reply:
    """What a captive portal or a misconfigured proxy answers."""
    page = b"<html><head><title>Sign in to the network</title></head><body>...</body></html>"
    return Reply(status, page, {"Content-Type": "text/html; charset=utf-8"}, "html_page")


def unauthorized() -> Reply:
    """HTTP 401 as Upstash sends it for a wrong token."""
    return Reply(401, {"error": "Unauthorized"}, name="unauthorized")


def everything_said(exc: BaseException) -> str:
    """All the text a failure shows: message, repr, and the traceback with its chain.

    Tests grep it for secrets (a token must never appear).
    """
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def everything_shown(
    error: BaseException,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    *objects: object,
) -> str:
    """What a failing call showed anywhere: :func:`everything_said`, the captured logs
    (set ``caplog.set_level(logging.DEBUG)`` first), stdout, stderr, and the ``repr``
    of ``objects`` (the store, its driver, ...)."""
    captured = capsys.readouterr()
    shown = [everything_said(error), caplog.text, captured.out, captured.err]
    shown += [repr(item) for item in objects]
    return "\n".join(shown)


@dataclass
class Seen:
    """A request the server received, and what it did."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    action: str


class FaultyHTTP:
    """The scripted server; :meth:`start` runs it on a free 127.0.0.1 port."""

    def __init__(self, upstream: str | None = None, tls: tuple[str, str] | None = None) -> None:
        """``tls``: (certificate file, key file) to speak HTTPS instead of HTTP."""
        self.upstream = urlsplit(upstream) if upstream else None
        self.seen: list[Seen] = []
        self._script: list[Action] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.faulty = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.stopping = threading.Event()
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def script(self, *actions: Action) -> FaultyHTTP:
        """Queue ``actions`` for the next requests, one each."""
        with self._lock:
            self._script.extend(actions)
        return self

    @property
    def pending(self) -> int:
        """Scripted actions not used yet."""
        with self._lock:
            return len(self._script)

    def start(self) -> FaultyHTTP:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends trickles still running
        self._server.shutdown()
        self._server.server_close()

    def next_action(self, seen: Seen) -> Action:
        with self._lock:
            action = self._script.pop(0) if self._script else Forward()
            seen.action = action.name
            self.seen.append(seen)
        return action

    def forward(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) from the upstream for ``seen``."""
        if self.upstream is None:
            return 404, {"Content-Type": "text/plain"}, b"no upstream and nothing scripted"
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        try:
            headers = {
                k: v for k, v in seen.headers.items() if k.lower() not in ("host", "connection")
            }
            connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in ("connection", "transfer-encoding", "content-length")
            }
            return response.status, kept, body
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        faulty: FaultyHTTP = self.server.faulty  # type: ignore[attr-defined]
        seen = Seen(self.command, self.path, dict(self.headers.items()), body, "")
        self._act(faulty, faulty.next_action(seen), seen)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _act(self, faulty: FaultyHTTP, action: Action, seen: Seen) -> None:
        if isinstance(action, Slow):
            time.sleep(action.seconds)
            self._act(faulty, action.then, seen)
        elif isinstance(action, Trickle):
            self._trickle(faulty, action, seen)
        elif isinstance(action, Reset):
            self._reset()
        elif isinstance(action, ResetMidBody):
            self.send_response(action.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(action.promised))
            self.end_headers()
            self.wfile.write(action.sent)
            self.wfile.flush()
            time.sleep(0.05)  # let the client start reading the body
            self._reset()
        elif isinstance(action, ForwardThenReset):
            faulty.forward(seen)
            self._reset()
        elif isinstance(action, Forward):
            self._send(*faulty.forward(seen))
        else:
            body = action.body
            headers = dict(action.headers)
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            self._send(action.status, headers, body)

    def _trickle(self, faulty: FaultyHTTP, action: Trickle, seen: Seen) -> None:
        self.close_connection = True
        if action.then is None:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if action.headers:
                chunks: Iterator[bytes] = itertools.chain(
                    [head, b"X-Slow: "], itertools.repeat(b"a")
                )
            else:
                head += b"Content-Length: 1000000\r\n\r\n"
                chunks = itertools.chain([head], itertools.repeat(b" "))
        else:
            if isinstance(action.then, Forward):
                status, headers, body = faulty.forward(seen)
            else:
                status, headers, body = action.then.status, action.then.headers, action.then.body
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **headers}
                elif isinstance(body, str):
                    body = body.encode()
            lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
            whole = "\r\n".join(lines).encode("latin-1") + body
            chunks = (whole[i : i + 1] for i in range(len(whole)))
        try:
            for chunk in chunks:
                if faulty.stopping.is_set():
                    return
                self.wfile.write(chunk)
                time.sleep(action.interval)
        except OSError:  # the client hung up
            return

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the peer gets a TCP RST, not a clean FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


@pytest.fixture
def faulty_http() -> Iterator[Callable[..., FaultyHTTP]]:
    """``faulty_http(upstream=None, tls=None)`` starts a scripted server, stopped after the test."""
    servers: list[FaultyHTTP] = []

    def start(upstream: str | None = None, tls: tuple[str, str] | None = None) -> FaultyHTTP:
        server = FaultyHTTP(upstream, tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
