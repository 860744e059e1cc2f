"""The batch methods' defaults: a driver with only the abstract methods keeps working.

Third-party drivers written before ``ttl_many``, ``iter_ttls`` and
``set_many_with_ttls`` existed inherit them from :class:`hubkv.Driver`, built
on the single-key methods; exports, imports and copies then work through them.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import hubkv
from hubkv.drivers.base import Driver
from hubkv.tools import copy, export, import_file


class PlainDriver(Driver):
    """Only the abstract methods, over a dict of ``(value, expires_at)``; counts calls."""

    name = "plain"

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.calls: list[str] = []

    def describe(self) -> str:
        return f"plain dict {id(self):x}"  # two of them are two stores

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self.data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= time.time():
            del self.data[key]
            return None
        return entry

    def get(self, key: str) -> bytes | None:
        self.calls.append("get")
        entry = self._live(key)
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self.calls.append("set")
        self.data[key] = (value, None if ttl is None else time.time() + ttl)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def iter_keys(self, prefix: str) -> Iterator[str]:
        self.calls.append("iter_keys")
        return iter([key for key in list(self.data) if key.startswith(prefix) and self._live(key)])

    def clear(self, prefix: str) -> int:
        doomed = list(self.iter_keys(prefix))
        for key in doomed:
            del self.data[key]
        return len(doomed)

    def ttl(self, key: str) -> float | None:
        self.calls.append("ttl")
        entry = self._live(key)
        if entry is None:
            raise KeyError(key)
        return None if entry[1] is None else entry[1] - time.time()


def test_the_defaults_build_on_the_single_key_methods() -> None:
    driver = PlainDriver()
    store = hubkv.KV(driver)
    store.set_many_with_ttls([("a", 1, None), ("b", 2, 3600), ("c", 3, 3600), ("d", 4, 60)])
    assert driver.calls.count("set") == 4  # one set_many per TTL, each a loop of set
    assert store.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
    found = store.ttl_many(["d", "missing", "a", "b"])
    assert list(found) == ["d", "a", "b"] and found["a"] is None
    assert 3500 < (found["b"] or 0) <= 3600 and 0 < (found["d"] or 0) <= 60
    driver.calls.clear()
    assert {key for key, _ in store.iter_ttls()} == {"a", "b", "c", "d"}
    assert driver.calls == ["iter_keys"] + ["ttl"] * 4  # the listing, then ttl_many's loop
    view = store.prefixed("b")
    store.set("b:x", 5, ttl=10)
    assert [(key, round(ttl or 0)) for key, ttl in view.iter_ttls()] == [(":x", 10)]


def test_iter_ttls_leaves_out_a_key_that_vanishes_between_listing_and_ttl_read() -> None:
    class Vanishing(PlainDriver):
        def iter_keys(self, prefix: str) -> Iterator[str]:
            yield from ["ghost", *super().iter_keys(prefix)]  # listed, never stored

    store = hubkv.KV(Vanishing())
    store.set_many({"a": 1, "b": 2})
    assert sorted(store.iter_ttls()) == [("a", None), ("b", None)]


def test_transfers_work_through_a_driver_with_only_the_defaults() -> None:
    source = hubkv.KV(PlainDriver())
    source.set_many_with_ttls([(f"k:{i:03d}", i, 3600.0 + i) for i in range(30)])
    source.set("forever", "x")
    target = hubkv.KV(PlainDriver())
    summary = copy(source, target, batch_size=7)
    assert (summary.written, summary.expired, summary.failed) == (31, 0, 0)
    assert target.get_many(source.keys()) == source.get_many(source.keys())
    ttls = dict(target.iter_ttls())
    assert ttls["forever"] is None and 3600 + 29 - 5 < (ttls["k:029"] or 0) <= 3600 + 29

    out = io.BytesIO()
    assert export(target, out).written == 31
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["key"] for r in records} == set(source.keys())
    back = hubkv.KV(PlainDriver())
    out.seek(0)
    assert import_file(back, out).written == 31
    assert back.get_many(source.keys()) == source.get_many(source.keys())
