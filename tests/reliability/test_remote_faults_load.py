"""Remote faults not covered by the drivers' own tests (``tests/test_remote_faults.py``,
``tests/test_cloudflare.py``, ``tests/test_redis.py``), from real local servers:

- connection refused, on both HTTP drivers: typed, retried a bounded number of times;
- retries bounded in count *and* in real time (real sleeps here, unlike the
  drivers' tests, which record the waits): a service that keeps timing out,
  or keeps answering 429 without ``Retry-After``, gives up after
  ``retries + 1`` attempts within the documented backoff budget;
- a Redis server that stops answering (SIGSTOP) or dies (SIGKILL): typed
  errors, and the store works again once the server is back;
- faults under load: threads writing through a proxy that injects resets
  mid-body, 5xx, 429 and slow answers; afterwards every acknowledged write is
  there, and every failure was a typed error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv import DriverError, RateLimitedError, UnavailableError
from tests.standins.faulty_http import (
    FaultyHTTP,
    Forward,
    ForwardThenReset,
    Reset,
    ResetMidBody,
    Slow,
    rate_limited,
    server_error,
)
from tests.standins.redis_server import RedisServer, free_port, start_redis_server
from tests.standins.upstash_rest import UpstashRest

from .test_secrets import HTTP_DRIVERS, http_options

TIMEOUT = 0.3
RETRIES = 2
BACKOFF = 0.25  # the HTTP client's first backoff; each retry doubles it, jitter up to x1.5


def backoff_budget(retries: int) -> float:
    """The longest the client may sleep between ``retries + 1`` attempts."""
    return sum(BACKOFF * 2**attempt * 1.5 for attempt in range(retries))


def sent(store: hubkv.KV) -> int:
    return int(store.driver.http.requests_sent)  # type: ignore[attr-defined]


@pytest.mark.parametrize("driver", HTTP_DRIVERS)
def test_connection_refused_is_retried_for_reads_within_bounds(
    driver: str, figures: Counter[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    store = hubkv.KV(driver, **{**http_options(driver, url), "retries": RETRIES})
    started = time.monotonic()
    with pytest.raises(UnavailableError, match="could not be reached"):
        store.get("k")
    elapsed = time.monotonic() - started
    assert sent(store) == RETRIES + 1
    assert elapsed < backoff_budget(RETRIES) + 2.0  # connecting to a closed port is instant
    with pytest.raises(UnavailableError, match="could not be reached"):
        store.set_many({"a": 1, "b": 2})
    figures["faults: connection refused"] += 2


@pytest.mark.parametrize("driver", HTTP_DRIVERS)
def test_retries_are_bounded_in_count_and_time(
    driver: str, faulty_http: Callable[..., FaultyHTTP], figures: Counter[str]
) -> None:
    server = faulty_http()
    store = hubkv.KV(
        driver, **{**http_options(driver, server.url), "retries": RETRIES, "timeout": TIMEOUT}
    )
    attempts = RETRIES + 1

    server.script(*[Slow(TIMEOUT * 5, then=Reset()) for _ in range(attempts)])
    started = time.monotonic()
    with pytest.raises(UnavailableError, match="timed out"):
        store.get("k")
    elapsed = time.monotonic() - started
    assert len(server.seen) == attempts
    # Each attempt ends at the read timeout, then the backoffs; generous slack for a busy machine.
    assert elapsed < attempts * TIMEOUT + backoff_budget(RETRIES) + 2.0

    server.seen.clear()
    server.script(*[rate_limited() for _ in range(attempts)])  # 429, no Retry-After
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        store.get("k")
    elapsed = time.monotonic() - started
    assert info.value.retry_after is None
    assert len(server.seen) == attempts
    assert BACKOFF * 0.5 <= elapsed < backoff_budget(RETRIES) + 2.0  # it did back off, boundedly

    server.seen.clear()
    server.script(*[rate_limited(retry_after=0.2) for _ in range(attempts)])
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        store.get("k")
    elapsed = time.monotonic() - started
    assert info.value.retry_after == 0.2 and len(server.seen) == attempts
    assert 0.2 * RETRIES <= elapsed < 0.2 * RETRIES + 2.0  # Retry-After honoured, no more
    figures["faults: timeouts and 429s with bounded retries"] += 3


# -- Redis stopped and killed ---------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only: it gets paused and killed."""
    server = start_redis_server(tmp_path)
    yield server
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_a_paused_redis_times_out_then_the_store_recovers(
    own_redis: RedisServer, figures: Counter[str]
) -> None:
    store = hubkv.KV("redis", url=own_redis.url, base="paused", timeout=TIMEOUT, retries=1)
    store.set_many({f"k{i}": i for i in range(50)})
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        for call in (lambda: store.get("k1"), lambda: store.set("k1", "new")):
            with pytest.raises(UnavailableError):
                call()
            figures["faults: redis paused"] += 1
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    # The write that timed out may or may not have been applied; the rest is intact.
    assert store.get("k1") in (1, "new")
    assert store.get_many([f"k{i}" for i in range(2, 50)]) == {f"k{i}": i for i in range(2, 50)}
    store.set("after", 1)
    assert store.get("after") == 1


