"""Remote drivers against the local stand-ins, next to the official clients.

For each service, hubkv's driver and the service's official client make the
same calls on the same server, taking turns call by call; the table gives the
median latency of each and how many requests (HTTP requests, or Redis
commands) one call took, as counted by the server:

- Upstash: the ``upstash`` driver and ``upstash-redis`` against the Upstash
  REST stand-in over a real ``redis-server``;
- Redis: the ``redis`` driver and ``redis-py`` against ``redis-server``;
- Cloudflare KV: the ``cloudflare-kv-binding`` driver and the ``cloudflare``
  SDK against Cloudflare's runtime (workerd, through miniflare).

The stand-ins are started with the test suite's own code
(``tests/standins``), so this needs what the tests need: ``redis-server``,
Node.js and ``npm ci`` (``scripts/test.sh`` installs them). A server that
can't start is reported as a problem, never skipped. Values are the same
small JSON dicts as elsewhere; the official clients get the same JSON text.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

import hubkv

from .workload import value

__all__ = ["compare_remote"]

#: Keys loaded before the calls; keys(prefix) lists a tenth of them.
LOADED = 1000
#: Keys per set_many / get_many call.
BATCH = 100
PREFIX = "bench:01"  # bench:0100 .. bench:0199

_json = msgspec.json.encode


@dataclass
class Operation:
    """One row: what hubkv does, and what the official client does for it."""

    name: str
    hubkv: Callable[[int], Any]
    official: Callable[[int], Any]


def compare_remote(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Start each stand-in, time every operation both ways; rows for the report."""
    calls = 15 if quick else 150
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for service, start in (
        ("Upstash", _upstash),
        ("Redis", _redis),
        ("Cloudflare KV", _cloudflare),
    ):  # Redis counts commands (one round trip may carry many); the others HTTP requests
        log(f"remote: {service}, {calls} calls per operation and client")
        try:
            with start() as (operations, count_requests, official_name):
                for operation in operations:
                    rows += _time(service, operation, official_name, calls, count_requests)
        except Exception as exc:  # a missing runtime is reported, not skipped
            problems.append(f"remote {service}: {type(exc).__name__}: {exc}")
    return {"calls": calls, "rows": rows, "problems": problems}


def _time(
    service: str,
    operation: Operation,
    official_name: str,
    calls: int,
    count_requests: Callable[[], int],
) -> list[dict[str, Any]]:
    """Both clients take turns, call by call; median ms and requests per call of each."""
    times: dict[str, list[float]] = {"hubkv": [], official_name: []}
    requests: dict[str, int] = {"hubkv": 0, official_name: 0}
    for i in range(calls):
        for client, call in (("hubkv", operation.hubkv), (official_name, operation.official)):
            before = count_requests()
            start = time.perf_counter()
            call(i)
            times[client].append(time.perf_counter() - start)
            requests[client] += count_requests() - before
    return [
        {
            "service": service,
            "operation": operation.name,
            "client": client,
            "ms": statistics.median(times[client]) * 1000,
            "requests": requests[client] / calls,
            "counted": "commands" if service == "Redis" else "HTTP requests",
        }
        for client in times
    ]


def _operations(
    store: hubkv.KV,
    set_: Callable[[str, bytes], Any],
    get: Callable[[str], bytes | None],
    has: Callable[[str], bool],
    delete: Callable[[str], Any],
    keys: Callable[[str], list[str]],
    set_many: Callable[[dict[str, bytes]], Any],
    get_many: Callable[[list[str]], Any],
) -> list[Operation]:
    """The operations, given the official client's way of doing each with JSON bytes."""
    loaded = [f"bench:{i:04d}" for i in range(LOADED)]
    store.set_many({key: value(i) for i, key in enumerate(loaded)})

    def mine(i: int) -> str:
        return f"bench:hubkv:{i:05d}"

    def theirs(i: int) -> str:
        return f"bench:official:{i:05d}"

    def batch(name: Callable[[int], str], i: int) -> dict[str, Any]:
        return {name(100_000 + i * BATCH + j): value(j) for j in range(BATCH)}

    def read(i: int) -> str:
        return loaded[i * 7 % LOADED]

    def wanted(i: int) -> list[str]:
        return [loaded[(i + j) % LOADED] for j in range(BATCH)]

    return [
        Operation("set", lambda i: store.set(mine(i), value(i)), lambda i: set_(theirs(i), _json(value(i)))),
        Operation("get", lambda i: store.get(read(i)), lambda i: msgspec.json.decode(get(read(i)) or b"null")),
        Operation("has", lambda i: store.has(read(i)), lambda i: has(read(i))),
        Operation("delete", lambda i: store.delete(mine(i)), lambda i: delete(theirs(i))),
        Operation(
            f"keys(prefix), {LOADED // 10} of {LOADED} keys",
            lambda i: store.keys(PREFIX),
            lambda i: sorted(keys(PREFIX)),
        ),
        Operation(
            f"set_many, {BATCH} keys",
            lambda i: store.set_many(batch(mine, i)),
            lambda i: set_many({k: _json(v) for k, v in batch(theirs, i).items()}),
        ),
        Operation(
            f"get_many, {BATCH} keys",
            lambda i: store.get_many(wanted(i)),
            lambda i: get_many(wanted(i)),
        ),
    ]  # fmt: skip


