"""The upstash driver against real misbehaving local endpoints.

A scripted HTTP server (tests/standins/faulty_http.py) sits between the driver
and the Upstash REST stand-in: it answers the next requests with the scripted
fault, then forwards to the stand-in. Each fault ends in the documented typed
error or in a successful retry, nothing is half-written, and a request that
may have been applied is never repeated unless repeating it is harmless.

Backoff waits are recorded (and shortened) instead of slept: these tests
check which waits were asked for, never how long anything took - except the
deadline tests, which sleep for real and measure how long a call lasted
against a server trickling its answer.
"""

from __future__ import annotations

import os
import threading
import time
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
from hubkv.drivers.http import HTTPClient
from hubkv.drivers.upstash import UpstashDriver
from tests.standins.faulty_http import (
    FaultyHTTP,
    Forward,
    ForwardThenReset,
    Reply,
    Reset,
    ResetMidBody,
    Slow,
    Trickle,
    everything_said,
    html_page,
    invalid_json,
    rate_limited,
    server_error,
    unauthorized,
)
from tests.standins.tls import self_signed_certificate
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
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits the HTTP client asks for, slept for real."""
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(http_module, "time", types.SimpleNamespace(sleep=sleep))
    return asked


@pytest.fixture
def make_store(proxy: FaultyHTTP, upstash_rest: UpstashRest) -> Iterator[Callable[..., hubkv.KV]]:
    """``make_store(**options)``: an upstash store through the proxy, TIMEOUT and RETRIES
    unless ``options`` say otherwise; closed after the test."""
    stores: list[hubkv.KV] = []

    def make(**options: float) -> hubkv.KV:
        kv = hubkv.KV(
            "upstash",
            url=proxy.url,
            token=upstash_rest.token,
            base=f"f{uuid.uuid4().hex[:12]}",
            **{"timeout": TIMEOUT, "retries": RETRIES, **options},
        )
        stores.append(kv)
        return kv

    yield make
    for kv in stores:
        kv.close()


@pytest.fixture
def store(make_store: Callable[..., hubkv.KV]) -> hubkv.KV:
    return make_store()


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


# -- deadlines: a server trickling its answer -------------------------------------
#
# Each byte comes well within the read timeout, so only a deadline ends these calls.
# The calls run in a thread with a hard limit, so that a missing deadline fails the
# test instead of hanging it.

TRICKLE = 0.05  # seconds between bytes


def timed(call: Callable[[], object], limit: float = 15.0) -> tuple[BaseException | None, float]:
    """(what ``call`` raised, how long it took); fails if it is still running after ``limit`` s."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert outcome, f"the call was still running after {limit} s: no deadline"
    return outcome[0], time.monotonic() - started


def check_bounded(store: hubkv.KV, elapsed: float, slept: list[float], attempts: int) -> None:
    """Each attempt ended at its deadline (TIMEOUT), the call by its own deadline."""
    http = store.driver.http  # type: ignore[attr-defined]
    assert http.call_timeout == pytest.approx(TIMEOUT * (RETRIES + 1) + 1.5 * 0.25 * 3)
    assert elapsed < http.call_timeout + 0.5  # slack for a busy machine
    assert len(slept) == attempts - 1
    per_attempt = (elapsed - sum(slept)) / attempts
    assert TIMEOUT * 0.9 <= per_attempt < TIMEOUT + 0.25


def test_a_trickled_answer_is_cut_at_each_attempts_deadline(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, slept: list[float]
) -> None:
    """The real answer, a byte every 50 ms: ~10 s each, ~30 s in all without deadlines."""
    store.set("k", "v")
    proxy.script(*[Trickle(TRICKLE, then=Forward()) for _ in range(RETRIES + 1)])
    error, elapsed = timed(lambda: store.get("k"))
    assert isinstance(error, UnavailableError), error
    said = check(error, upstash_rest)
    assert f"timed out: no complete answer within 0.3 s (timeout={TIMEOUT:g})" in said
    assert f"after {RETRIES + 1} attempt(s)" in said and "larger timeout" in said
    assert sent(store) == RETRIES + 2
    check_bounded(store, elapsed, slept, RETRIES + 1)
    assert store.get("k") == "v"  # the cut connections were dropped, not reused


@pytest.mark.parametrize("headers", [False, True], ids=["endless body", "endless headers"])
def test_an_endless_trickle_ends_at_the_deadline(
    store: hubkv.KV, proxy: FaultyHTTP, slept: list[float], headers: bool
) -> None:
    proxy.script(*[Trickle(TRICKLE, headers=headers) for _ in range(RETRIES + 1)])
    error, elapsed = timed(lambda: store.get("k"))
    assert isinstance(error, UnavailableError) and "timed out" in str(error), error
    assert [seen.action for seen in proxy.seen] == ["Trickle"] * (RETRIES + 1)
    check_bounded(store, elapsed, slept, RETRIES + 1)
    store.set("k", 1)
    assert store.get("k") == 1


