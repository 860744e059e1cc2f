"""Batched TTL reads, per-item TTL writes and listings across pages, on every driver.

``ttl_many``, ``iter_ttls`` and ``set_many_with_ttls`` are what exports,
imports and copies use (one request per batch instead of one per key); the
listings must cross each driver's page boundary: fs-lite's 500-key pages,
Cloudflare's 1,000-key listing pages, Redis ``SCAN`` steps.
"""

from __future__ import annotations

from typing import Any

import pytest

import hubkv
from hubkv import InvalidKeyError, InvalidTTLError, SerializationError, ValueTooLargeError
from hubkv.drivers import cloudflare, sqlite
from hubkv.drivers.redis_common import RedisCommandsDriver

from .conftest import DriverCase

# -- ttl_many -------------------------------------------------------------------


def test_ttl_many_gives_the_ttls_of_present_keys_in_the_order_asked(store: hubkv.KV) -> None:
    store.set_many({"forever": 1, "none": None})
    store.set("hour", 2, ttl=3600)
    store.set("day", 3, ttl=86400)
    found = store.ttl_many(["day", "missing", "forever", "hour", "none", "hour"])
    assert list(found) == ["day", "forever", "hour", "none"]
    assert found["forever"] is None and found["none"] is None
    assert 3500 < (found["hour"] or 0) <= 3600
    assert 86300 < (found["day"] or 0) <= 86400
    assert store.ttl_many([]) == {}
    assert list(store.ttl_many(iter(["hour"]))) == ["hour"]


def test_ttl_many_and_iter_ttls_leave_out_expired_keys(case: DriverCase) -> None:
    store = case.make()
    store.clear()
    store.set("short", 1, ttl=case.short_ttl)
    store.set("long", 2, ttl=3600)
    case.wait(case.short_ttl + 0.2)
    assert list(store.ttl_many(["short", "long"])) == ["long"]
    assert [key for key, _ in store.iter_ttls()] == ["long"]
    store.close()


def test_ttl_reads_refuse_bad_keys_and_prefixes(store: hubkv.KV) -> None:
    with pytest.raises(InvalidKeyError):
        store.ttl_many(["fine", "bad\x00"])
    with pytest.raises(InvalidKeyError):
        store.ttl_many("abc")
    with pytest.raises(InvalidKeyError):
        store.iter_ttls("bad\x00")


# -- iter_ttls ------------------------------------------------------------------


def test_iter_ttls_lists_the_keys_under_a_prefix_with_their_ttls(store: hubkv.KV) -> None:
    store.set_many({"p:a": 1, "p:b": 2, "q:c": 3, "p": 4})
    store.set("p:t", 5, ttl=3600)
    listed = dict(store.iter_ttls("p:"))
    assert sorted(listed) == store.keys("p:") == ["p:a", "p:b", "p:t"]
    assert listed["p:a"] is None and listed["p:b"] is None
    assert 3500 < (listed["p:t"] or 0) <= 3600
    assert sorted(dict(store.iter_ttls())) == store.keys()
    assert list(store.iter_ttls("nothing-here")) == []


def test_views_read_ttls_with_relative_keys(store: hubkv.KV) -> None:
    store.set_many({"users:42:": "parent's", "users:42:a": 1, "users:7:a": 2})
    store.set("users:42:s", 3, ttl=3600)
    view = store.prefixed("users:42:")
    listed = dict(view.iter_ttls())
    assert sorted(listed) == ["a", "s"] and listed["a"] is None
    found = view.ttl_many(["s", "missing", "a"])
    assert list(found) == ["s", "a"] and 3500 < (found["s"] or 0) <= 3600
    with pytest.raises(InvalidKeyError):
        view.ttl_many([""])


# -- set_many_with_ttls ---------------------------------------------------------


def test_set_many_with_ttls_gives_each_key_its_own_ttl(store: hubkv.KV) -> None:
    entries: list[tuple[str, Any, float | None]] = [
        (f"k:{i:03d}", {"i": i}, 3600.0 + i) for i in range(50)
    ]
    entries += [("forever", [1], None), ("also-forever", None, None)]
    store.set_many_with_ttls(entries)
    keys = [key for key, _, _ in entries]
    assert store.get_many(keys) == {key: value for key, value, _ in entries}
    ttls = store.ttl_many(keys)
    for key, _, ttl in entries:
        if ttl is None:
            assert ttls[key] is None, key
        else:
            assert ttl - 5 < (ttls[key] or 0) <= ttl, key


