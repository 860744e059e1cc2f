"""The upstash driver against the Upstash REST stand-in over a real redis-server.

The shared suite (tests/drivers) proves the semantics; this file proves what is
Upstash's own: round trips per operation, the wire format (base64 replies,
``SET ... PX``, escaped ``SCAN`` patterns, ``/multi-exec`` batches), the key
layout shared with the redis driver and with JavaScript's unstorage,
configuration from the environment, and that the token never leaks.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hubkv
from hubkv import AuthenticationError, ConfigError, DriverError, ReadOnlyError, RequestTooLargeError
from hubkv.config import resolve
from hubkv.drivers.upstash import UpstashDriver
from tests.standins.faulty_http import FaultyHTTP, Reply, everything_said, everything_shown
from tests.standins.redis_server import RedisServer
from tests.standins.upstash_rest import UpstashRest

ENV_NAMES = [
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "KV_REST_API_URL",
    "KV_REST_API_TOKEN",
    "KV_REST_API_READ_ONLY_TOKEN",
    "HUBKV_DRIVER",
]


@pytest.fixture
def base() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(upstash_rest: UpstashRest, base: str) -> Iterator[hubkv.KV]:
    kv = hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token, base=base)
    yield kv
    kv.close()


@pytest.fixture(scope="module")
def empty_db(redis_server: RedisServer) -> Iterator[UpstashRest]:
    """A stand-in over database 7, which only this module uses (so SCAN sees only our keys)."""
    server = UpstashRest(redis_server.port, db=7).start()
    yield server
    server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def driver_of(store: hubkv.KV) -> UpstashDriver:
    driver = store.driver
    assert isinstance(driver, UpstashDriver)
    return driver


# -- round trips --------------------------------------------------------------


def test_every_operation_is_one_request(empty_db: UpstashRest) -> None:
    empty_db.redis.flushdb()
    store = hubkv.KV("upstash", url=empty_db.url, token=empty_db.token, base="app")
    http = driver_of(store).http
    items = {f"item:{i:03d}": {"i": i} for i in range(100)}

    def requests_for(call: object) -> tuple[int, list[str]]:
        sent, seen = http.requests_sent, len(empty_db.commands)
        assert callable(call)
        call()
        return http.requests_sent - sent, [c[0] for c in empty_db.commands[seen:]]

    assert requests_for(lambda: store.set("one", 1)) == (1, ["SET"])
    assert requests_for(lambda: store.set("two", 2, ttl=60)) == (1, ["SET"])
    assert requests_for(lambda: store.get("one")) == (1, ["GET"])
    assert requests_for(lambda: store.has("one")) == (1, ["EXISTS"])
    assert requests_for(lambda: store.ttl("two")) == (1, ["PTTL"])
    assert requests_for(lambda: store.delete("two")) == (1, ["UNLINK"])
    assert requests_for(lambda: store.set_many(items)) == (1, ["SET"] * 100)
    assert requests_for(lambda: store.get_many(items)) == (1, ["MGET"])
    assert requests_for(lambda: store.keys("item:")) == (1, ["SCAN"])
    assert requests_for(lambda: store.delete_many(list(items)[:50])) == (
        1,
        ["UNLINK"],
    )
    assert requests_for(lambda: store.clear("item:")) == (2, ["SCAN", "UNLINK"])
    assert store.keys() == ["one"]
    assert empty_db.requests[-4:] == ["/", "/", "/", "/"]  # single commands: POST /
    store.close()


def test_clear_on_a_big_shared_database_unlinks_in_full_batches(empty_db: UpstashRest) -> None:
    """SCAN walks the whole database: its pages mostly hold other apps' keys, and
    the few matches of each are gathered into full UNLINK batches."""
    empty_db.redis.flushdb()
    others = 50_000
    with empty_db.redis.pipeline(transaction=False) as pipe:
        for i in range(others):
            pipe.set(f"other-app:{i}", b"1")
        pipe.execute()
    store = hubkv.KV("upstash", url=empty_db.url, token=empty_db.token, base="app")
    driver = driver_of(store)
    items = {f"p:{i:03d}": i for i in range(100)}

    def cost(call: Callable[[], object]) -> tuple[object, list[str]]:
        seen = len(empty_db.commands)
        result = call()
        return result, [command[0] for command in empty_db.commands[seen:]]

    # About one SCAN per scan_count keys of the whole database (COUNT is a hint to
    # Redis), then one UNLINK: 6 SCAN + 1 UNLINK here, where COUNT 1000 and an
    # UNLINK per page with a match made it 51 SCAN + ~40 UNLINK.
    pages = (others + len(items)) // driver.scan_count + 1
    store.set_many(items)
    listed, commands = cost(lambda: store.keys("p:"))
    assert listed == list(items) and set(commands) == {"SCAN"} and len(commands) <= 2 * pages
    removed, commands = cost(lambda: store.clear("p:"))
    assert removed == 100 and commands.count("UNLINK") == 1 and commands[-1] == "UNLINK"
    assert commands.count("SCAN") <= 2 * pages

    # Small SCAN steps (many pages, a few matches each) and small batches: every
    # UNLINK but the last is full.
    driver.scan_count, driver.batch_keys = 1000, 30
    store.set_many(items)
    removed, commands = cost(lambda: store.clear("p:"))
    assert removed == 100 and commands.count("SCAN") > 40
    unlinks = [c for c in empty_db.commands[-len(commands) :] if c[0] == "UNLINK"]
    assert [len(c) - 1 for c in unlinks] == [30, 30, 30, 10]
    assert store.keys() == [] and empty_db.redis.dbsize() == others
    empty_db.redis.flushdb()
    store.close()


def test_set_many_is_one_transaction(empty_db: UpstashRest) -> None:
    store = hubkv.KV("upstash", url=empty_db.url, token=empty_db.token, base="tx")
    seen = len(empty_db.requests)
    store.set_many({"a": 1, "b": 2}, ttl=30)
    assert empty_db.requests[seen:] == ["/multi-exec"]
    assert empty_db.commands[-2:] == [
        ["SET", "tx:a", "1", "PX", "30000"],
        ["SET", "tx:b", "2", "PX", "30000"],
    ]
    assert 29.0 < (store.ttl("a") or 0) <= 30.0
    store.close()


def test_each_request_carries_the_sync_token_of_the_answer_before(
    store: hubkv.KV, upstash_rest: UpstashRest
) -> None:
    seen = len(upstash_rest.requests)
    store.set("k", 1)
    store.get("k")
    store.set_many({"a": 1, "b": 2})
    first, second, third = upstash_rest.sync_tokens_received[seen : seen + 3]
    assert first == "" and second.startswith("sync-") and third.startswith("sync-")
    assert int(third.removeprefix("sync-")) > int(second.removeprefix("sync-"))


@pytest.mark.parametrize("token", ["two words", "line\nbreak", "tab\tin", "\x00", "smart’quote"])
def test_a_mangled_token_is_a_config_error_that_does_not_show_it(token: str) -> None:
    with pytest.raises(ConfigError, match="copy it again") as info:
        UpstashDriver(url="https://a.upstash.io", token=token)
    assert token not in str(info.value)
    assert (
        UpstashDriver(url="https://a.upstash.io", token=" pasted\n").http.scrub("pasted") == "***"
    )


def test_big_batches_are_split_by_size_and_count(store: hubkv.KV) -> None:
    driver = driver_of(store)
    driver.batch_bytes = 10_000
    driver.batch_keys = 20
    # 999 bytes a pair: 982 of JSON, 3 of key, 14 of "base:" (t + 12 hex digits + ":")
    items = {f"k{i:02d}": "x" * 980 for i in range(50)}
    sent = driver.http.requests_sent
    store.set_many(items)
    assert driver.http.requests_sent - sent == 5  # 10 pairs (9,990 bytes) per request
    sent = driver.http.requests_sent
    assert store.get_many(items) == items
    assert driver.http.requests_sent - sent == 3  # 20 keys per MGET
    sent = driver.http.requests_sent
    store.delete_many(list(items)[:45])
    assert driver.http.requests_sent - sent == 3
    assert store.keys() == ["k45", "k46", "k47", "k48", "k49"]


def test_a_value_over_the_request_limit_is_refused_and_not_written(
    redis_server: RedisServer, base: str
) -> None:
    small = UpstashRest(redis_server.port, max_request_bytes=50_000).start()
    try:
        store = hubkv.KV("upstash", url=small.url, token=small.token, base=base)
        store.set("small", "x" * 1000)
        sent = driver_of(store).http.requests_sent
        with pytest.raises(RequestTooLargeError, match="too large") as info:
            store.set("big", "x" * 60_000)
        assert driver_of(store).http.requests_sent - sent == 1  # not retried
        assert small.token not in everything_said(info.value)
        assert store.keys() == ["small"]
        store.close()
    finally:
        small.stop()


# -- wire format and key layout -----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"OK",  # the status reply the REST API never base64-encodes
        b"T0s=",  # "OK" in base64
        b"null",
        b"\x00\x01\x1f control bytes",
        "ünïcødé 日本語 🎉".encode(),
        b'"quoted" \\ backslash',
        ("x" * 300_000).encode(),
    ],
    ids=lambda v: repr(v[:12]),
)
def test_bytes_come_back_exactly(
    store: hubkv.KV, redis_server: RedisServer, base: str, value: bytes
) -> None:
    driver = driver_of(store)
    driver.set("raw", value, None)
    assert driver.get("raw") == value
    assert driver.get_many(["raw", "missing"]) == {"raw": value}
    assert redis_server.client().get(f"{base}:raw") == value  # stored as-is


def test_non_utf8_bytes_are_refused_before_any_request(store: hubkv.KV) -> None:
    driver = driver_of(store)
    sent = driver.http.requests_sent
    with pytest.raises(DriverError, match="not UTF-8"):
        driver.set("raw", b"\xff\xfe", None)
    assert driver.http.requests_sent == sent


def test_plain_strings_from_unstorage_read_back_as_text(
    store: hubkv.KV, redis_server: RedisServer, base: str
) -> None:
    direct = redis_server.client()
    direct.set(f"{base}:greeting", "hello")  # what unstorage stores for a plain string
    direct.set(f"{base}:count", "42")  # ... and for a number (JSON)
    assert store.get("greeting") == "hello"
    assert store.get("count") == 42
    store.set("settings", {"theme": "system", "langs": ["en", "fr"]})
    assert json.loads(direct.get(f"{base}:settings") or b"") == {
        "theme": "system",
        "langs": ["en", "fr"],
    }
    assert store.keys() == ["count", "greeting", "settings"]


def test_upstash_and_redis_drivers_read_each_others_data(
    store: hubkv.KV, redis_server: RedisServer, base: str
) -> None:
    native = hubkv.KV("redis", url=redis_server.url, base=base)
    store.set("from-upstash", [1, 2])
    native.set("from-redis", {"a": None}, ttl=100)
    assert native.get("from-upstash") == [1, 2]
    assert store.get("from-redis") == {"a": None}
    assert store.keys() == native.keys() == ["from-redis", "from-upstash"]
    assert 99 < (store.ttl("from-redis") or 0) <= 100
    assert native.clear() == 2
    native.close()


def test_scan_patterns_escape_glob_characters_of_base_and_prefix(
    upstash_rest: UpstashRest,
) -> None:
    tricky = hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token, base="a*[b]?")
    lookalike = hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token, base="aX[b]?")
    tricky.clear()
    lookalike.clear()
    tricky.set_many({"p*1": 1, "p?2": 2, "px3": 3})
    lookalike.set("p*1", "other app")
    seen = len(upstash_rest.commands)
    assert tricky.keys("p*") == ["p*1"]
    assert upstash_rest.commands[seen][:4] == ["SCAN", "0", "MATCH", "a\\*\\[b\\]\\?:p\\**"]
    assert tricky.keys() == ["p*1", "p?2", "px3"]
    assert tricky.clear("p?") == 1
    assert lookalike.keys() == ["p*1"]
    assert lookalike.clear() == 1
    assert tricky.clear() == 2


def test_ttls_are_milliseconds_rounded_up(store: hubkv.KV, upstash_rest: UpstashRest) -> None:
    store.set("k", 1, ttl=0.3)
    store.set("m", 1, ttl=1.0001)
    assert upstash_rest.commands[-2][3:] == ["PX", "300"]
    assert upstash_rest.commands[-1][3:] == ["PX", "1001"]
    remaining = store.ttl("m")
    assert remaining is not None and 0.9 < remaining <= 1.001


def test_a_redis_error_is_a_driver_error(
    store: hubkv.KV, redis_server: RedisServer, base: str
) -> None:
    redis_server.client().rpush(f"{base}:list", "a")  # not a string: GET fails
    with pytest.raises(DriverError, match="WRONGTYPE"):
        store.get("list")
    assert store.get_many(["list"]) == {}  # MGET answers nil for non-strings
    assert store.keys() == ["list"]


def test_threads_share_one_store(store: hubkv.KV) -> None:
    def work(thread: int) -> None:
        for i in range(25):
            store.set(f"t{thread}:{i}", [thread, i])
            assert store.get(f"t{thread}:{i}") == [thread, i]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))  # re-raises what a thread raised
    assert len(store.keys()) == 200
    assert store.get_many([f"t{n}:24" for n in range(8)]) == {f"t{n}:24": [n, 24] for n in range(8)}


# -- configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected", "read_only"),
    [
        (
            {
                "UPSTASH_REDIS_REST_URL": "https://one.upstash.io",
                "UPSTASH_REDIS_REST_TOKEN": "secret-1",
                "KV_REST_API_URL": "https://two.upstash.io",
                "KV_REST_API_TOKEN": "secret-2",
            },
            ("https://one.upstash.io", "secret-1"),
            False,
        ),
        (
            {"KV_REST_API_URL": "https://two.upstash.io", "KV_REST_API_TOKEN": "secret-2"},
            ("https://two.upstash.io", "secret-2"),
            False,
        ),
        (
            {
                "KV_REST_API_URL": "https://two.upstash.io",
                "KV_REST_API_READ_ONLY_TOKEN": "ro-secret",
            },
            ("https://two.upstash.io", "ro-secret"),
            True,
        ),
        ({"UPSTASH_REDIS_REST_URL": "https://one.upstash.io"}, None, False),
        ({"KV_REST_API_TOKEN": "secret-2"}, None, False),
    ],
)
def test_credentials_from_the_environment(
    env: dict[str, str], expected: tuple[str, str] | None, read_only: bool
) -> None:
    found = UpstashDriver.from_environment(env)
    if expected is None:
        assert found is None
        return
    assert found is not None
    options, reason = found
    assert (options["url"], options["token"]) == expected
    assert options.get("read_only", False) is read_only
    assert expected[1] not in reason
    assert ("read-only" in reason) is read_only


def test_kv_with_nothing_configured_picks_upstash_and_says_why(
    upstash_rest: UpstashRest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"KV_REST_API_URL": upstash_rest.url, "KV_REST_API_TOKEN": upstash_rest.token}
    with caplog.at_level(logging.INFO, logger="hubkv"):
        resolved = resolve(None, {}, environ=env, cwd=tmp_path)
    assert isinstance(resolved.driver, UpstashDriver)
    assert not resolved.read_only
    assert "upstash" in caplog.text and "KV_REST_API_URL and KV_REST_API_TOKEN" in caplog.text
    assert upstash_rest.token not in caplog.text
    resolved.driver.close()


def test_only_the_read_only_token_gives_a_read_only_store(
    upstash_rest: UpstashRest, tmp_path: Path, base: str, clean_env: pytest.MonkeyPatch
) -> None:
    hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token, base=base).set("a", 1)
    env = {
        "KV_REST_API_URL": upstash_rest.url,
        "KV_REST_API_READ_ONLY_TOKEN": upstash_rest.read_only_token,
    }
    resolved = resolve(None, {}, environ=env, cwd=tmp_path)
    assert resolved.read_only
    for name, value in env.items():
        clean_env.setenv(name, value)
    store = hubkv.KV("upstash", base=base)  # named explicitly: reads the same variables
    assert store.is_read_only and store.driver.read_only
    http = driver_of(store).http
    with pytest.raises(ReadOnlyError):
        store.set("a", 2)
    with pytest.raises(ReadOnlyError):
        store.clear()
    assert http.requests_sent == 0  # refused before any request
    assert store.get("a") == 1 and store.keys() == ["a"]  # reads work with that token
    store.close()


def test_the_stand_in_refuses_writes_with_the_read_only_token(
    upstash_rest: UpstashRest, base: str
) -> None:
    driver = UpstashDriver(url=upstash_rest.url, token=upstash_rest.read_only_token, base=base)
    with pytest.raises(AuthenticationError, match="NOPERM") as info:
        driver.set("a", b"1", None)
    assert upstash_rest.read_only_token not in everything_said(info.value)


def test_named_without_credentials_is_a_config_error(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        hubkv.KV("upstash")
    message = str(info.value)
    for name in ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "KV_REST_API_URL"]:
        assert name in message
    clean_env.setenv("UPSTASH_REDIS_REST_URL", "https://one.upstash.io")
    with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_TOKEN"):
        hubkv.KV("upstash")
    with pytest.raises(ConfigError, match="UPSTASH_REDIS_REST_TOKEN"):
        hubkv.KV("upstash", token="  \n")


def test_hubkv_environment_variables_configure_it(
    upstash_rest: UpstashRest, base: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "HUBKV_DRIVER": "upstash",
        "HUBKV_URL": upstash_rest.url,
        "HUBKV_TOKEN": upstash_rest.token,
        "HUBKV_BASE": base,
        "HUBKV_TIMEOUT": "2.5",
        "HUBKV_RETRIES": "1",
    }
    driver = resolve(None, {}, environ=env, cwd=tmp_path).driver
    assert isinstance(driver, UpstashDriver)
    assert driver.base == base
    assert driver.http.timeout[1] == 2.5 and driver.http.retries == 1
    driver.set("k", b'"v"', None)
    assert driver.get("k") == b'"v"'


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://eu1-fine-cat.upstash.io", "https"),
        ("https://user:pw@eu1-fine-cat.upstash.io", "credentials"),
        ("ftp://eu1-fine-cat.upstash.io", "https"),
        ("eu1-fine-cat.upstash.io", "https"),
    ],
)
def test_urls_must_be_https_unless_loopback(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        UpstashDriver(url=url, token="tok")
    assert "pw" not in str(info.value)
    UpstashDriver(url="http://localhost:8080", token="tok")
    UpstashDriver(url="http://[::1]:8080/", token="tok")


@pytest.mark.parametrize("base", ["bad\x00", "x" * 600, 5])
def test_invalid_base_is_a_config_error(base: object) -> None:
    with pytest.raises(ConfigError, match="base"):
        UpstashDriver(url="https://a.upstash.io", token="t", base=base)  # type: ignore[arg-type]


# -- secrets ------------------------------------------------------------------


def test_a_wrong_token_is_an_authentication_error_that_never_shows_a_token(
    upstash_rest: UpstashRest,
    base: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    store = hubkv.KV("upstash", url=upstash_rest.url, token=wrong, base=base)
    with pytest.raises(AuthenticationError, match="HTTP 401.*check the token") as info:
        store.get("k")
    assert driver_of(store).http.requests_sent == 1  # not retried
    driver = driver_of(store)
    said = everything_shown(info.value, caplog, capsys, store, driver, driver.http)
    said += driver.describe()
    assert wrong not in said and upstash_rest.token not in said
    assert "Unauthorized" in said


def test_a_token_echoed_by_the_service_is_scrubbed(
    faulty_http: Callable[..., FaultyHTTP], upstash_rest: UpstashRest, base: str
) -> None:
    proxy = faulty_http(upstream=upstash_rest.url)
    token = upstash_rest.token
    proxy.script(
        Reply(400, {"error": f"ERR bad token {token}"}),
        Reply(403, {"error": f"token {token} is disabled"}),
        Reply(200, {"unexpected": token}),
    )
    store = hubkv.KV("upstash", url=proxy.url, token=token, base=base)
    with pytest.raises(DriverError) as first:
        store.set("k", 1)
    with pytest.raises(AuthenticationError) as second:
        store.get("k")
    with pytest.raises(DriverError, match="right service") as third:
        store.get("k")
    for error in (first.value, second.value, third.value):
        said = everything_said(error)
        assert token not in said and "***" in said


# -- imports ------------------------------------------------------------------


def test_imports_stay_cheap(upstash_rest: UpstashRest, tmp_path: Path) -> None:
    """``import hubkv`` and picking upstash from the environment load neither requests nor redis."""
    code = """