def test_a_killed_redis_is_unavailable_and_a_new_one_is_used_at_once(
    own_redis: RedisServer, tmp_path: Path, figures: Counter[str]
) -> None:
    store = hubkv.KV("redis", url=own_redis.url, base="killed", timeout=TIMEOUT, retries=1)
    store.set("k", 1)
    own_redis.process.kill()
    own_redis.process.wait()
    with pytest.raises(UnavailableError):
        store.get("k")
    figures["faults: redis killed"] += 1
    # A new server on the same port (redis without persistence starts empty).
    replacement = subprocess.Popen(
        ["redis-server", "--port", str(own_redis.port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                store.set("k", 2)
                break
            except UnavailableError:
                assert time.monotonic() < deadline, "the store never reconnected"
                time.sleep(0.05)
        assert store.get("k") == 2
    finally:
        replacement.terminate()
        replacement.wait(timeout=10)


# -- faults under load ------------------------------------------------------------

FAULTS = [
    lambda: ResetMidBody(),
    lambda: Reset(),
    lambda: server_error(503),
    lambda: rate_limited(retry_after=0),
    lambda: Slow(TIMEOUT * 3, then=Reset()),
    lambda: ForwardThenReset(),
]


def test_threads_through_injected_faults_lose_no_acknowledged_write(
    faulty_http: Callable[..., FaultyHTTP], upstash_rest: UpstashRest, figures: Counter[str]
) -> None:
    proxy = faulty_http(upstream=upstash_rest.url)
    script: list[Any] = []
    for round_ in range(60):  # a fault every third request
        script += [Forward(), Forward(), FAULTS[round_ % len(FAULTS)]()]
    proxy.script(*script)
    options = {
        "url": proxy.url,
        "token": upstash_rest.token,
        "base": f"load{uuid.uuid4().hex[:8]}",
        "timeout": TIMEOUT,
        "retries": 3,
    }
    store = hubkv.KV("upstash", **options)
    acknowledged: dict[str, int] = {}
    unsure: dict[str, set[int | None]] = {}  # keys whose last write failed: old or new value
    failures: list[BaseException] = []
    wrong_reads: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(40):
            key = f"w{worker}:{i % 8}"
            try:
                store.set(key, i)
                with lock:
                    acknowledged[key] = i
                    unsure.pop(key, None)
                if i % 5 == 0 and store.get(key) != i:
                    wrong_reads.append(key)
            except Exception as exc:  # noqa: BLE001 - checked below: typed, or the test fails
                with lock:
                    failures.append(exc)
                    if key not in acknowledged or acknowledged[key] != i:
                        unsure.setdefault(key, {acknowledged.get(key)}).add(i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(failure, DriverError) for failure in failures), failures
    assert wrong_reads == []
    injected = sum(1 for seen in proxy.seen if seen.action != "Forward")
    assert injected >= 30  # the faults really were met
    check = hubkv.KV("upstash", **{**options, "url": upstash_rest.url})
    keys = sorted(set(acknowledged) | set(unsure))
    found = check.get_many(keys)
    for key in keys:
        if key in unsure:
            assert found.get(key) in unsure[key], key
        else:
            assert found.get(key) == acknowledged[key], key
    figures["faults under load: injected"] += injected
    figures["faults under load: writes acknowledged and found"] += len(acknowledged)
    figures["faults under load: typed failures (retries exhausted)"] += len(failures)