def test_set_many_with_ttls_overwrites_and_a_repeated_key_keeps_its_last_entry(
    store: hubkv.KV,
) -> None:
    store.set("a", "old", ttl=3600)
    store.set("b", "old")
    store.set_many_with_ttls(
        [("a", "new", None), ("b", "new", 7200), ("c", 1, 3600), ("c", 2, None)]
    )
    assert store.get_many(["a", "b", "c"]) == {"a": "new", "b": "new", "c": 2}
    assert store.ttl("a") is None and store.ttl("c") is None
    assert 7100 < (store.ttl("b") or 0) <= 7200
    store.set_many_with_ttls([])
    store.set_many_with_ttls(iter([("d", 4, None)]))
    assert store.keys() == ["a", "b", "c", "d"]


def test_set_many_with_ttls_expires_each_key_at_its_own_time(case: DriverCase) -> None:
    store = case.make()
    store.clear()
    store.set_many_with_ttls(
        [("short", 1, case.short_ttl), ("long", 2, case.short_ttl * 20), ("forever", 3, None)]
    )
    case.wait(case.short_ttl + 0.2)
    assert store.keys() == ["forever", "long"]
    assert store.get_many(["short", "long", "forever"]) == {"long": 2, "forever": 3}
    store.close()


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ([("ok", 1, None), ("bad\x00", 1, None)], InvalidKeyError),
        ([("ok", 1, None), ("k", float("nan"), None)], SerializationError),
        ([("ok", 1, None), ("k", 1, 0)], InvalidTTLError),
        ([("ok", 1, None), ("k", 1, -5)], InvalidTTLError),
        ([("ok", 1, None), ("k", 1, "10")], InvalidTTLError),
        ([("ok", 1, None), ("k", 1, True)], InvalidTTLError),
        ([("ok", 1, None), ("k", 1)], InvalidKeyError),
        ([("ok", 1, None), "abc"], InvalidKeyError),
        ({"ok": 1}, InvalidKeyError),
    ],
    ids=repr,
)
def test_set_many_with_ttls_checks_everything_before_the_first_write(
    store: hubkv.KV, bad: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.set_many_with_ttls(bad)
    assert store.keys() == []


def test_set_many_with_ttls_refuses_oversized_values_before_any_write(case: DriverCase) -> None:
    store = case.make(max_value_bytes=100)
    store.clear()
    with pytest.raises(ValueTooLargeError):
        store.set_many_with_ttls([("small", 1, None), ("big", "x" * 200, 3600)])
    assert store.keys() == []
    store.close()


# -- listings across pages ------------------------------------------------------

#: More keys than a page of any driver's listing: fs-lite reads 500 keys a page,
#: Cloudflare lists 1,000 (its simulator writes ~1.5 ms a key: keep this small).
PAGED = 1100


def test_listings_cross_page_boundaries(store: hubkv.KV) -> None:
    assert PAGED > sqlite._CHUNK and PAGED > cloudflare._LIST_PAGE
    driver = store.driver
    if isinstance(driver, RedisCommandsDriver):
        driver.scan_count = 100  # SCAN steps of ~100 keys: a dozen or more pages
    keys = [f"page:{i:05d}" for i in range(PAGED)]
    store.set_many_with_ttls(
        [(key, i, None if i % 2 else 3600.0 + i) for i, key in enumerate(keys)]
    )
    store.set_many({"page": "outside", "pagf": "outside"})

    listed = list(store.iter_keys("page:"))
    assert set(listed) == set(keys)
    if isinstance(driver, RedisCommandsDriver):
        # SCAN may repeat a key (only when the database is resized mid-scan).
        assert sum(1 for _ in driver._scan("page:")) > 1
    else:
        assert len(listed) == PAGED
    assert store.keys("page:") == keys  # exact: sorted, each once

    ttls = list(store.iter_ttls("page:"))
    assert {key for key, _ in ttls} == set(keys)
    for key, ttl in ttls:
        i = int(key[len("page:") :])
        if i % 2:
            assert ttl is None, key
        else:
            assert 3600 + i - 60 < (ttl or 0) <= 3600 + i, key

    view = store.prefixed("page:")
    assert sorted(set(view.iter_keys())) == [key[len("page:") :] for key in keys]
    assert store.clear("page:") == PAGED
    assert store.keys() == ["page", "pagf"]