def test_a_slow_but_steady_answer_within_the_timeout_is_read(
    make_store: Callable[..., hubkv.KV], proxy: FaultyHTTP
) -> None:
    store = make_store(timeout=5.0)
    store.set("k", {"v": "x" * 50})
    proxy.script(Trickle(0.002, then=Forward()))  # ~300 bytes: about 0.7 s
    error, elapsed = timed(lambda: store.get("k"))
    assert error is None and elapsed > 0.3
    assert store.get("k") == {"v": "x" * 50}
    assert [seen.action for seen in proxy.seen][-2:] == ["Trickle", "Forward"]


def test_a_trickled_clear_is_cut_and_not_repeated(
    store: hubkv.KV, proxy: FaultyHTTP, upstash_rest: UpstashRest, slept: list[float]
) -> None:
    store.set_many({"a": 1, "b": 2})
    proxy.script(Forward(), Trickle(TRICKLE))  # SCAN answers, UNLINK trickles forever
    error, elapsed = timed(store.clear)
    assert isinstance(error, UnavailableError), error
    said = check(error, upstash_rest)
    assert "timed out" in said and "not retried: the write may or may not have been applied" in said
    assert [seen.action for seen in proxy.seen][-2:] == ["Forward", "Trickle"]
    assert slept == [] and TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.5
    assert store.keys() == ["a", "b"]  # the trickling proxy never passed the UNLINK on


def test_a_retry_after_past_the_calls_deadline_is_not_waited_for(
    store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]
) -> None:
    """5 s is within max_retry_after (30 s), but not within this call's 2 s."""
    proxy.script(rate_limited(retry_after=5))
    with pytest.raises(RateLimitedError, match=r"not retried after 1 attempt.*2\.025 s deadline"):
        store.get("k")
    assert waits == [] and sent(store) == 1


def test_waits_between_attempts_count_against_the_calls_deadline(
    store: hubkv.KV, proxy: FaultyHTTP, slept: list[float]
) -> None:
    """Two 1.2 s Retry-After waits fit one by one, not together: the call stops after
    the first, within its deadline."""
    proxy.script(*[rate_limited(retry_after=1.2) for _ in range(RETRIES + 1)])
    started = time.monotonic()
    with pytest.raises(RateLimitedError, match="deadline") as info:
        store.get("k")
    elapsed = time.monotonic() - started
    assert info.value.retry_after == 1.2
    assert slept == [1.2] and sent(store) == 2
    assert elapsed < store.driver.http.call_timeout  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certificate, key) for 127.0.0.1, self-signed."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_certificate(folder)
    return str(cert), str(key)


@pytest.mark.parametrize("headers", [False, True], ids=["endless body", "endless headers"])
def test_a_trickle_over_tls_is_cut_too(
    faulty_http: Callable[..., FaultyHTTP], certificate: tuple[str, str], headers: bool
) -> None:
    """The deadline shuts a TLS socket down as well, mid-headers or mid-body."""
    server = faulty_http(tls=certificate)
    client = HTTPClient(
        server.url, service="TLS", headers={}, secrets=[], timeout=TIMEOUT, retries=1,
        verify=certificate[0],
    )  # fmt: skip
    server.script(Reply(200, {"ok": 1}), *[Trickle(TRICKLE, headers=headers)] * 2)
    assert client.request("GET", "/", idempotent=True).json() == {"ok": 1}
    error, elapsed = timed(lambda: client.request("GET", "/", idempotent=True))
    assert isinstance(error, UnavailableError) and "timed out" in str(error), error
    assert elapsed < client.call_timeout + 0.5
    server.script(Reply(200, {"ok": 2}))
    assert client.request("GET", "/", idempotent=True).json() == {"ok": 2}
    client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_the_deadline_holds_in_a_forked_child(store: hubkv.KV, proxy: FaultyHTTP) -> None:
    """The watchdog thread is not inherited by fork(): the child starts its own."""
    store.set("k", 1)  # the parent's watchdog runs
    proxy.script(Trickle(TRICKLE), *[Trickle(TRICKLE)] * RETRIES)
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            error, elapsed = timed(lambda: store.get("k"), limit=10)
            bound = store.driver.http.call_timeout + 0.5  # type: ignore[attr-defined]
            if isinstance(error, UnavailableError) and elapsed < bound:
                code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("k") == 1


# -- rate limits and server errors ----------------------------------------------


def test_429_honours_retry_after(store: hubkv.KV, proxy: FaultyHTTP, waits: list[float]) -> None:
    proxy.script(rate_limited(retry_after=1.5), rate_limited(retry_after=0))
    store.set("k", 1)
    assert waits == [1.5, 0.0]
    assert [seen.action for seen in proxy.seen] == ["rate_limited", "rate_limited", "Forward"]
    assert store.get("k") == 1


def test_429_honours_retry_after_given_as_an_http_date(
    make_store: Callable[..., hubkv.KV], proxy: FaultyHTTP, waits: list[float]
) -> None:
    store = make_store(timeout=2.0)  # a call may last 7 s: a 5 s Retry-After fits

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
