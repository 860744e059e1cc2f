"""The cloudflare-kv-binding driver against Cloudflare's runtime (workerd, via miniflare).

The shared suite (tests/drivers) proves the semantics; this file proves what is
Cloudflare's own: requests per operation and the routes they use, keys
percent-encoded whole, the 60 s TTL floor, bulk limits and ``unsuccessful_keys``,
the error envelope and its mapping, faults (429, 5xx, slow replies, resets,
pages that are not the API), configuration, the CLI and that the token never
leaks.
"""

from __future__ import annotations

import doctest
import logging
import os
import subprocess
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

import hubkv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from hubkv import (
    AuthenticationError,
    ConfigError,
    DriverError,
    RateLimitedError,
    RequestTooLargeError,
    UnavailableError,
)
from hubkv.config import resolve
from hubkv.drivers import cloudflare
from hubkv.drivers import http as http_module
from hubkv.drivers.cloudflare import CloudflareKVDriver
from tests.standins.cloudflare_kv import CloudflareKV
from tests.standins.faulty_http import (
    FaultyHTTP,
    Forward,
    Reply,
    Reset,
    everything_said,
    html_page,
    invalid_json,
)

VARIABLES = ["CLOUDFLARE_KV_NAMESPACE_ID", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in os.environ:
        if name.startswith(("HUBKV_", "CLOUDFLARE_", "UPSTASH_", "KV_REST_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def store(cloudflare_kv: CloudflareKV, cloudflare_namespace: str) -> Iterator[hubkv.KV]:
    kv = hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace))
    yield kv
    kv.close()


@pytest.fixture
def recorder(faulty_http: Callable[..., FaultyHTTP], cloudflare_kv: CloudflareKV) -> FaultyHTTP:
    """A proxy in front of the Worker that records every request (and misbehaves on cue)."""
    return faulty_http(upstream=cloudflare_kv.origin)


def through(proxy: FaultyHTTP, server: CloudflareKV, namespace_id: str, **options: Any) -> hubkv.KV:
    """A store on ``namespace_id`` whose requests go through ``proxy``."""
    return hubkv.KV(
        "cloudflare-kv-binding",
        **{**server.options(namespace_id), "base_url": f"{proxy.url}/client/v4", **options},
    )


def driver_of(store: hubkv.KV) -> CloudflareKVDriver:
    driver = store.driver
    assert isinstance(driver, CloudflareKVDriver)
    return driver


def routes(proxy: FaultyHTTP, start: int = 0) -> list[str]:
    """``METHOD /route?query`` of the requests seen, without the namespace's path."""
    found = []
    for seen in proxy.seen[start:]:
        path = seen.path.split("/namespaces/", 1)[1].partition("/")[2]
        found.append(f"{seen.method} /{path}")
    return found


# -- requests per operation ---------------------------------------------------


def test_requests_per_operation_and_their_routes(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    http = driver_of(store).http

    def cost(call: Callable[[], object]) -> tuple[int, list[str]]:
        before, seen = http.requests_sent, len(recorder.seen)
        call()
        return http.requests_sent - before, routes(recorder, seen)

    assert cost(lambda: store.set("a/b", {"x": 1}, ttl=120)) == (
        1,
        ["PUT /values/a%2Fb?expiration_ttl=120"],
    )
    assert cost(lambda: store.get("a/b")) == (1, ["GET /values/a%2Fb"])
    assert cost(lambda: store.has("a/b")) == (1, ["GET /metadata/a%2Fb"])  # no value read
    assert cost(lambda: store.has("nope")) == (1, ["GET /metadata/nope"])
    assert cost(lambda: store.ttl("a/b")) == (1, ["GET /keys?prefix=a%2Fb&limit=10"])
    assert cost(lambda: store.delete("a/b")) == (1, ["DELETE /values/a%2Fb"])

    items = {f"bulk:{i:04d}": i for i in range(1200)}
    assert cost(lambda: store.set_many(items)) == (1, ["PUT /bulk"])
    count, seen = cost(lambda: store.keys("bulk:"))
    assert count == 2 and all(route.startswith("GET /keys?prefix=bulk%3A") for route in seen)
    count, seen = cost(lambda: store.get_many(list(items)[:250]))
    assert (count, seen) == (3, ["POST /bulk/get"] * 3)  # at most 100 keys each
    assert cost(lambda: store.delete_many(list(items)[:200])) == (1, ["POST /bulk/delete"])
    count, seen = cost(lambda: store.clear("bulk:"))  # 1,000 keys: a page, then the rest
    assert (count, seen[-1]) == (2, "POST /bulk/delete")
    assert cost(lambda: store.clear()) == (1, ["GET /keys?prefix=&limit=1000"])  # nothing to delete
    assert store.keys() == []


def test_has_reads_the_envelope_and_takes_null_metadata_as_present(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    store.set("plain", 1)
    # Cloudflare answers a key without metadata with success and result null
    # (cloudflare-python reads it as None), one with metadata with it; the Worker too.
    url = f"{cloudflare_kv.namespaces_url}/{cloudflare_namespace}"
    session = driver_of(store).http.session()  # carries the token
    tagged = session.put(f"{url}/values/tagged", files={"value": "2", "metadata": '{"a": 1}'})
    assert tagged.ok
    for key, metadata in [("plain", None), ("tagged", {"a": 1})]:
        reply = session.get(f"{url}/metadata/{key}")
        assert (reply.status_code, reply.json()["success"], reply.json()["result"]) == (
            200,
            True,
            metadata,
        )
        assert store.has(key)
    assert not store.has("nope")  # 404, code 10009
    # A 200 that is not the API's envelope is an error, never a present key.
    recorder.script(html_page(200))
    with pytest.raises(DriverError, match="HTML page"):
        store.has("plain")
    recorder.script(Reply(200, {"success": False, "errors": [], "result": None}))
    with pytest.raises(DriverError, match="unexpected answer"):
        store.has("nope")


def test_keys_travel_percent_encoded_whole(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    keys = [
        "a/b",
        "?q=1&x=2",
        "#frag",
        "100%",
        "%2F",
        "a/../b",
        "...",
        "+ plus",
        "é/日 🎉",
        "a;b,c",
    ]
    for key in keys:
        start = len(recorder.seen)
        store.set(key, key)
        assert store.get(key) == key and store.has(key) and store.ttl(key) is None
        for seen in recorder.seen[start : start + 2]:
            segment = seen.path.rsplit("/", 1)[1]
            assert segment == quote(key, safe="") and unquote(segment) == key
    assert store.keys() == sorted(keys)
    assert store.get_many(keys) == {key: key for key in keys}
    for key in keys:
        store.delete(key)
    assert store.keys() == []


# -- TTLs ---------------------------------------------------------------------


def test_a_short_ttl_is_raised_to_60_seconds_with_one_warning(
    store: hubkv.KV, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    with pytest.warns(UserWarning, match=r"shortest TTL is 60 seconds: ttl=1 was raised to 60"):
        store.set("short", 1, ttl=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        store.set_many({"b1": 1, "b2": 2}, ttl=0.5)
        store.set("short2", 2, ttl=59)
    remaining = store.ttl("short")
    assert remaining is not None and 55 < remaining <= 60
    cloudflare_kv.advance_clock(cloudflare_namespace, 30)
    assert store.keys() == ["b1", "b2", "short", "short2"]  # alive past the TTL asked for
    cloudflare_kv.advance_clock(cloudflare_namespace, 31)
    assert store.keys() == []
    with pytest.warns(UserWarning, match="ttl=2 was raised"):  # once per store, not per process
        hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace)).set(
            "k", 1, ttl=2
        )


def test_ttls_are_whole_seconds_rounded_down(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    store.set("k", 1, ttl=90.2)
    store.set_many({"m": 1}, ttl=3600.5)
    assert parse_qs(urlsplit(recorder.seen[0].path).query) == {"expiration_ttl": ["90"]}
    assert b'"expiration_ttl":3600' in recorder.seen[1].body
    remaining = store.ttl("k")  # never more than asked: Cloudflare keeps whole seconds
    assert remaining is not None and 88 < remaining <= 90


# -- bulk limits --------------------------------------------------------------


def test_bulk_requests_are_split_by_count_and_by_size(
    recorder: FaultyHTTP,
    cloudflare_kv: CloudflareKV,
    cloudflare_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cloudflare, "_BULK_KEYS", 10)
    monkeypatch.setattr(cloudflare, "_BULK_BYTES", 50_000)
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    store.set_many({f"n{i:02d}": i for i in range(25)})
    assert routes(recorder) == ["PUT /bulk"] * 3
    assert [seen.body.count(b'"key"') for seen in recorder.seen] == [10, 10, 5]
    start = len(recorder.seen)
    store.set_many({f"big{i}": "x" * 20_000 for i in range(5)})  # ~20 kB items, 50 kB a request
    bodies = [seen.body for seen in recorder.seen[start:]]
    assert [body.count(b'"key"') for body in bodies] == [2, 2, 1]
    assert all(len(body) <= 50_000 for body in bodies)
    start = len(recorder.seen)
    assert store.clear("n") == 25
    assert routes(recorder, start)[-3:] == ["POST /bulk/delete"] * 3
    assert store.keys() == [f"big{i}" for i in range(5)]


def test_unsuccessful_keys_are_sent_again(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    items = {f"k{i}": i for i in range(10)}
    cloudflare_kv.arm_fault(cloudflare_namespace, unsuccessful=3)
    store.set_many(items)
    assert [seen.body.count(b'"key"') for seen in recorder.seen] == [10, 3]
    assert store.get_many(list(items)) == items
    cloudflare_kv.arm_fault(cloudflare_namespace, unsuccessful=4)
    start = len(recorder.seen)
    store.delete_many(list(items))
    assert [seen.body.count(b'"k') for seen in recorder.seen[start:]] == [10, 4]
    assert store.keys() == []


def test_keys_still_unsuccessful_after_three_attempts_raise(
    store: hubkv.KV, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    cloudflare_kv.arm_fault(cloudflare_namespace, unsuccessful=2, times=3)
    with pytest.raises(DriverError, match=r"2 key\(s\) as unsuccessful after 3 attempts"):
        store.set_many({"a": 1, "b": 2, "c": 3})
    assert store.keys() == ["c"]  # the others were written


def test_unsuccessful_keys_are_retried_after_the_clients_jittered_backoff(
    store: hubkv.KV,
    cloudflare_kv: CloudflareKV,
    cloudflare_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(http_module, "time", types.SimpleNamespace(sleep=waits.append))
    http = driver_of(store).http
    for _ in range(3):
        cloudflare_kv.arm_fault(cloudflare_namespace, unsuccessful=2, times=2)
        store.set_many({"a": 1, "b": 2, "c": 3})  # three rounds: two waits
    assert len(waits) == 6
    for attempt, wait in enumerate(waits):
        base = http.backoff * 2 ** (attempt % 2)
        assert 0.5 * base <= wait <= 1.5 * base
    assert len(set(waits)) == 6  # jittered: no two alike
    assert store.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}


def test_get_many_asks_key_by_key_when_a_bulk_reply_would_be_too_large(
    store: hubkv.KV,
) -> None:
    big = "x" * (13 * 1024 * 1024)  # two of them exceed bulk get's 25 MB
    store.set("big1", big)
    store.set("big2", big)
    http = driver_of(store).http
    before = http.requests_sent
    assert store.get_many(["big1", "big2", "missing"]) == {"big1": big, "big2": big}
    assert http.requests_sent - before == 1 + 3  # refused bulk get, then one GET each


def test_a_value_over_25_mib_is_refused_by_cloudflare_and_not_written(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = hubkv.KV(
        "cloudflare-kv-binding",
        **cloudflare_kv.options(cloudflare_namespace),
        max_value_bytes=30 * 1024 * 1024,
    )
    with pytest.raises(RequestTooLargeError, match="HTTP 413"):
        store.set("huge", "x" * (26 * 1024 * 1024))
    assert store.keys() == []


# -- errors and faults --------------------------------------------------------


def test_a_wrong_token_is_an_authentication_error_that_never_shows_a_token(
    cloudflare_kv: CloudflareKV,
    cloudflare_namespace: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "wrong-" + cloudflare_kv.api_token[::-1]
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    options = {**cloudflare_kv.options(cloudflare_namespace), "api_token": wrong}
    store = hubkv.KV("cloudflare-kv-binding", **options)
    with pytest.raises(AuthenticationError, match="HTTP 403: code 10000") as info:
        store.get("k")
    assert driver_of(store).http.requests_sent == 1  # not retried
    captured = capsys.readouterr()
    said = "\n".join(
        [everything_said(info.value), caplog.text, captured.out, captured.err, repr(store)]
    )
    said += repr(store.driver) + store.driver.describe() + repr(driver_of(store).http)
    assert wrong not in said and cloudflare_kv.api_token not in said
    assert cloudflare_namespace in said  # the store is named, the secret is not


def test_a_wrong_account_is_an_authentication_error(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    options = {**cloudflare_kv.options(cloudflare_namespace), "account_id": "0" * 32}
    with pytest.raises(AuthenticationError):
        hubkv.KV("cloudflare-kv-binding", **options).set("k", 1)


def test_an_unknown_namespace_is_an_error_not_a_missing_key(cloudflare_kv: CloudflareKV) -> None:
    store = hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options("f" * 32))
    for read in (lambda: store.get("k"), lambda: store.has("k"), lambda: store.keys()):
        with pytest.raises(DriverError, match="HTTP 404.*check namespace_id") as info:
            read()
        assert not isinstance(info.value, AuthenticationError)


def test_rate_limits_are_retried_after_the_time_cloudflare_asks(
    store: hubkv.KV, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store.set("k", 1)
    http = driver_of(store).http
    cloudflare_kv.arm_fault(cloudflare_namespace, status=429, retry_after=0, times=2)
    before = http.requests_sent
    assert store.get("k") == 1
    assert http.requests_sent - before == 3
    cloudflare_kv.arm_fault(cloudflare_namespace, status=429, retry_after=120, times=1)
    with pytest.raises(RateLimitedError, match="HTTP 429") as info:  # longer than max_retry_after
        store.get("k")
    assert info.value.retry_after == 120


def test_persistent_rate_limiting_raises_after_the_retries(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = hubkv.KV(
        "cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace), retries=2
    )
    cloudflare_kv.arm_fault(cloudflare_namespace, status=429, retry_after=0, times=5)
    with pytest.raises(RateLimitedError) as info:
        store.set("k", 1)
    assert info.value.retry_after == 0
    assert driver_of(store).http.requests_sent == 3


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_raised(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str, status: int
) -> None:
    store = hubkv.KV(
        "cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace), retries=2
    )
    driver_of(store).http.backoff = 0.01  # the waits between attempts are not under test
    cloudflare_kv.arm_fault(cloudflare_namespace, status=status, times=2)
    store.set_many({"a": 1, "b": 2})
    assert store.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert driver_of(store).http.requests_sent == 4
    cloudflare_kv.arm_fault(cloudflare_namespace, status=status, times=3)
    with pytest.raises(UnavailableError, match=f"HTTP {status}"):
        store.delete("a")
    assert store.get("a") == 1


def test_a_slow_reply_times_out_and_is_retried(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    options = {**cloudflare_kv.options(cloudflare_namespace), "timeout": 0.3}
    hasty = hubkv.KV("cloudflare-kv-binding", **options, retries=0)
    hasty.set("k", 1)
    cloudflare_kv.arm_fault(cloudflare_namespace, delay_ms=1500)
    with pytest.raises(UnavailableError, match="timed out"):
        hasty.get("k")
    patient = hubkv.KV("cloudflare-kv-binding", **options, retries=1)
    cloudflare_kv.arm_fault(cloudflare_namespace, delay_ms=1500)
    assert patient.get("k") == 1
    assert driver_of(patient).http.requests_sent == 2


def test_resets_html_pages_and_broken_json_are_typed_errors(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace, retries=1)
    recorder.script(Reset(), Forward())
    store.set("k", 1)  # the reset request was sent again
    assert [seen.action for seen in recorder.seen] == ["Reset", "Forward"]
    recorder.script(html_page(200))
    with pytest.raises(DriverError, match="HTML page"):
        store.delete("k")
    recorder.script(html_page(502), html_page(502))
    with pytest.raises(UnavailableError, match="HTML page"):
        store.get("k")
    recorder.script(html_page(200))  # a captive portal answering a value read
    with pytest.raises(DriverError, match="HTML page instead of a value"):
        store.get("k")
    recorder.script(invalid_json())
    with pytest.raises(DriverError, match="not JSON"):
        store.keys()
    recorder.script(Reply(200, {"success": False, "errors": [], "result": None}))
    with pytest.raises(DriverError, match="unexpected answer"):
        store.set("k", 2)
    assert store.get("k") == 1


def test_an_authentication_code_on_http_400_is_an_authentication_error(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    body = {
        "success": False,
        "errors": [{"code": 6111, "message": "Invalid format for Authorization header"}],
    }
    recorder.script(Reply(400, body))
    with pytest.raises(AuthenticationError, match="code 6111"):
        store.get("k")
    recorder.script(Reply(400, {"success": False, "errors": [{"code": 10001, "message": "x"}]}))
    with pytest.raises(DriverError, match="HTTP 400: code 10001") as info:
        store.get("k")
    assert not isinstance(info.value, AuthenticationError)


def test_a_token_echoed_by_the_service_is_scrubbed(
    recorder: FaultyHTTP, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    token = cloudflare_kv.api_token
    store = through(recorder, cloudflare_kv, cloudflare_namespace)
    recorder.script(
        Reply(403, {"success": False, "errors": [{"code": 10000, "message": f"bad {token}"}]}),
        Reply(200, {"success": True, "result": f"token {token}"}),
    )
    with pytest.raises(AuthenticationError) as first:
        store.get("k")
    with pytest.raises(DriverError) as second:
        store.keys()
    for error in (first.value, second.value):
        said = everything_said(error)
        assert token not in said and "***" in said


# -- configuration ------------------------------------------------------------


def test_from_environment_needs_all_three_variables() -> None:
    env = {"CLOUDFLARE_KV_NAMESPACE_ID": "ns", "CLOUDFLARE_ACCOUNT_ID": "acc"}
    assert CloudflareKVDriver.from_environment(env) is None
    found = CloudflareKVDriver.from_environment({**env, "CLOUDFLARE_API_TOKEN": "secret"})
    assert found is not None
    options, reason = found
    assert options == {"namespace_id": "ns", "account_id": "acc", "api_token": "secret"}
    assert all(name in reason for name in VARIABLES) and "secret" not in reason


def test_kv_with_only_cloudflare_variables_picks_it_and_says_why(
    cloudflare_kv: CloudflareKV,
    cloudflare_namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "CLOUDFLARE_KV_NAMESPACE_ID": cloudflare_namespace,
        "CLOUDFLARE_ACCOUNT_ID": cloudflare_kv.account_id,
        "CLOUDFLARE_API_TOKEN": cloudflare_kv.api_token,
    }
    with caplog.at_level(logging.INFO, logger="hubkv"):
        resolved = resolve(None, {}, environ=env, cwd=tmp_path)
    assert isinstance(resolved.driver, CloudflareKVDriver)
    assert resolved.driver.namespace_id == cloudflare_namespace
    assert resolved.driver.base_url == "https://api.cloudflare.com/client/v4"
    assert "cloudflare-kv-binding" in caplog.text and "CLOUDFLARE_API_TOKEN" in caplog.text
    assert cloudflare_kv.api_token not in caplog.text


@pytest.mark.parametrize("present", [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2)])
def test_missing_pieces_are_named_exactly(
    clean_env: pytest.MonkeyPatch, present: tuple[int, ...]
) -> None:
    options = ["namespace_id", "account_id", "api_token"]
    for index in present:
        clean_env.setenv(VARIABLES[index], "x")
    with pytest.raises(ConfigError) as info:
        hubkv.KV("cloudflare-kv-binding")
    message = str(info.value)
    for index in range(3):
        assert (VARIABLES[index] in message) is (index not in present)
        assert (f"{options[index]} (or" in message) is (index not in present)


def test_options_fall_back_to_the_variables(
    cloudflare_kv: CloudflareKV, cloudflare_namespace: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("CLOUDFLARE_KV_NAMESPACE_ID", cloudflare_namespace)
    clean_env.setenv("CLOUDFLARE_ACCOUNT_ID", cloudflare_kv.account_id)
    clean_env.setenv("CLOUDFLARE_API_TOKEN", cloudflare_kv.api_token)
    store = hubkv.KV("cloudflare-kv-http", base_url=cloudflare_kv.base_url)  # the alias
    store.set("k", [1])
    assert store.driver.name == "cloudflare-kv-binding"
    clean_env.setenv("HUBKV_DRIVER", "cloudflare-kv-binding")
    clean_env.setenv("HUBKV_BASE_URL", cloudflare_kv.base_url)
    clean_env.setenv("HUBKV_BINDING", "CACHE")
    clean_env.setenv("HUBKV_TIMEOUT", "2.5")
    configured = hubkv.KV()
    assert configured.get("k") == [1]
    assert driver_of(configured).binding == "CACHE"
    assert driver_of(configured).http.timeout[1] == 2.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.cloudflare.com/client/v4", "https"),
        ("https://user:pw@api.cloudflare.com/client/v4", "credentials"),
        ("api.cloudflare.com/client/v4", "https"),
    ],
)
def test_base_url_must_be_https_unless_loopback(url: str, message: str) -> None:
    options = {"namespace_id": "n", "account_id": "a", "api_token": "t"}
    with pytest.raises(ConfigError, match=message) as info:
        CloudflareKVDriver(**options, base_url=url)
    assert "pw" not in str(info.value)
    CloudflareKVDriver(**options, base_url="http://127.0.0.1:8787/client/v4")
    CloudflareKVDriver(**options, base_url="https://proxy.example/cf/")


@pytest.mark.parametrize("binding", ["", "1KV", "my-kv", "a b", "KV\n"])
def test_a_binding_that_is_not_an_identifier_is_refused(binding: str) -> None:
    with pytest.raises(ConfigError, match="JavaScript identifier"):
        CloudflareKVDriver(namespace_id="n", account_id="a", api_token="t", binding=binding)


@pytest.mark.parametrize(
    ("option", "value"), [("timeout", 0), ("timeout", -1.0), ("retries", -1), ("retries", 1.5)]
)
def test_bad_timeouts_and_retries_are_config_errors(option: str, value: float) -> None:
    options: dict[str, Any] = {"namespace_id": "n", "account_id": "a", "api_token": "t"}
    with pytest.raises(ConfigError, match=option):
        CloudflareKVDriver(**options, **{option: value})


def test_threads_share_one_store(store: hubkv.KV) -> None:
    def work(n: int) -> None:
        for i in range(15):
            store.set(f"t{n}:{i}", [n, i])
            assert store.get(f"t{n}:{i}") == [n, i]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))  # re-raises a failure of any thread
    assert len(store.keys()) == 60


def test_docstring_examples() -> None:
    result = doctest.testmod(cloudflare, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 4


def test_imports_stay_cheap(cloudflare_kv: CloudflareKV, cloudflare_namespace: str) -> None:
    """Picking the driver from the environment loads no ``requests`` until the first request."""
    code = """
import sys
import hubkv
store = hubkv.KV()
assert store.driver.name == "cloudflare-kv-binding", store
assert "requests" not in sys.modules, "eager import"
store.set("k", 1)
assert "requests" in sys.modules
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBKV_", "CLOUDFLARE_"))}
    env.update(
        HUBKV_DRIVER="cloudflare-kv-binding",
        HUBKV_BASE_URL=cloudflare_kv.base_url,
        CLOUDFLARE_KV_NAMESPACE_ID=cloudflare_namespace,
        CLOUDFLARE_ACCOUNT_ID=cloudflare_kv.account_id,
        CLOUDFLARE_API_TOKEN=cloudflare_kv.api_token,
        PYTHONPATH=str(Path(__file__).parent.parent),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


# -- hubkv cloudflare wrangler ------------------------------------------------


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUBKV_", "CLOUDFLARE_"))}
    clean["PYTHONPATH"] = str(Path(__file__).parent.parent)
    return subprocess.run(
        [sys.executable, "-m", "hubkv", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wrangler_prints_the_binding_of_the_configured_namespace(tmp_path: Path) -> None:
    env = {"CLOUDFLARE_KV_NAMESPACE_ID": "0f2ac74b498b48028cb68387c421e279"}
    env |= {"CLOUDFLARE_ACCOUNT_ID": "acc", "CLOUDFLARE_API_TOKEN": "secret-token"}
    result = run_cli("cloudflare", "wrangler", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout) == {
        "kv_namespaces": [{"binding": "KV", "id": "0f2ac74b498b48028cb68387c421e279"}]
    }
    assert "secret-token" not in result.stdout + result.stderr
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hubkv]\ndriver = "cloudflare-kv-binding"\nnamespace_id = "from-pyproject"\n'
        'account_id = "acc"\napi_token = "t"\nbinding = "CACHE"\n'
    )
    result = run_cli("cloudflare", "wrangler", env={}, cwd=tmp_path)
    assert tomllib.loads(result.stdout)["kv_namespaces"] == [
        {"binding": "CACHE", "id": "from-pyproject"}
    ]
    result = run_cli("cloudflare", "wrangler", "--binding", "SESSIONS", env={}, cwd=tmp_path)
    assert tomllib.loads(result.stdout)["kv_namespaces"][0]["binding"] == "SESSIONS"


def test_wrangler_with_an_explicit_id_needs_no_credentials(tmp_path: Path) -> None:
    result = run_cli(
        "cloudflare", "wrangler", "--namespace-id", "abc", "--binding", "C", env={}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(result.stdout) == {"kv_namespaces": [{"binding": "C", "id": "abc"}]}


def test_wrangler_without_a_cloudflare_store_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("cloudflare", "wrangler", env={}, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "fs-lite driver, not cloudflare-kv-binding" in result.stderr
    assert "--namespace-id" in result.stderr
    assert not (tmp_path / ".data").exists()  # nothing was created
