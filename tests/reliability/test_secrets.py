"""Credentials never leak, and never travel in clear text.

A recognisable fake token is given to every remote driver; then failures are
triggered from real local servers (wrong token, 5xx, HTML from a "proxy",
broken JSON - each echoing the token back - and nothing listening). Everything
a failure produces is grepped for the token: the exception, its cause and
context chain and traceback, the *locals* of hubkv's frames in that traceback
(what error trackers such as Sentry record), the logs at DEBUG (urllib3's
too), the reprs of the store, driver and client, and the CLI's stdout and
stderr.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv import ConfigError, DriverError
from hubkv.config import driver_options
from tests.standins.faulty_http import (
    FaultyHTTP,
    Reply,
    everything_shown,
    html_page,
    invalid_json,
)
from tests.standins.redis_server import free_port
from tests.standins.tls import self_signed_certificate

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hubkv-FAKE-TOKEN-" + uuid.uuid4().hex
HTTP_DRIVERS = ["upstash", "cloudflare-kv-binding"]


def http_options(driver: str, url: str, token: str = TOKEN) -> dict[str, Any]:
    """Options pointing ``driver`` at ``url`` with ``token``, failing fast."""
    if driver == "upstash":
        return {"url": url, "token": token, "timeout": 0.5, "retries": 1}
    return {
        "base_url": url,
        "api_token": token,
        "account_id": "0123456789abcdef0123456789abcdef",
        "namespace_id": "fedcba9876543210fedcba9876543210",
        "timeout": 0.5,
        "retries": 1,
    }


def hubkv_frame_locals(error: BaseException) -> str:
    """The repr of every local variable of hubkv's own frames, along the whole chain."""
    shown = []
    summary: traceback.TracebackException | None = traceback.TracebackException.from_exception(
        error, capture_locals=True
    )
    while summary is not None:
        for frame in summary.stack:
            if f"{os.sep}hubkv{os.sep}" in frame.filename and frame.locals:
                shown += [f"{name}={value}" for name, value in frame.locals.items()]
        summary = summary.__cause__ or summary.__context__
    assert shown, "no hubkv frame in the traceback"
    return "\n".join(shown)


