"""The upstash driver against real misbehaving local endpoints.

A scripted HTTP server (tests/standins/faulty_http.py) sits between the driver
and the Upstash REST stand-in: it answers the next requests with the scripted
fault, then forwards to the stand-in. Each fault ends in the documented typed
error or in a successful retry, nothing is half-written, and a request that
may have been applied is never repeated unless repeating it is harmless.

Backoff waits are recorded (and shortened) instead of slept: these tests
check which waits were asked for, never how long anything took.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

import hubkv
from hubkv import (
    AuthenticationError,
    DriverError,
    RateLimitedError,
    RequestTooLargeError,
    UnavailableError,
)
from hubkv.drivers import http as http_module
from hubkv.drivers.upstash import UpstashDriver
from tests.standins.faulty_http import (
    FaultyHTTP,
    Forward,
    ForwardThenReset,
    Reply,
    Reset,
    ResetMidBody,
    Slow,
    everything_said,
    html_page,
    invalid_json,
    rate_limited,
    server_error,
    unauthorized,
)
from tests.standins.upstash_rest import UpstashRest

RETRIES = 2
TIMEOUT = 0.3


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits the HTTP client asks for (not slept)."""
    asked: list[float] = []
    fake_time = types.SimpleNamespace(sleep=asked.append)
    monkeypatch.setattr(http_module, "time", fake_time)
    return asked


@pytest.fixture
def proxy(faulty_http: Callable[..., FaultyHTTP], upstash_rest: UpstashRest) -> FaultyHTTP:
    return faulty_http(upstream=upstash_rest.url)


@pytest.fixture
def store(proxy: FaultyHTTP, upstash_rest: UpstashRest) -> Iterator[hubkv.KV]:
    kv = hubkv.KV(
        "upstash",
        url=proxy.url,
        token=upstash_rest.token,
        base=f"f{uuid.uuid4().hex[:12]}",
        timeout=TIMEOUT,
        retries=RETRIES,
    )
    yield kv
    kv.close()


def sent(store: hubkv.KV) -> int:
    driver = store.driver
    assert isinstance(driver, UpstashDriver)
    return driver.http.requests_sent


def check(error: BaseException, upstash_rest: UpstashRest) -> str:
    said = everything_said(error)
    assert upstash_rest.token not in said
    return said


# -- timeouts -----------------------------------------------------------------


def test_a_slow_read_is_retried_then_succeeds(store: hubkv.KV, proxy: FaultyHTTP) -> None:
    store.set("k", "v")
    proxy.script(Slow(TIMEOUT * 4))
    assert store.get("k") == "v"
    assert [seen.action for seen in proxy.seen] == ["Forward", "Slow", "Forward"]


def test_a_read_that_keeps_timing_out_is_unavailable(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(*[Slow(TIMEOUT * 4) for _ in range(RETRIES + 1)])
    with pytest.raises(UnavailableError, match="timed out") as info:
        store.get("k")
    assert sent(store) == RETRIES + 1
    assert len(waits) == RETRIES
    backoff = store.driver.http.backoff  # type: ignore[attr-defined]
    for attempt, wait in enumerate(waits):  # exponential backoff, jittered by 0.5x to 1.5x
        assert 0.5 * backoff * 2**attempt <= wait <= 1.5 * backoff * 2**attempt
    assert "may or may not" not in check(info.value, upstash_rest)


def test_a_clear_that_times_out_is_not_repeated(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest
) -> None:
    store.set_many({"a": 1, "b": 2})
    proxy.script(Forward(), Slow(TIMEOUT * 4, then=Reset()))  # SCAN answers, UNLINK hangs
    with pytest.raises(UnavailableError, match="may or may not have been applied") as info:
        store.clear()
    assert [seen.action for seen in proxy.seen] == ["Forward", "Forward", "Slow"]
    check(info.value, upstash_rest)
    assert store.keys() == ["a", "b"]  # the hung request never reached the database


# -- rate limits and server errors ----------------------------------------------


def test_429_honours_retry_after(store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]) -> None:
    proxy.script(rate_limited(retry_after=1.5), rate_limited(retry_after=0))
    store.set("k", 1)
    assert waits == [1.5, 0.0]
    assert [seen.action for seen in proxy.seen] == ["rate_limited", "rate_limited", "Forward"]
    assert store.get("k") == 1


def test_429_honours_retry_after_given_as_an_http_date(
    store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]
) -> None:
    def rate_limited_until(offset: float) -> Reply:
        when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=offset), usegmt=True)
        return Reply(429, {"error": "Too Many Requests"}, {"Retry-After": when}, "rate_limited")

    proxy.script(rate_limited_until(5), rate_limited_until(-60))  # HTTP dates have whole seconds
    store.set("k", 1)
    assert 3 < waits[0] <= 5 and waits[1] == 0.0  # a date in the past: at once
    proxy.script(rate_limited_until(3600))  # longer than allowed: fails at once
    with pytest.raises(RateLimitedError) as info:
        store.get("k")
    assert info.value.retry_after is not None and 3590 < info.value.retry_after <= 3600
    assert len(waits) == 2 and store.get("k") == 1