import sys
import hubkv
from hubkv.drivers import driver_class
assert driver_class("upstash").name == "upstash"
store = hubkv.KV()  # picks upstash from the environment
assert store.driver.name == "upstash", store
assert "requests" not in sys.modules and "redis" not in sys.modules, "eager import"
store.set("k", 1)
assert "requests" in sys.modules
assert "redis" not in sys.modules
print("ok")
"""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUBKV_", "KV_", "UPSTASH_"))},
        "UPSTASH_REDIS_REST_URL": upstash_rest.url,
        "UPSTASH_REDIS_REST_TOKEN": upstash_rest.token,
    }
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr
    hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token).delete("k")


def test_commands_without_a_transaction_go_through_the_pipeline_endpoint(
    upstash_rest: UpstashRest, base: str
) -> None:
    driver = UpstashDriver(url=upstash_rest.url, token=upstash_rest.token)
    seen = len(upstash_rest.requests)
    replies = driver.send(
        [["SET", f"{base}:p", "1"], ["GET", f"{base}:p"], ["PTTL", f"{base}:nope"], ["PING"]],
        atomic=False,
        idempotent=True,
    )
    assert replies == [b"OK", b"1", -2, b"PONG"]
    assert upstash_rest.requests[seen:] == ["/pipeline"]
    with pytest.raises(DriverError, match="ERR unknown command"):
        driver.send([["PING"], ["NOSUCHCOMMAND"]], atomic=False, idempotent=True)
