"""Upstash's official Python SDK (``upstash-redis``) against the REST stand-in.

If the stand-in spoke a private dialect, the upstash driver's tests would
prove nothing about the real service; the SDK, written against the real one,
would then fail here. It also reads what hubkv writes, and hubkv reads what
it writes, as apps sharing one Upstash database do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

import hubkv
from tests.standins.upstash_rest import UpstashRest


@pytest.fixture
def base() -> str:
    return f"sdk{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["base64", None])
def sdk(request: pytest.FixtureRequest, upstash_rest: UpstashRest) -> Iterator[Redis]:
    client = Redis(
        url=upstash_rest.url,
        token=upstash_rest.token,
        rest_encoding=request.param,
        rest_retries=0,
        allow_telemetry=False,
    )
    yield client
    client.close()


def test_single_commands(sdk: Redis, base: str) -> None:
    assert sdk.set(f"{base}:a", "hello") is True
    assert sdk.get(f"{base}:a") == "hello"
    assert sdk.set(f"{base}:b", "ünï 🎉", px=60_000) is True
    assert 59_000 < sdk.pttl(f"{base}:b") <= 60_000
    assert sdk.pttl(f"{base}:missing") == -2
    assert sdk.mget(f"{base}:a", f"{base}:missing", f"{base}:b") == ["hello", None, "ünï 🎉"]
    assert sdk.exists(f"{base}:a", f"{base}:b", f"{base}:missing") == 2
    assert sdk.unlink(f"{base}:a") == 1
    assert sdk.get(f"{base}:a") is None


def test_scan_with_an_escaped_pattern(sdk: Redis, base: str) -> None:
    for key in ["p*1", "p*2", "px3"]:
        sdk.set(f"{base}:{key}", "1")
    found: list[str] = []
    cursor = 0
    while True:
        cursor, keys = sdk.scan(cursor, match=f"{base}:p\\**", count=1000)
        found.extend(keys)
        if cursor == 0:
            break
    assert sorted(found) == [f"{base}:p*1", f"{base}:p*2"]


def test_pipeline_and_transaction(sdk: Redis, base: str, upstash_rest: UpstashRest) -> None:
    seen = len(upstash_rest.requests)
    pipe = sdk.pipeline()
    pipe.set(f"{base}:x", "1")
    pipe.incr(f"{base}:x")
    pipe.get(f"{base}:x")
    assert pipe.exec() == [True, 2, "2"]
    tx = sdk.multi()
    tx.set(f"{base}:y", "a")
    tx.append(f"{base}:y", "b")
    tx.get(f"{base}:y")
    assert tx.exec() == [True, 2, "ab"]
    assert upstash_rest.requests[seen:] == ["/pipeline", "/multi-exec"]


def test_errors_have_upstash_shapes(sdk: Redis, base: str, upstash_rest: UpstashRest) -> None:
    sdk.set(f"{base}:text", "not a number")
    with pytest.raises(UpstashError, match="^ERR value is not an integer"):
        sdk.incr(f"{base}:text")
    pipe = sdk.pipeline()
    pipe.incr(f"{base}:text")
    pipe.get(f"{base}:text")
    with pytest.raises(UpstashError, match="ERR value is not an integer"):
        pipe.exec()
    wrong = Redis(url=upstash_rest.url, token="wrong", rest_retries=0, allow_telemetry=False)
    with pytest.raises(UpstashError, match="Unauthorized"):
        wrong.get(f"{base}:text")
    wrong.close()


def test_the_sdk_and_hubkv_read_each_other(
    sdk: Redis, base: str, upstash_rest: UpstashRest
) -> None:
    store = hubkv.KV("upstash", url=upstash_rest.url, token=upstash_rest.token, base=base)
    store.set("settings", {"theme": "system"}, ttl=120)
    assert sdk.get(f"{base}:settings") == '{"theme":"system"}'
    assert 119_000 < sdk.pttl(f"{base}:settings") <= 120_000
    sdk.set(f"{base}:greeting", "hello")  # a plain string, as JS apps store them
    sdk.set(f"{base}:count", "3")
    assert store.get("greeting") == "hello"
    assert store.get("count") == 3
    assert store.keys() == ["count", "greeting", "settings"]
    assert store.clear() == 3
    assert sdk.exists(f"{base}:settings") == 0
    store.close()