FAILURES: dict[str, Callable[[str], list[Reply]]] = {
    "wrong token": lambda token: [Reply(401, {"error": f"Unauthorized: bad token {token}"})],
    "server error": lambda token: [Reply(500, {"error": f"boom for Bearer {token}"})] * 2,
    "proxy html": lambda token: (
        [
            Reply(
                502,
                f"<html><body>Bad gateway; Authorization: Bearer {token}</body></html>",
                {"Content-Type": "text/html"},
            )
        ]
        * 2
    ),
    "broken json": lambda token: [invalid_json()] * 2,
    "html with 200": lambda token: [html_page()] * 2,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("driver", HTTP_DRIVERS)
def test_failing_http_calls_never_show_the_token(
    driver: str,
    failure: str,
    faulty_http: Callable[..., FaultyHTTP],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    figures: Counter[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    server = faulty_http()
    store = hubkv.KV(driver, **http_options(driver, server.url))
    calls = [lambda: store.set("k", 1), lambda: store.keys()]
    if driver != "cloudflare-kv-binding" or failure != "broken json":
        # Cloudflare sends a value as the raw body of a 200, so any bytes may
        # be a value: only an HTML page is known not to be one.
        calls.append(lambda: store.get("k"))
    for call in calls:
        server.script(*FAILURES[failure](TOKEN))
        with pytest.raises(DriverError) as info:
            call()
        shown = everything_shown(info.value, caplog, capsys, store, store.driver)
        shown += hubkv_frame_locals(info.value)
        assert TOKEN not in shown
        figures["security: failures grepped for the token"] += 1
    # The token did reach the server: the requests were real and authenticated.
    assert any(TOKEN in str(seen.headers) for seen in server.seen)


@pytest.mark.parametrize("driver", [*HTTP_DRIVERS, "redis"])
def test_an_unreachable_service_never_shows_the_token(
    driver: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    figures: Counter[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    if driver == "redis":
        options: dict[str, Any] = {"url": f"redis://ada:{TOKEN}@127.0.0.1:{port}/0", "timeout": 0.5}
    else:
        options = http_options(driver, f"http://127.0.0.1:{port}")
    store = hubkv.KV(driver, **options)
    with pytest.raises(hubkv.UnavailableError) as info:
        store.get("k")
    shown = everything_shown(info.value, caplog, capsys, store, store.driver)
    shown += hubkv_frame_locals(info.value) + store.driver.describe()
    assert TOKEN not in shown
    figures["security: failures grepped for the token"] += 1


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubkv", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_the_cli_never_shows_the_token(
    faulty_http: Callable[..., FaultyHTTP], figures: Counter[str]
) -> None:
    server = faulty_http()
    options = ["--driver", "upstash", "--option", f"url={server.url}", "--option", f"token={TOKEN}"]
    server.script(Reply(401, {"error": f"bad token {TOKEN}"}))
    failed = _cli(*options, "get", "k")
    assert failed.returncode == 3 and "401" in failed.stderr
    server.script(Reply(200, {"result": "MQ=="}))  # "1", base64
    info = _cli(*options, "info")
    env = {"HUBKV_DRIVER": "upstash", "HUBKV_URL": server.url, "HUBKV_TOKEN": TOKEN}
    server.script(Reply(500, {"error": f"boom {TOKEN}"}), Reply(500, {"error": f"boom {TOKEN}"}))
    from_env = _cli("set", "k", "1", env={**env, "HUBKV_RETRIES": "1"})
    assert from_env.returncode == 3
    bad_url = _cli(
        "--driver",
        "upstash",
        "--option",
        f"url=http://ada:{TOKEN}@example.com",
        "--option",
        f"token={TOKEN}",
        "get",
        "k",
    )
    assert bad_url.returncode == 2 and "https" in bad_url.stderr
    for result in (failed, info, from_env, bad_url):
        assert "Traceback" not in result.stderr
        assert TOKEN not in result.stdout + result.stderr
        figures["security: failures grepped for the token"] += 1


# -- clear text and TLS ---------------------------------------------------------

URL_OPTION = {"upstash": "url", "cloudflare-kv-binding": "base_url"}


@pytest.mark.parametrize("driver", HTTP_DRIVERS)
@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://kv.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("http://127.8.9.10", True),
        ("http://localhost:1", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8080", True),
        ("http://kv.example.com", False),
        ("http://10.0.0.1", False),
        ("http://0.0.0.0:8080", False),
        ("http://localhost.example.com", False),
        # Resolved through DNS by glibc (and /etc/hosts may say anything): maybe another host.
        ("http://kv.localhost:8080", False),
        ("http://localhost.localdomain", False),
        ("http://localhost.", False),
        ("http://127.1", False),  # inet_aton's shorthand, not a literal address
        ("http://[::ffff:127.0.0.1]", False),
        ("http://127.255.255.254:8080", True),
        ("http://127.0.0.1.example.com", False),
        ("http://[::ffff:10.0.0.1]", False),
        ("ftp://127.0.0.1", False),
        ("kv.example.com", False),
        (f"https://ada:{TOKEN}@kv.example.com", False),
    ],
)
def test_remote_urls_must_be_https_unless_loopback(
    driver: str, url: str, allowed: bool, figures: Counter[str]
) -> None:
    """Checked when the store is created, before any request (nothing listens at
    these addresses; a request would fail differently)."""
    options = {**http_options(driver, url), URL_OPTION[driver]: url}
    if allowed:
        assert hubkv.KV(driver, **options).driver
        return
    figures["security: clear-text or bad URLs refused"] += 1
    with pytest.raises(ConfigError) as info:
        hubkv.KV(driver, **options)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://ada:{TOKEN}@cache.example.com:6379/0",  # clear text to another host
        f"redis://cache.example.com/0?password={TOKEN}",
        f"rediss://ada:{TOKEN}@cache.example.com/0?ssl_cert_reqs=none",
        f"rediss://cache.example.com/0?password={TOKEN}&ssl_check_hostname=false",
        f"rediss://cache.example.com/0?ssl_password={TOKEN}&ssl_cert_reqs=none",
        f"rediss://ada:{TOKEN}@cache.example.com/0?unknown=1",
        f"rediss://ada:{TOKEN}@cache.example.com:port/0",
        f"http://ada:{TOKEN}@cache.example.com/0?password={TOKEN}",
    ],
)
def test_redis_url_refusals_never_show_the_password(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    figures: Counter[str],
) -> None:
    """From the option and from REDIS_URL: refused before connecting, the password
    (in the URL's user part or query) in no message, log line or traceback. (Frame
    locals are not checked here: the constructor's hold the URL argument, as given.)"""
    caplog.set_level(logging.DEBUG)
    for options in ({"url": url}, {}):
        monkeypatch.setenv("REDIS_URL", url)
        with pytest.raises(ConfigError) as info:
            hubkv.KV("redis", **options)
        assert TOKEN not in everything_shown(info.value, caplog, capsys)
        figures["security: clear-text or bad URLs refused"] += 1


@pytest.fixture(scope="module")
def self_signed_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate nobody trusts."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_certificate(folder)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"result": None}).encode())

        do_GET = do_PUT = do_DELETE = do_POST  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("driver", HTTP_DRIVERS)
def test_tls_verification_is_never_turned_off(
    driver: str,
    self_signed_https: str,
    monkeypatch: pytest.MonkeyPatch,
    figures: Counter[str],
) -> None:
    """An untrusted certificate fails with a typed error naming TLS, even with
    the environment variables that turn verification off for plain requests."""
    monkeypatch.setenv("CURL_CA_BUNDLE", "")  # requests: "" means verify=False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    store = hubkv.KV(driver, **http_options(driver, self_signed_https))
    with pytest.raises(DriverError, match="certificate") as info:
        store.get("k")
    assert TOKEN not in str(info.value)
    assert "verify" not in driver_options(type(store.driver))
    figures["security: untrusted TLS certificates refused"] += 1