Started = Iterator[tuple[list[Operation], Callable[[], int], str]]


@contextlib.contextmanager
def _upstash() -> Started:
    from upstash_redis import Redis

    from tests.standins.redis_server import start_redis_server
    from tests.standins.upstash_rest import UpstashRest

    with tempfile.TemporaryDirectory(prefix="hubkv-bench-redis-") as folder:
        server = start_redis_server(Path(folder))
        rest = UpstashRest(server.port).start()
        store = hubkv.KV("upstash", url=rest.url, token=rest.token)
        sdk = Redis(url=rest.url, token=rest.token, allow_telemetry=False)
        try:

            def scan(prefix: str) -> list[str]:
                found: list[str] = []
                cursor = 0
                while True:
                    cursor, page = sdk.scan(cursor, match=prefix + "*", count=1000)
                    found += page
                    if cursor == 0:
                        return found

            operations = _operations(
                store,
                lambda key, data: sdk.set(key, data.decode()),
                lambda key: None if (text := sdk.get(key)) is None else text.encode(),
                lambda key: sdk.exists(key) == 1,
                sdk.unlink,
                scan,
                lambda items: sdk.mset({k: v.decode() for k, v in items.items()}),
                lambda keys: sdk.mget(*keys),
            )
            yield operations, lambda: len(rest.requests), "upstash-redis"
        finally:
            sdk.close()
            store.close()
            rest.stop()
            server.stop()


@contextlib.contextmanager
def _redis() -> Started:
    import redis

    from tests.standins.redis_server import start_redis_server

    with tempfile.TemporaryDirectory(prefix="hubkv-bench-redis-") as folder:
        server = start_redis_server(Path(folder))
        store = hubkv.KV("redis", url=server.url)
        client = redis.Redis.from_url(server.url)
        counter = server.client()
        try:
            looks = [0]

            def count() -> int:
                # Commands the server ran; each look is itself one (INFO).
                looks[0] += 1
                return int(counter.info("stats")["total_commands_processed"]) - looks[0]

            operations = _operations(
                store,
                client.set,
                client.get,
                lambda key: client.exists(key) == 1,
                client.unlink,
                lambda prefix: [key.decode() for key in client.scan_iter(match=prefix + "*", count=1000)],
                client.mset,
                lambda keys: client.mget(keys),
            )  # fmt: skip
            yield operations, count, "redis-py"
        finally:
            client.close()
            store.close()
            server.stop()


@contextlib.contextmanager
def _cloudflare() -> Started:
    import cloudflare

    from tests.standins.cloudflare_kv import CloudflareKV

    server = CloudflareKV().start()
    try:
        namespace = server.create_namespace("bench")
        store = hubkv.KV("cloudflare-kv-binding", **server.options(namespace))
        sdk = cloudflare.Cloudflare(api_token=server.api_token, base_url=server.base_url)
        where = {"account_id": server.account_id, "namespace_id": namespace}
        values = sdk.kv.namespaces.values
        try:

            def has(key: str) -> bool:
                try:
                    sdk.kv.namespaces.metadata.get(key, **where)
                except cloudflare.NotFoundError:
                    return False
                return True

            operations = _operations(
                store,
                lambda key, data: values.update(key, **where, value=data),
                lambda key: values.get(key, **where).read(),
                has,
                lambda key: values.delete(key, **where),
                lambda prefix: [k.name for k in sdk.kv.namespaces.keys.list(**where, prefix=prefix)],
                lambda items: sdk.kv.namespaces.bulk_update(
                    namespace,
                    account_id=server.account_id,
                    body=[{"key": k, "value": v.decode()} for k, v in items.items()],
                ),
                lambda keys: sdk.kv.namespaces.bulk_get(namespace, account_id=server.account_id, keys=keys),
            )  # fmt: skip
            looks = [0]

            def count() -> int:
                # Requests the server answered; each look is itself one.
                looks[0] += 1
                return int(server.stats()["requests"]) - looks[0]

            yield operations, count, "cloudflare SDK"
        finally:
            sdk.close()
            store.close()
    finally:
        server.stop()
