"""Requests per batch, not per key: export, copy and import of keys whose TTLs all differ.

An audit found ``hubkv.tools`` reading each key's TTL with one request
(1,000 keys: ~1,000 requests on Upstash and Cloudflare, whose API allows
1,200 requests per 5 minutes) and writing one ``set_many`` per distinct
whole-second TTL. These tests count the requests on the remote drivers and
pin the batch-level behaviour that replaced it: keys listed but gone when
read, keys listed twice, one write per batch whatever the TTLs.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv.drivers.memory import MemoryDriver
from hubkv.tools import DEFAULT_BATCH_SIZE, copy, export, import_file
from tests.standins.cloudflare_kv import CloudflareKV
from tests.standins.redis_server import RedisServer
from tests.standins.upstash_rest import UpstashRest

COUNT = 1000
BATCHES = math.ceil(COUNT / DEFAULT_BATCH_SIZE)  # 2
#: Keys whose TTLs all differ (whole seconds apart, over Cloudflare's 60 s minimum).
ENTRIES: list[tuple[str, Any, float | None]] = [
    (f"k:{i:04d}", {"i": i, "pad": "x" * (i % 50)}, 3600.0 + i) for i in range(COUNT)
]


@pytest.fixture(scope="module")
def upstash_db(redis_server: RedisServer) -> Iterator[UpstashRest]:
    """A stand-in over database 8, which only this module uses: SCAN sees only its keys."""
    server = UpstashRest(redis_server.port, db=8).start()
    server.redis.flushdb()
    yield server
    server.redis.flushdb()
    server.stop()


def upstash(server: UpstashRest, base: str) -> hubkv.KV:
    return hubkv.KV("upstash", url=server.url, token=server.token, base=base)


def sent(store: hubkv.KV) -> int:
    return int(store.driver.http.requests_sent)  # type: ignore[attr-defined]


def cost(store: hubkv.KV, call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and the HTTP requests ``store`` sent meanwhile."""
    before = sent(store)
    result = call()
    return result, sent(store) - before


def assert_arrived(store: hubkv.KV, slack: float = 3.0) -> None:
    """Every key of ENTRIES with its value and (to ``slack`` seconds) its TTL."""
    keys = [key for key, _, _ in ENTRIES]
    assert store.get_many(keys) == {key: value for key, value, _ in ENTRIES}
    ttls = dict(store.iter_ttls())
    assert sorted(ttls) == keys
    loaded = {key: ttl for key, _, ttl in ENTRIES}
    for key, ttl in ttls.items():
        # The copies are made within seconds of loading: each TTL is its own, minus that.
        assert ttl is not None and loaded[key] - 60 < ttl <= (loaded[key] or 0) + slack, key