def test_429_without_retry_after_backs_off_then_gives_up(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(*[rate_limited() for _ in range(RETRIES + 1)])
    with pytest.raises(RateLimitedError, match="429.*slow down") as info:
        store.set("k", 1)
    assert info.value.retry_after is None
    assert len(waits) == RETRIES
    check(info.value, upstash_rest)
    assert store.keys() == []


def test_a_retry_after_longer_than_allowed_fails_at_once(
    store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]
) -> None:
    proxy.script(rate_limited(retry_after=120))
    with pytest.raises(RateLimitedError) as info:
        store.get("k")
    assert info.value.retry_after == 120
    assert waits == [] and sent(store) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_on_a_read_is_retried(
    store: hubkv.KV, proxy: FaultyHTTP, status: int, waits: list[float]
) -> None:
    store.set("k", [1])
    proxy.script(server_error(status), server_error(status))
    assert store.get_many(["k", "nope"]) == {"k": [1]}
    assert len(waits) == 2


def test_5xx_on_set_many_writes_nothing(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(*[server_error(503) for _ in range(RETRIES + 1)])
    with pytest.raises(UnavailableError, match="HTTP 503") as info:
        store.set_many({f"k{i}": i for i in range(10)})
    check(info.value, upstash_rest)
    assert store.keys() == []


def test_5xx_on_a_clear_is_not_repeated(
    store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]
) -> None:
    store.set("k", 1)
    proxy.script(Forward(), server_error(500))  # SCAN answers, UNLINK fails
    with pytest.raises(UnavailableError, match="HTTP 500"):
        store.clear()
    assert waits == []
    assert store.keys() == ["k"]
    assert store.clear() == 1


@pytest.mark.parametrize("status", [413, 414])
def test_too_large_is_typed_and_not_retried(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, status: int, waits: list[float]
) -> None:
    # 414 URI Too Long, from a proxy in front of the API (keys travel in the body here).
    proxy.script(Reply(status, b"<html>Too Large</html>", {"Content-Type": "text/html"}))
    with pytest.raises(RequestTooLargeError, match=rf"too large \(HTTP {status}") as info:
        store.get_many(["a", "b"])
    assert sent(store) == 1 and waits == []
    check(info.value, upstash_rest)


# -- broken connections -------------------------------------------------------


def test_a_reset_before_the_answer_is_retried(store: hubkv.KV, proxy: FaultyHTTP) -> None:
    proxy.script(Reset())
    store.set_many({"a": 1, "b": 2})
    assert store.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert [seen.action for seen in proxy.seen][:2] == ["Reset", "Forward"]


def test_a_reset_mid_body_is_retried(store: hubkv.KV, proxy: FaultyHTTP) -> None:
    store.set("k", {"deep": [1]})
    proxy.script(ResetMidBody(promised=500))
    assert store.get("k") == {"deep": [1]}
    assert [seen.action for seen in proxy.seen] == ["Forward", "ResetMidBody", "Forward"]


def test_a_write_applied_but_unanswered_is_repeated_harmlessly(
    store: hubkv.KV, proxy: FaultyHTTP
) -> None:
    proxy.script(ForwardThenReset())
    store.set_many({"a": 1, "b": 2}, ttl=60)
    assert [seen.action for seen in proxy.seen] == ["ForwardThenReset", "Forward"]
    assert store.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert store.keys() == ["a", "b"]


def test_a_clear_applied_but_unanswered_says_so(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest
) -> None:
    store.set_many({"a": 1, "b": 2})
    proxy.script(Forward(), ForwardThenReset())
    with pytest.raises(UnavailableError, match="may or may not have been applied") as info:
        store.clear()
    check(info.value, upstash_rest)
    assert store.keys() == []  # it was applied: the message told the truth


def test_resets_on_every_attempt_end_in_unavailable(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(*[Reset() for _ in range(RETRIES + 1)])
    with pytest.raises(UnavailableError, match="could not be reached") as info:
        store.get("k")
    check(info.value, upstash_rest)
    assert sent(store) == RETRIES + 1


# -- answers that are not the API ---------------------------------------------


def test_invalid_json_is_a_driver_error_not_retried(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest
) -> None:
    proxy.script(invalid_json())
    with pytest.raises(DriverError, match="not JSON") as info:
        store.get("k")
    assert type(info.value) is DriverError
    assert sent(store) == 1
    check(info.value, upstash_rest)


def test_an_html_page_names_the_likely_cause(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(html_page(200))
    with pytest.raises(DriverError, match="HTML page.*proxy") as info:
        store.set("k", 1)
    check(info.value, upstash_rest)
    proxy.script(*[html_page(502) for _ in range(RETRIES + 1)])
    with pytest.raises(UnavailableError, match="HTTP 502.*HTML page.*proxy"):
        store.get("k")
    assert store.keys() == []


def test_json_that_is_not_an_upstash_answer_is_a_driver_error(
    store: hubkv.KV, proxy: FaultyHTTP
) -> None:
    proxy.script(Reply(200, {"unexpected": True}), Reply(200, {"result": "not base64!"}))
    with pytest.raises(DriverError, match="right service"):
        store.get("k")
    with pytest.raises(DriverError, match="right service"):
        store.get("k")


def test_a_wrong_token_is_not_retried(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, waits: list[float]
) -> None:
    proxy.script(unauthorized())
    with pytest.raises(AuthenticationError, match="401") as info:
        store.set("k", 1)
    assert sent(store) == 1 and waits == []
    check(info.value, upstash_rest)
    assert store.keys() == []


def test_a_redirect_loop_is_a_driver_error(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest
) -> None:
    proxy.script(*[Reply(307, b"", {"Location": proxy.url + "/"}) for _ in range(40)])
    with pytest.raises(DriverError, match="TooManyRedirects") as info:
        store.get("k")
    assert type(info.value) is DriverError and sent(store) == 1
    check(info.value, upstash_rest)
