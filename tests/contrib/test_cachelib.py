"""hubkv.contrib.cachelib.KVCache against cachelib's documented semantics.

Each semantic test also runs on cachelib's own SimpleCache ("reference"): the
expectations are cachelib's, not ours.
"""

from __future__ import annotations

import datetime as dt
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cachelib import BaseCache, SimpleCache
from flask import Flask, session
from flask_caching import Cache
from flask_session import Session

import hubkv
from hubkv.contrib.cachelib import KVCache

from .conftest import Point, run_in_threads

Make = Callable[..., BaseCache]


@pytest.fixture(params=["reference", "kv-memory", "kv-fs-lite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """make(**cache_options) -> an empty cache of the parametrised kind."""
    if request.param == "reference":
        return SimpleCache
    if request.param == "kv-memory":
        return lambda **options: KVCache(hubkv.KV("memory"), **options)
    path = str(tmp_path / "kv.sqlite3")
    return lambda **options: KVCache("fs-lite", path=path, **options)


@pytest.fixture
def cache(make: Make) -> BaseCache:
    return make()


def test_get_set_round_trip_python_objects(cache: BaseCache) -> None:
    values = [
        {"a": [1, 2]},
        (1, "two"),
        {3, 4},
        b"\x00\xff",
        dt.datetime(2026, 12, 3, 10, 0),
        Point(1, 2),
        None,
        0,
    ]
    assert cache.get("missing") is None
    for n, value in enumerate(values):
        assert cache.set(f"k{n}", value) is True
    for n, value in enumerate(values):
        assert cache.get(f"k{n}") == value
    assert cache.set("k0", "replaced") is True
    assert cache.get("k0") == "replaced"


def test_add_only_when_absent(cache: BaseCache) -> None:
    assert cache.add("a", 1) is True
    assert cache.add("a", 2) is False
    assert cache.get("a") == 1
    cache.set("gone", 1, timeout=-1)
    assert cache.add("gone", 2) is True
    assert cache.get("gone") == 2


def test_delete_and_has(cache: BaseCache) -> None:
    cache.set("a", 1)
    assert cache.has("a") is True
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.has("a") is False
    cache.set("none", None)
    assert cache.has("none") is True


def test_many_keys_at_once(cache: BaseCache) -> None:
    assert sorted(cache.set_many({"a": 1, "b": 2, "c": 3})) == ["a", "b", "c"]
    assert cache.get_many("c", "missing", "a") == [3, None, 1]
    assert cache.get_dict("a", "missing") == {"a": 1, "missing": None}
    # A key that is absent afterwards counts as deleted, even if it never existed.
    assert sorted(cache.delete_many("a", "b", "missing")) == ["a", "b", "missing"]
    assert cache.get_many("a", "b", "c") == [None, None, 3]


def test_inc_and_dec_start_a_missing_key_at_delta(cache: BaseCache) -> None:
    assert cache.inc("hits") == 1
    assert cache.inc("hits", 5) == 6
    assert cache.dec("hits", 2) == 4
    assert cache.get("hits") == 4
    assert cache.dec("debt", 3) == -3


def test_clear_empties_the_cache(cache: BaseCache) -> None:
    cache.set_many({"a": 1, "b": 2})
    assert cache.clear() is True
    assert cache.get_many("a", "b") == [None, None]


def test_timeouts_none_is_default_zero_is_forever_negative_is_expired(tmp_path: Path) -> None:
    # One sleep for every kind of cache: cachelib timeouts are whole seconds.
    caches = [
        SimpleCache(default_timeout=1),
        KVCache(hubkv.KV("memory"), default_timeout=1),
        KVCache("fs-lite", path=str(tmp_path / "kv.sqlite3"), default_timeout=1),
    ]
    for cache in caches:
        cache.set("default", 1)
        cache.set("forever", 1, timeout=0)
        cache.set("minute", 1, timeout=60)
        cache.set("delta", 1, timeout=dt.timedelta(minutes=1))
        cache.set("expired", 1, timeout=-5)
        cache.set_many({"many": 1}, timeout=0)
        cache.add("added", 1)
        assert cache.has("expired") is False
        assert cache.get("default") == 1

    time.sleep(1.2)

    for cache in caches:
        assert cache.get("default") is None
        assert cache.get("added") is None
        assert [cache.get(key) for key in ("forever", "minute", "delta", "many")] == [1, 1, 1, 1]


# -- hubkv specifics -----------------------------------------------------------


def test_entries_are_pickles_under_the_key_prefix(tmp_path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    store.set("app-data", {"keep": True})
    cache = KVCache(store, key_prefix="fc:", default_timeout=60)

    cache.set("a", Point(1, 2))
    cache.set("b", 1, timeout=0)

    assert store.keys() == ["app-data", "fc:a", "fc:b"]
    assert pickle.loads(store.get("fc:a", type=bytes)) == Point(1, 2)
    ttl = store.ttl("fc:a")
    assert ttl is not None and 50 < ttl <= 60
    assert store.ttl("fc:b") is None
    cache.clear()
    assert store.keys() == ["app-data"]


def test_any_str_key_works_even_those_hubkv_refuses() -> None:
    store = hubkv.KV("memory")
    cache = KVCache(store)
    keys = ["", ".", "..", "x" * 600, "y" * 600, "tab\there", "nul\x00", "é" * 300, "#sha256:ab"]

    for n, key in enumerate(keys):
        cache.set(key, n)

    assert [cache.get(key) for key in keys] == list(range(len(keys)))
    assert len(store.keys("cache:")) == len(keys)
    assert all(len(key.encode()) <= 512 for key in store.keys())
    assert cache.delete("x" * 600) is True
    assert cache.get("y" * 600) == 4


def test_non_str_key_is_a_typed_error() -> None:
    with pytest.raises(hubkv.InvalidKeyError, match="must be a str"):
        KVCache(hubkv.KV("memory")).set(42, "x")  # type: ignore[arg-type]


def test_unpicklable_value_raises_before_writing() -> None:
    store = hubkv.KV("memory")
    cache = KVCache(store)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        cache.set_many({"a": 1, "b": lambda: None})
    assert store.keys() == []


def test_inc_keeps_the_expiry_and_refuses_non_numbers() -> None:
    store = hubkv.KV("memory")
    cache = KVCache(store, default_timeout=600)
    cache.set("hits", 1, timeout=30)
    cache.set("name", "x")

    assert cache.inc("hits") == 2
    ttl = store.ttl("cache:hits")
    assert ttl is not None and ttl <= 30
    with pytest.raises(TypeError):
        cache.inc("name")
    assert cache.get("name") == "x"


def test_stores_are_shared_per_configuration(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.sqlite3")
    first, second = KVCache("fs-lite", path=path), KVCache("fs-lite", path=path)
    assert first.store is second.store
    assert KVCache().store is hubkv.kv
    with pytest.raises(hubkv.ConfigError, match="already open"):
        KVCache(hubkv.KV("memory"), path=path)


def test_inc_and_add_are_atomic_between_threads(tmp_path: Path) -> None:
    cache = KVCache("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    added: list[bool] = []

    def work(thread: int) -> None:
        for _ in range(100):
            cache.inc("n")
        added.append(cache.add("once", thread))

    # fs-lite releases the GIL in every query, and a tiny switch interval makes
    # threads interleave between the read and the write of each increment.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        run_in_threads(work, 8)
    finally:
        sys.setswitchinterval(interval)

    assert cache.get("n") == 8 * 100
    assert added.count(True) == 1


# -- Flask-Caching and Flask-Session ---------------------------------------------


def test_flask_caching_uses_kvcache_as_its_backend(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.sqlite3")
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="hubkv.contrib.cachelib.KVCache",
        CACHE_DEFAULT_TIMEOUT=120,
        CACHE_OPTIONS={"driver": "fs-lite", "path": path, "key_prefix": "fc:"},
    )
    cache = Cache(app)
    calls: list[str] = []

    @app.get("/report")
    @cache.cached()
    def report() -> str:
        calls.append("report")
        return f"report #{len(calls)}"

    @cache.memoize()
    def square(n: int) -> int:
        calls.append(f"square({n})")
        return n * n

    client = app.test_client()
    assert client.get("/report").text == "report #1"
    assert client.get("/report").text == "report #1"
    with app.app_context():
        assert (square(3), square(3), square(4)) == (9, 9, 16)
        cache.delete_memoized(square, 3)
        assert square(3) == 9
    assert calls == ["report", "square(3)", "square(4)", "square(3)"]

    backend = app.extensions["cache"][cache]
    assert isinstance(backend, KVCache) and backend.default_timeout == 120
    store = hubkv.KV("fs-lite", path=path)
    assert any(key.startswith("fc:") and "report" in key for key in store.keys())
    ttl = store.ttl(next(key for key in store.keys() if "report" in key))
    assert ttl is not None and 100 < ttl <= 120

    with app.app_context():
        cache.clear()
    assert store.keys() == []
    assert client.get("/report").text == "report #5"


def test_flask_session_cachelib_type_keeps_sessions_in_the_store(tmp_path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="tests",
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=KVCache(store, key_prefix="web:"),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=10),
    )
    Session(app)

    @app.get("/visit")
    def visit() -> dict[str, Any]:
        session["visits"] = session.get("visits", 0) + 1
        return {"visits": session["visits"]}

    @app.get("/logout")
    def logout() -> str:
        session.clear()
        return "bye"

    alice, bob = app.test_client(), app.test_client()
    assert [alice.get("/visit").get_json()["visits"] for _ in range(3)] == [1, 2, 3]
    assert bob.get("/visit").get_json()["visits"] == 1

    keys = store.keys("web:session:")
    assert len(keys) == 2
    ttl = store.ttl(keys[0])
    assert ttl is not None and 500 < ttl <= 600

    alice.get("/logout")
    assert len(store.keys("web:session:")) == 1
    assert alice.get("/visit").get_json()["visits"] == 1