def test_export_copy_and_import_take_a_few_requests_per_batch(
    upstash_db: UpstashRest,
    cloudflare_kv: CloudflareKV,
    cloudflare_namespace: str,
    tmp_path: Path,
) -> None:
    up = upstash(upstash_db, "source")
    cf = hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace))
    # Loading is one request each too: one transaction, one bulk write.
    assert cost(up, lambda: up.set_many_with_ttls(ENTRIES))[1] == 1
    assert cost(cf, lambda: cf.set_many_with_ttls(ENTRIES))[1] == 1

    # Upstash export: 1 SCAN (COUNT 10,000), 1 PTTL pipeline per 1,000 keys, 1 MGET per batch.
    file = tmp_path / "upstash.jsonl"
    summary, requests = cost(up, lambda: export(up, file))
    assert (summary.written, summary.expired, summary.failed) == (COUNT, 0, 0)
    assert requests == 1 + 1 + BATCHES
    records = [json.loads(line) for line in file.read_text().splitlines()]
    assert {r["key"]: r["value"] for r in records} == {k: v for k, v, _ in ENTRIES}
    assert all(3600 - 60 < r["ttl"] <= 3600 + COUNT for r in records)

    # Cloudflare export: the listing carries the expirations (1 request per 1,000 keys,
    # and one for the empty page after a full one), then 1 bulk get per 100 keys.
    summary, requests = cost(cf, lambda: export(cf, tmp_path / "cloudflare.jsonl"))
    assert (summary.written, summary.failed) == (COUNT, 0)
    assert requests <= COUNT // 1000 + 1 + math.ceil(COUNT / 100)

    # Copies: the same reads; each batch is one write, whatever its TTLs.
    target = upstash(upstash_db, "from-cloudflare")
    before = sent(target)
    summary, requests = cost(cf, lambda: copy(cf, target))
    assert (summary.written, summary.failed) == (COUNT, 0)
    assert requests <= COUNT // 1000 + 1 + math.ceil(COUNT / 100)
    assert sent(target) - before == BATCHES  # one /multi-exec per batch
    assert_arrived(target)

    cf.clear()
    before = sent(cf)
    summary, requests = cost(up, lambda: copy(up, cf))
    assert (summary.written, summary.failed) == (COUNT, 0)
    assert requests == 1 + 1 + BATCHES
    assert sent(cf) - before == BATCHES  # one PUT /bulk per batch
    assert_arrived(cf, slack=1)  # whole seconds, rounded down

    # Import: one write per batch.
    fresh = upstash(upstash_db, "imported")
    summary, requests = cost(fresh, lambda: import_file(fresh, file))
    assert (summary.written, requests) == (COUNT, BATCHES)
    assert_arrived(fresh)


