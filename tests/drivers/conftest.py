"""One fixture per driver; every test in this folder runs against each of them.

A driver joins the shared suite by adding a ``<name>_case`` fixture that
returns a :class:`DriverCase` and listing ``<name>`` in ``DRIVERS``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv.drivers.memory import MemoryDriver

DRIVERS = ["memory", "fs-lite", "upstash", "redis", "cloudflare-kv-binding"]

_namespaces = itertools.count()


@dataclass
class DriverCase:
    """How the shared suite makes stores of one driver and waits for TTLs."""

    name: str
    #: make(**store_options) -> an empty store of this driver.
    make: Callable[..., hubkv.KV]
    #: The shortest TTL the driver honours exactly (Cloudflare: 60 s).
    short_ttl: float = 0.3
    #: Let ``seconds`` pass for the driver's clock (sleep, or advance a test clock).
    wait: Callable[[float], None] = field(default=time.sleep)
    #: Options that, with ``make``, open a second store on the same data.
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def memory_case() -> DriverCase:
    driver = MemoryDriver()

    def make(**options: Any) -> hubkv.KV:
        return hubkv.KV(driver, **options)

    return DriverCase("memory", make)


@pytest.fixture
def fs_lite_case(tmp_path: Path) -> DriverCase:
    path = tmp_path / "store" / "kv.sqlite3"

    def make(**options: Any) -> hubkv.KV:
        return hubkv.KV("fs-lite", path=str(path), **options)

    return DriverCase("fs-lite", make)


@pytest.fixture
def upstash_case(upstash_rest: Any) -> DriverCase:
    """The upstash driver against the Upstash REST stand-in, on a fresh ``base``."""
    base = f"suite{next(_namespaces)}"

    def make(**options: Any) -> hubkv.KV:
        return hubkv.KV(
            "upstash", url=upstash_rest.url, token=upstash_rest.token, base=base, **options
        )

    return DriverCase("upstash", make)


@pytest.fixture
def redis_case(redis_server: Any) -> DriverCase:
    """The redis driver against the session's redis-server, on a fresh ``base``."""
    base = f"suite{next(_namespaces)}"

    def make(**options: Any) -> hubkv.KV:
        return hubkv.KV("redis", url=redis_server.url, base=base, **options)

    return DriverCase("redis", make)


@pytest.fixture
def cloudflare_kv_binding_case(cloudflare_kv: Any, cloudflare_namespace: str) -> DriverCase:
    """Cloudflare KV against workerd (miniflare), on a fresh namespace; TTLs >= 60 s.

    ``wait`` moves the runtime's KV clock of that namespace forward: the
    runtime itself then expires the keys.
    """

    def make(**options: Any) -> hubkv.KV:
        return hubkv.KV(
            "cloudflare-kv-binding", **cloudflare_kv.options(cloudflare_namespace), **options
        )

    def wait(seconds: float) -> None:
        cloudflare_kv.advance_clock(cloudflare_namespace, seconds)

    return DriverCase("cloudflare-kv-binding", make, short_ttl=60, wait=wait)


@pytest.fixture(params=DRIVERS)
def case(request: pytest.FixtureRequest) -> DriverCase:
    fixture_name = request.param.replace("-", "_") + "_case"
    return request.getfixturevalue(fixture_name)  # type: ignore[no-any-return]


@pytest.fixture
def store(case: DriverCase) -> Iterator[hubkv.KV]:
    kv = case.make()
    kv.clear()
    yield kv
    kv.close()
