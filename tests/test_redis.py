"""The redis driver against a real redis-server (the shared suite covers the semantics)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubkv
from hubkv import AuthenticationError, ConfigError, DriverError, UnavailableError
from hubkv.drivers.redis import RedisDriver
from tests.standins.faulty_http import everything_said
from tests.standins.redis_server import RedisServer, free_port
from tests.standins.tls import self_signed_certificate

#: Database only this module uses, so SCAN sees nothing but its keys.
DB = 6


@pytest.fixture
def base() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(redis_server: RedisServer, base: str) -> Iterator[hubkv.KV]:
    kv = hubkv.KV("redis", url=redis_server.url, base=base)
    yield kv
    kv.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("REDIS_URL", "KV_URL", "HUBKV_DRIVER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def command_calls(server: RedisServer) -> dict[str, int]:
    """How many times the server ran each command (``INFO commandstats``)."""
    stats = server.client().info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_every_operation_is_one_round_trip(redis_server: RedisServer) -> None:
    redis_server.client(db=DB).flushdb()
    store = hubkv.KV("redis", url=f"redis://127.0.0.1:{redis_server.port}/{DB}", base="app")
    driver = store.driver
    assert isinstance(driver, RedisDriver)
    items = {f"item:{i:03d}": {"i": i} for i in range(100)}

    def round_trips(call: object) -> int:
        before = driver.round_trips
        assert callable(call)
        call()
        return driver.round_trips - before

    assert round_trips(lambda: store.set("one", 1)) == 1
    assert round_trips(lambda: store.get("one")) == 1
    assert round_trips(lambda: store.has("one")) == 1
    assert round_trips(lambda: store.ttl("one")) == 1
    assert round_trips(lambda: store.set_many(items, ttl=60)) == 1
    assert round_trips(lambda: store.get_many(items)) == 1
    assert round_trips(lambda: store.keys("item:")) == 1
    assert round_trips(lambda: store.delete_many(list(items)[:50])) == 1
    assert round_trips(lambda: store.clear("item:")) == 2  # SCAN, UNLINK
    assert store.keys() == ["one"]
    store.close()


def test_set_many_is_one_multi_exec_transaction(store: hubkv.KV, redis_server: RedisServer) -> None:
    before = command_calls(redis_server)
    store.set_many({f"k{i}": i for i in range(20)}, ttl=30)
    after = command_calls(redis_server)
    assert after["multi"] - before.get("multi", 0) == 1
    assert after["exec"] - before.get("exec", 0) == 1
    assert after["set"] - before.get("set", 0) == 20
    assert len(store.keys()) == 20
    assert 29 < (store.ttl("k7") or 0) <= 30


def test_plain_strings_written_by_others_read_back(
    store: hubkv.KV, redis_server: RedisServer, base: str
) -> None:
    direct = redis_server.client()
    direct.set(f"{base}:greeting", "hello")
    direct.set(f"{base}:\xff".encode("latin-1"), "not a UTF-8 key")
    direct.rpush(f"{base}:list", "x")
    assert store.get("greeting") == "hello"
    assert store.keys() == ["greeting", "list"]  # the undecodable key is not listed
    with pytest.raises(DriverError, match="WRONGTYPE"):
        store.get("list")
    store.set("json", {"a": [1, 2]})
    assert direct.get(f"{base}:json") == b'{"a":[1,2]}'
    assert store.clear() == 3  # what keys() listed; the foreign key stays
    assert direct.exists(f"{base}:\xff".encode("latin-1")) == 1


def test_url_from_redis_url_then_kv_url(
    redis_server: RedisServer, clean_env: pytest.MonkeyPatch, base: str
) -> None:
    clean_env.setenv("KV_URL", redis_server.url)
    assert hubkv.KV("redis", base=base).driver.describe().startswith(f"{redis_server.url} ")
    clean_env.setenv("REDIS_URL", f"redis://127.0.0.1:{redis_server.port}/3")
    store = hubkv.KV("redis", base=base)
    assert f"redis://127.0.0.1:{redis_server.port}/3 " in repr(store)
    store.set("k", 1)
    assert redis_server.client(db=3).get(f"{base}:k") == b"1"
    store.clear()


def test_no_url_is_a_config_error_naming_the_variables(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL.*KV_URL"):
        hubkv.KV("redis")


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "rediss://h:notaport"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisDriver(url=url)


@pytest.mark.parametrize(
    "url",
    ["redis://:pw@cache.example.com:6379/0", "redis://10.0.0.5", "redis://[2001:db8::1]:6379"],
)
def test_plaintext_to_another_host_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ConfigError, match="rediss://") as info:
        RedisDriver(url=url)
    assert "pw" not in str(info.value)
    RedisDriver(url=url, allow_plaintext=True)  # explicit: a private network the user trusts
    RedisDriver(url=url.replace("redis://", "rediss://"))
    for local in ("redis://127.0.0.1:6379", "redis://localhost", "redis://[::1]:6379"):
        RedisDriver(url=local)


@pytest.mark.parametrize(
    "url",
    ["redis://cache.localhost", "redis://localhost.localdomain", "redis://127.0.0.1.nip.io"],
)
def test_names_that_dns_resolves_are_not_loopback(url: str) -> None:
    """glibc sends *.localhost to DNS: it may be another host."""
    with pytest.raises(ConfigError, match="rediss://"):
        RedisDriver(url=url)


# -- TLS and the URL's query options ------------------------------------------------

PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.mark.parametrize(
    "query",
    [
        "ssl_cert_reqs=none",
        "ssl_check_hostname=false",
        "ssl_check_hostname=0",
        "ssl_check_hostname=No",
        "ssl_ca_certs=/etc/ssl/certs/ca-certificates.crt&ssl_cert_reqs=none",
        "ssl_cert_reqs=required&ssl_cert_reqs=none",
        f"password={PASSWORD}&ssl_cert_reqs=none",
    ],
)
@pytest.mark.parametrize("source", ["option", "REDIS_URL", "KV_URL"])
def test_turning_tls_verification_off_is_refused(
    query: str, source: str, clean_env: pytest.MonkeyPatch
) -> None:
    url = f"rediss://default:{PASSWORD}@cache.example.com:6380/0?{query}"
    if source != "option":
        clean_env.setenv(source, url)
    with pytest.raises(ConfigError, match="turns TLS certificate verification off") as info:
        hubkv.KV("redis", **({"url": url} if source == "option" else {}))
    said = everything_said(info.value)
    assert "ssl_ca_certs=/path/to/ca.pem" in said and "allow_unverified_tls=True" in said
    assert PASSWORD not in said


@pytest.mark.parametrize(
    "query",
    [
        "ssl_cert_reqs=required&ssl_check_hostname=true",
        "ssl_cert_reqs=optional",  # a client verifies the same as with required
        "ssl_ca_certs=/etc/ssl/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_password=x",
        "ssl_min_version=3&ssl_exclude_verify_flags=VERIFY_X509_STRICT",
        "ssl_check_hostname=",  # blank: ignored by redis-py, so verification stays on
    ],
)
def test_tls_options_that_keep_verification_on_are_accepted(query: str) -> None:
    RedisDriver(url=f"rediss://default:{PASSWORD}@cache.example.com:6380/0?{query}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:{port}/0?bogus=1", "'bogus' is not supported"),
        ("redis://127.0.0.1:{port}/0?decode_responses=true", "not supported"),
        ("redis://127.0.0.1:{port}/0?ssl_ca_certs=/tmp/ca.pem", "TLS options need rediss://"),
        ("unix:///tmp/redis.sock?socket_keepalive=true", "not supported"),
        ("redis://127.0.0.1:{port}/0?socket_timeout=1e12", "use the timeout option"),
        ("redis://127.0.0.1:{port}/0?max_connections=0", "use the max_connections option"),
        ("rediss://127.0.0.1:{port}/0?ssl_cert_reqs=NONE", "required .*or optional"),
        ("redis://127.0.0.1:{port}/0?db=x", "invalid redis url"),
        ("redis://[::1/0", "invalid redis url"),
    ],
)
def test_url_query_options_hubkv_does_not_pass_on_are_config_errors(
    redis_server: RedisServer, url: str, message: str
) -> None:
    """Once a bare TypeError (or RedisError) at the first command; now refused up front."""
    with pytest.raises(ConfigError, match=message):
        hubkv.KV("redis", url=url.format(port=redis_server.port) + f"&password={PASSWORD}")


def test_url_query_options_hubkv_passes_on_work(redis_server: RedisServer, base: str) -> None:
    store = hubkv.KV(
        "redis",
        url=f"redis://127.0.0.1:{redis_server.port}/0?db=5&client_name=hubkv-test"
        "&health_check_interval=30&socket_keepalive=true",
        base=base,
    )
    store.set("k", 1)
    assert redis_server.client(db=5).get(f"{base}:k") == b"1"
    store.clear()
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        f"redis://cache.example.com/0?password={PASSWORD}",  # plain text to another host
        f"redis://cache.example.com/0?password={PASSWORD.replace('-', '%2D')}",
        f"rediss://cache.example.com/0?ssl_password={PASSWORD}&ssl_cert_reqs=none",
        f"rediss://cache.example.com/0?password={PASSWORD}&nope=1",
        f"http://ada:{PASSWORD}@cache.example.com/0?password={PASSWORD}",
    ],
)
def test_a_password_in_the_query_never_shows(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisDriver(url=url)
    assert PASSWORD not in everything_said(info.value)


def test_a_password_in_the_query_never_shows_when_unreachable(base: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0?password={PASSWORD}"
    store = hubkv.KV("redis", url=url, base=base, retries=0, timeout=1)
    with pytest.raises(UnavailableError) as info:
        store.get("k")
    assert PASSWORD not in everything_said(info.value) + repr(store) + store.driver.describe()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(port, CA file): a redis-server speaking only TLS on 127.0.0.1, with a self-signed
    certificate for 127.0.0.1 that this machine does not trust."""
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = self_signed_certificate(folder)
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
        + ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        + ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        + ["--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None and time.monotonic() < deadline, "no TLS redis-server"
            time.sleep(0.05)
        yield port, cert
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tls_to_a_private_ca_works_with_ssl_ca_certs(
    tls_redis: tuple[int, Path], base: str
) -> None:
    """The way the refusal points to: trust the CA; verification stays on."""
    port, ca = tls_redis
    untrusted = hubkv.KV("redis", url=f"rediss://127.0.0.1:{port}/0", base=base, retries=0)
    with pytest.raises(UnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.get("k")
    trusted = hubkv.KV("redis", url=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", base=base)
    trusted.set("k", {"tls": True})
    assert trusted.get("k") == {"tls": True}
    trusted.clear()
    for store in (untrusted, trusted):
        store.close()


def test_allow_unverified_tls_is_explicit_and_logged(
    tls_redis: tuple[int, Path], base: str, caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none"
    with pytest.raises(ConfigError, match="allow_unverified_tls=True"):
        hubkv.KV("redis", url=url, base=base)
    with caplog.at_level(logging.WARNING, logger="hubkv"):
        store = hubkv.KV("redis", url=url, base=base, allow_unverified_tls=True)
    assert "turns TLS certificate verification off (ssl_cert_reqs=none)" in caplog.text
    assert "can be intercepted" in caplog.text
    store.set("k", 1)  # the self-signed certificate is accepted, as asked
    assert store.get("k") == 1
    store.clear()
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubkv"):  # nothing turned off: no warning
        hubkv.KV("redis", url=f"rediss://127.0.0.1:{port}/0", allow_unverified_tls=True).close()
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": 1e12}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"max_connections": 0}, "max_connections"),
    ],
)
def test_bad_options_are_config_errors(
    redis_server: RedisServer, options: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        hubkv.KV("redis", url=redis_server.url, **options)


def test_a_wrong_password_never_shows(redis_server: RedisServer, base: str) -> None:
    admin = redis_server.client()
    password = "pw-" + uuid.uuid4().hex
    admin.acl_setuser(
        "ada", enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"]
    )
    try:
        good = hubkv.KV("redis", url=f"redis://ada:{password}@127.0.0.1:{redis_server.port}/0")
        assert password not in repr(good)
        good.set(f"{base}:k", 1)
        assert good.get(f"{base}:k") == 1
        wrong = "wrong-" + uuid.uuid4().hex
        bad = hubkv.KV("redis", url=f"redis://ada:{wrong}@127.0.0.1:{redis_server.port}/0")
        with pytest.raises(AuthenticationError, match="refused the credentials") as info:
            bad.get("k")
        said = everything_said(info.value) + repr(bad)
        assert wrong not in said and password not in said
        good.close()
        bad.close()
    finally:
        admin.acl_deluser("ada")


def test_an_unreachable_server_is_unavailable(base: str) -> None:
    port = free_port()  # nothing listens there
    store = hubkv.KV("redis", url=f"redis://127.0.0.1:{port}/0", base=base, retries=1, timeout=2)
    with pytest.raises(UnavailableError, match="could not be reached") as info:
        store.set("k", 1)
    assert str(port) in str(info.value)


def test_close_then_reuse_reconnects(store: hubkv.KV, redis_server: RedisServer) -> None:
    store.set("k", 1)
    store.close()
    redis_server.client().client_kill_filter(_type="normal", skipme=True)  # drop every connection
    assert store.get("k") == 1


class LostReply:
    """A TCP relay to redis-server that, when armed with ``marker``, passes on the next
    command containing it (the server runs it) but closes the client's connection
    instead of relaying the reply: a write applied whose answer never arrives."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.marker = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            lost = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, lost), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, lost), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, lost: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.marker and self.marker in data:
                    self.marker = b""
                    lost.set()  # before the server can answer
                upstream.sendall(data)

    def _down(self, upstream: socket.socket, client: socket.socket, lost: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while (data := upstream.recv(65536)) and not lost.is_set():
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)  # wakes _up's recv (a bare close would not)
        client.close()
        upstream.close()


def test_a_clear_applied_but_unanswered_is_not_repeated(
    redis_server: RedisServer, base: str
) -> None:
    """redis-py would send the UNLINK again on a new connection, and count 0 for what
    the first one removed; the driver sends it once and says it may have been applied."""
    relay = LostReply(redis_server.port)
    store = hubkv.KV("redis", url=f"redis://127.0.0.1:{relay.port}/0", base=base, retries=3)
    try:
        store.set_many({"a": 1, "b": 2})
        before = command_calls(redis_server).get("unlink", 0)
        relay.marker = b"UNLINK"
        with pytest.raises(UnavailableError, match="may or may not have been applied"):
            store.clear()
        assert command_calls(redis_server).get("unlink", 0) - before == 1
        assert store.keys() == []  # it was applied: the message told the truth
        # Other commands are still retried, and a dropped pooled connection is
        # replaced before the UNLINK is sent, not reported as a failure.
        relay.marker = b"MGET"
        store.set_many({"c": 3, "d": 4})
        assert store.get_many(["c", "d"]) == {"c": 3, "d": 4}
        redis_server.client().client_kill_filter(_type="normal", skipme=True)
        assert store.clear() == 2
    finally:
        store.close()
        relay.close()


def test_the_extra_is_named_when_redis_py_is_missing(tmp_path: Path) -> None:
    code = """
import sys
sys.modules["redis"] = None  # as if redis-py were not installed
import hubkv
try:
    hubkv.KV("redis", url="redis://127.0.0.1:1/0")
except hubkv.ConfigError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(Path(__file__).parent.parent), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "pip install 'hubkv[redis]'" in result.stdout, result.stderr