def test_a_copy_to_cloudflare_is_one_bulk_write_per_batch(
    upstash_db: UpstashRest, cloudflare_kv: CloudflareKV, cloudflare_namespace: str
) -> None:
    source = hubkv.KV("memory")
    source.set_many_with_ttls(ENTRIES)
    cf = hubkv.KV("cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace))
    summary, requests = cost(cf, lambda: copy(source, cf))
    assert (summary.written, requests) == (COUNT, BATCHES)
    # --skip-existing adds one bulk read per 100 keys, and writes nothing more.
    summary, requests = cost(cf, lambda: copy(source, cf, skip_existing=True))
    assert (summary.written, summary.skipped) == (0, COUNT)
    assert requests == math.ceil(COUNT / 100)
    assert_arrived(cf, slack=1)


# -- the batch logic, on in-process drivers -------------------------------------


class Counting(MemoryDriver):
    """A memory driver counting batch calls, and able to misbehave on cue."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        #: Keys get_many leaves out (a bulk read that skips keys).
        self.skipped_by_get_many: set[str] = set()
        #: Keys get leaves out too (present, yet unreadable).
        self.unreadable: set[str] = set()
        #: Keys the listing shows although they are not stored.
        self.ghosts: list[str] = []
        #: Keys the listing shows twice (SCAN after a resize), at the end.
        self.repeated: list[str] = []

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self.calls.append("set")
        super().set(key, value, ttl)

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        self.calls.append("set_many")
        super().set_many(items, ttl)

    def set_many_with_ttls(self, items: Sequence[tuple[str, bytes, float | None]]) -> None:
        self.calls.append("set_many_with_ttls")
        super().set_many_with_ttls(items)

    def has(self, key: str) -> bool:
        self.calls.append("has")
        return MemoryDriver.get(self, key) is not None  # stored, readable or not

    def ttl(self, key: str) -> float | None:
        self.calls.append("ttl")
        return super().ttl(key)

    def get(self, key: str) -> bytes | None:
        return None if key in self.unreadable else super().get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = super().get_many(keys)
        return {k: v for k, v in found.items() if k not in self.skipped_by_get_many}

    def iter_keys(self, prefix: str) -> Iterator[str]:
        return iter([*self.ghosts, *super().iter_keys(prefix), *self.repeated])

    def iter_ttls(self, prefix: str) -> Iterator[tuple[str, float | None]]:
        ghosts = [(ghost, None) for ghost in self.ghosts]
        repeats = list(self.ttl_many(self.repeated).items())
        return iter([*ghosts, *super().iter_ttls(prefix), *repeats])


def test_each_batch_is_one_write_whatever_the_ttls() -> None:
    source = hubkv.KV("memory")
    source.set_many_with_ttls(ENTRIES)
    driver = Counting()
    summary = copy(source, hubkv.KV(driver), batch_size=300)
    assert summary.written == COUNT
    assert driver.calls == ["set_many_with_ttls"] * math.ceil(COUNT / 300)


def test_ttls_count_down_from_their_read_to_the_write() -> None:
    driver = Counting()
    target = hubkv.KV(driver)
    lines = b'{"key": "soon", "value": 1, "ttl": 0.05}\n{"key": "later", "value": 2, "ttl": 3600}\n'
    import_file(target, io.BytesIO(lines))
    assert target.ttl("later") is not None and 3599 < (target.ttl("later") or 0) <= 3600
    assert 0 < (target.ttl("soon") or 0) <= 0.05  # what was left, not rounded up
    time.sleep(0.1)
    assert target.keys() == ["later"]


def test_listed_keys_missing_when_read_are_confirmed_then_counted() -> None:
    driver = Counting()
    source = hubkv.KV(driver)
    source.set_many({f"k:{i}": i for i in range(10)})
    driver.ghosts = ["k:ghost"]  # listed, gone: expired meanwhile
    driver.skipped_by_get_many = {"k:3", "k:7"}  # present, skipped by the bulk read
    driver.unreadable = {"k:7"}  # ... and by a read alone too
    target = hubkv.KV("memory")
    summary = copy(source, target)
    assert (summary.written, summary.expired, summary.failed) == (9, 1, 1)
    assert target.get("k:3") == 3  # read alone, not lost
    assert "k:7" not in target
    assert "'k:7'" in summary.errors[0] and "reported present" in summary.errors[0]
    assert driver.calls.count("has") == 3  # each key get_many left out, confirmed once
    assert "ttl" not in driver.calls  # TTLs come in batches, never key by key


def test_a_key_whose_ttl_runs_out_during_the_read_is_expired_without_a_request() -> None:
    class Slow(Counting):
        def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
            time.sleep(0.15)  # a slow bulk read, during which "brief" expires
            return super().get_many(keys)

    driver = Slow()
    source = hubkv.KV(driver)
    source.set("brief", 1, ttl=0.1)
    source.set("kept", 2)
    target = hubkv.KV("memory")
    driver.calls.clear()
    summary = copy(source, target)
    assert (summary.written, summary.expired, summary.failed) == (1, 1, 0)
    assert target.keys() == ["kept"]
    assert "has" not in driver.calls  # its TTL said it was gone: nothing to confirm


def test_a_key_listed_twice_is_written_twice_and_the_data_is_right() -> None:
    driver = Counting()
    source = hubkv.KV(driver)
    source.set_many({f"k:{i:02d}": i for i in range(20)})
    source.set("k:05", 5, ttl=3600)
    driver.repeated = ["k:05", "k:06"]  # SCAN repeating keys pages later
    target = hubkv.KV("memory")
    summary = copy(source, target, batch_size=8)
    assert summary.ok and summary.written == 22  # counted as moved twice (documented)
    assert target.get_many(source.keys()) == source.get_many(source.keys())
    assert 3590 < (target.ttl("k:05") or 0) <= 3600 and target.ttl("k:06") is None

    out = io.BytesIO()
    assert export(source, out, batch_size=8).written == 22  # the key's record twice
    back = hubkv.KV("memory")
    out.seek(0)
    assert import_file(back, out).written == 22  # ... and its last record kept
    assert back.get_many(source.keys()) == source.get_many(source.keys())

    # Within one batch, a repeat is read once.
    driver.repeated = ["k:19"]
    summary = copy(source, hubkv.KV("memory"), batch_size=100)
    assert summary.written == 20
