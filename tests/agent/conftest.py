"""Fixtures of the agent tests: stores with neighbours outside the scope, and a
driver that records every key it is asked about."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

import hubkv
from hubkv.drivers.memory import MemoryDriver

SCOPE = "users:42:"
#: Keys outside the scope that look like it: prefixes of it, siblings, look-alikes.
NEIGHBOURS = {
    "users:4": "prefix of the scope",
    "users:42": "the scope without its ':'",
    "users:420:secret": "sibling whose id starts like ours",
    "users:43:secret": "sibling",
    "users:secret": "parent level",
    "users:42\uff1asecret": "fullwidth colon look-alike",
    "secret": "root",
    "users:42/secret": "other separator",
}
#: Keys inside the scope, relative.
INSIDE = {"profile": {"name": "Ada"}, "prefs": {"lang": "en"}, "notes:1": "buy milk"}


class RecordingDriver(MemoryDriver):
    """The memory driver, noting each key or prefix it receives and each write."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.writes: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.seen.append(key)
        return super().get(key)

    def has(self, key: str) -> bool:
        self.seen.append(key)
        return super().has(key)

    def ttl(self, key: str) -> float | None:
        self.seen.append(key)
        return super().ttl(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self.seen.extend(keys)
        return super().get_many(keys)

    def iter_keys(self, prefix: str) -> Iterator[str]:
        self.seen.append(prefix)
        return super().iter_keys(prefix)

    def keys(self, prefix: str) -> list[str]:
        self.seen.append(prefix)
        return super().keys(prefix)

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self.seen.append(key)
        self.writes.append(key)
        super().set(key, value, ttl)

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None) -> None:
        self.seen.extend(key for key, _ in items)
        self.writes.extend(key for key, _ in items)
        super().set_many(items, ttl)

    def delete(self, key: str) -> None:
        self.seen.append(key)
        self.writes.append(key)
        super().delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self.seen.extend(keys)
        self.writes.extend(keys)
        super().delete_many(keys)

    def clear(self, prefix: str) -> int:
        self.seen.append(prefix)
        self.writes.append(prefix)
        return super().clear(prefix)

    def forget(self) -> None:
        """Drop what was recorded so far."""
        self.seen.clear()
        self.writes.clear()


def fill(store: hubkv.KV) -> None:
    """Put the neighbours and the scope's own keys in ``store``."""
    store.set_many({key: f"not yours: {why}" for key, why in NEIGHBOURS.items()})
    store.set_many({SCOPE + key: value for key, value in INSIDE.items()})


@pytest.fixture
def recording() -> RecordingDriver:
    return RecordingDriver()


@pytest.fixture
def recorded_store(recording: RecordingDriver) -> hubkv.KV:
    store = hubkv.KV(recording)
    fill(store)
    recording.forget()
    return store


@pytest.fixture(params=["memory", "fs-lite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[hubkv.KV]:
    """A filled store of each local driver."""
    if request.param == "memory":
        kv = hubkv.KV("memory")
    else:
        kv = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    fill(kv)
    yield kv
    kv.close()
