"""The Django app and hubkv.contrib.django.KVCache, against Django's documented cache semantics.

Each semantic test also runs on Django's own LocMemCache ("reference"): the
expectations are Django's, not ours. Sessions and the per-view cache go
through Django's test client (django.test), and the example project runs its
own tests with Django's test runner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tests-only",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF="tests.contrib.django_urls",
    INSTALLED_APPS=["django.contrib.sessions", "hubkv.contrib.django"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    HUBKV={"driver": "memory"},
    CACHES={"default": {"BACKEND": "hubkv.contrib.django.KVCache", "TIMEOUT": 60}},
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    DATABASES={},
    USE_TZ=True,
)
django.setup()

from django.apps import apps  # noqa: E402
from django.core.cache import CacheKeyWarning, caches  # noqa: E402
from django.core.cache.backends.base import BaseCache  # noqa: E402
from django.core.cache.backends.locmem import LocMemCache  # noqa: E402
from django.test import SimpleTestCase, override_settings  # noqa: E402

import hubkv  # noqa: E402
from hubkv import kv  # noqa: E402
from hubkv.contrib.django import KVCache  # noqa: E402

from .conftest import EXAMPLES, Point  # noqa: E402

Make = Callable[..., BaseCache]


@pytest.fixture(autouse=True)
def _hubkv_from_settings() -> None:
    """What the app does at startup, before each test: a fresh memory store from HUBKV."""
    apps.get_app_config("hubkv").ready()


@pytest.fixture(params=["reference", "kv-memory", "kv-fs-lite"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """make(**params) -> an empty cache of the parametrised kind, from CACHES-style params."""
    if request.param == "reference":
        name = f"test-{request.node.name}"

        def make_locmem(**params: Any) -> BaseCache:
            return LocMemCache(name, params)

        LocMemCache(name, {}).clear()
        return make_locmem
    store = (
        hubkv.KV("memory")
        if request.param == "kv-memory"
        else hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    )

    def make_kv(**params: Any) -> BaseCache:
        return KVCache("", {**params, "OPTIONS": {"driver": store, **params.get("OPTIONS", {})}})

    return make_kv


@pytest.fixture
def cache(make: Make) -> BaseCache:
    return make()


def test_get_set_round_trip_python_objects(cache: BaseCache) -> None:
    values = [{"a": [1]}, (1, 2), {3}, Decimal("1.10"), dt.date(2026, 12, 3), Point(1, 2), None]
    assert cache.get("missing") is None
    assert cache.get("missing", "fallback") == "fallback"
    for n, value in enumerate(values):
        cache.set(f"k{n}", value)
    assert [cache.get(f"k{n}", "fallback") for n in range(len(values))] == values


def test_timeout_zero_and_negative_expire_at_once(cache: BaseCache) -> None:
    cache.set("a", 1)
    cache.set("a", 2, timeout=0)
    cache.set("b", 1, timeout=-1)
    cache.set_many({"c": 1}, timeout=0)

    assert cache.get_many(["a", "b", "c"]) == {}
    assert cache.has_key("a") is False


def test_timeouts_expire(make: Make) -> None:
    cache = make(TIMEOUT=60)
    cache.set("default", 1)
    cache.set("short", 1, timeout=0.4)
    cache.set("forever", 1, timeout=None)
    cache.set_many({"many-short": 1}, timeout=0.4)
    cache.add("added", 1, timeout=0.4)
    cache.set("touched", 1, timeout=0.4)
    cache.touch("touched", 60)
    cache.set("counter", 1, timeout=0.4)
    cache.incr("counter")
    time.sleep(0.6)

    present = cache.get_many(["default", "short", "forever", "many-short", "added", "touched"])
    assert sorted(present) == ["default", "forever", "touched"]
    assert cache.get("counter") is None  # incr keeps the expiry


def test_timeout_none_in_settings_means_forever(make: Make) -> None:
    cache = make(TIMEOUT=None)
    cache.set("a", 1)
    assert cache.get("a") == 1
    if isinstance(cache, KVCache):
        assert cache.store.ttl("django-cache::1:a") is None


def test_add_only_if_absent(cache: BaseCache) -> None:
    assert cache.add("a", 1) is True
    assert cache.add("a", 2) is False
    assert cache.get("a") == 1
    # timeout=0: stored and expired at once, so add reports success.
    assert cache.add("zero", 1, timeout=0) is True
    assert cache.has_key("zero") is False


def test_get_or_set(cache: BaseCache) -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return 42

    assert cache.get_or_set("a", compute) == 42
    assert cache.get_or_set("a", compute) == 42
    assert calls == [1]
    assert cache.get_or_set("b", "plain") == "plain"
    assert cache.get_or_set("c", None) is None


def test_touch(cache: BaseCache) -> None:
    assert cache.touch("missing") is False
    cache.set("a", 1)
    assert cache.touch("a", None) is True
    assert cache.get("a") == 1
    assert cache.touch("a", 0) is True
    assert cache.get("a") is None


def test_delete_has_key_and_many(cache: BaseCache) -> None:
    assert cache.set_many({"a": 1, "b": 2, "c": 3}) == []
    assert cache.get_many(["c", "missing", "a"]) == {"c": 3, "a": 1}
    assert cache.has_key("a") is True
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    cache.delete_many(["b", "missing"])
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}
    cache.set("none", None)
    assert cache.has_key("none") is True


def test_incr_and_decr(cache: BaseCache) -> None:
    with pytest.raises(ValueError, match="not found"):
        cache.incr("missing")
    with pytest.raises(ValueError, match="not found"):
        cache.decr("missing")
    cache.set("n", 10)
    assert cache.incr("n") == 11
    assert cache.incr("n", 10) == 21
    assert cache.decr("n", 5) == 16
    assert cache.incr("n", -20) == -4
    assert cache.get("n") == -4
    cache.set("text", "x")
    with pytest.raises(TypeError):
        cache.incr("text")
    assert cache.get("text") == "x"


def test_versions(make: Make) -> None:
    cache = make(VERSION=3)
    cache.set("a", "v3")
    cache.set("a", "v1", version=1)

    assert cache.get("a") == "v3"
    assert cache.get("a", version=1) == "v1"
    assert cache.get("a", version=2) is None
    assert cache.incr_version("a") == 4
    assert cache.get("a") is None
    assert cache.get("a", version=4) == "v3"
    assert cache.decr_version("a", version=4) == 3
    assert cache.get("a") == "v3"


def test_key_prefix_and_key_function_separate_caches(make: Make) -> None:
    first, second = make(KEY_PREFIX="one"), make(KEY_PREFIX="two")
    custom = make(KEY_FUNCTION=lambda key, prefix, version: f"custom/{key}")
    first.set("a", 1)
    custom.set("a", "c")

    assert second.get("a") is None
    assert first.get("a") == 1
    assert custom.get("a") == "c"
    assert custom.make_key("a") == "custom/a"


def test_clear(cache: BaseCache) -> None:
    cache.set_many({"a": 1, "b": 2})
    cache.clear()
    assert cache.get_many(["a", "b"]) == {}


def test_memcached_unfriendly_keys_warn_but_work(cache: BaseCache) -> None:
    keys = ["with space", "x" * 300, "ctl\x01char"]
    for n, key in enumerate(keys):
        with pytest.warns(CacheKeyWarning):
            cache.set(key, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        assert [cache.get(key) for key in keys] == [0, 1, 2]


def test_async_api(cache: BaseCache) -> None:
    async def scenario() -> Any:
        await cache.aset("a", 1)
        return await cache.aget("a"), await cache.aadd("a", 2), await cache.aincr("a")

    assert asyncio.run(scenario()) == (1, False, 2)


def test_close_leaves_the_cache_usable(cache: BaseCache) -> None:
    cache.set("a", 1)
    cache.close()
    assert cache.get("a") == 1


# -- hubkv specifics -----------------------------------------------------------


def test_keys_hubkv_refuses_are_hashed_and_distinct() -> None:
    store = hubkv.KV("memory")
    cache = KVCache("", {"OPTIONS": {"driver": store}, "KEY_FUNCTION": lambda k, p, v: k})
    keys = [".", "..", "x" * 600, "x" * 601, "nul\x00", "\ud800", "é" * 300, "#sha256:00"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        for n, key in enumerate(keys):
            cache.set(key, n)
        assert [cache.get(key) for key in keys] == list(range(len(keys)))
        assert cache.get_many(keys) == {key: n for n, key in enumerate(keys)}
        cache.delete_many(keys[:2])
        assert cache.get(".") is None and cache.get("x" * 600) == 2
    assert len(store.keys()) == len(keys) - 2


def test_entries_live_under_location_and_clear_spares_other_keys(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.sqlite3")
    store = hubkv.KV("fs-lite", path=path)
    store.set("settings", {"keep": True})
    params = {"OPTIONS": {"driver": "fs-lite", "path": path}, "TIMEOUT": 60}
    default, other = KVCache("", params), KVCache("pages:", params)

    default.set("a", 1)
    other.set("a", 2)

    assert store.keys() == ["django-cache::1:a", "pages::1:a", "settings"]
    ttl = store.ttl("django-cache::1:a")
    assert ttl is not None and 50 < ttl <= 60
    default.clear()
    assert store.keys() == ["pages::1:a", "settings"]
    assert other.get("a") == 2


def test_options_without_driver_use_the_default_store() -> None:
    cache = caches["default"]
    cache.set("a", 1)
    assert cache.store is kv
    assert kv.keys() == ["django-cache::1:a"]
    assert KVCache("", {"OPTIONS": {"MAX_ENTRIES": 10, "CULL_FREQUENCY": 2}}).store is kv


def test_bad_options_raise_config_error() -> None:
    with pytest.raises(hubkv.ConfigError, match="unknown option"):
        KVCache("", {"OPTIONS": {"driver": "memory", "colour": "red"}})
    with pytest.raises(hubkv.ConfigError, match="prefix"):
        KVCache("p" * 500, {})


def test_app_configures_hubkv_from_settings_hubkv(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.sqlite3")
    with override_settings(HUBKV={"driver": "fs-lite", "path": path}):
        apps.get_app_config("hubkv").ready()
        kv.set("flag", "on")
    assert hubkv.KV("fs-lite", path=path).get("flag") == "on"
    with (
        override_settings(HUBKV=["fs-lite"]),
        pytest.raises(hubkv.ConfigError, match="settings.HUBKV must be a dict"),
    ):
        apps.get_app_config("hubkv").ready()


# -- through Django's test client ------------------------------------------------


class RequestTests(SimpleTestCase):
    """Sessions on the cache backend and the per-view cache, as Django serves them."""

    def setUp(self) -> None:
        apps.get_app_config("hubkv").ready()
        caches["default"].clear()

    def test_views_read_the_store_from_settings(self) -> None:
        kv.set("flag", "on")
        self.assertEqual(self.client.get("/flag").json(), {"flag": "on"})

    def test_sessions_live_in_the_cache(self) -> None:
        counts = [self.client.get("/visit").json()["visits"] for _ in range(3)]
        self.assertEqual(counts, [1, 2, 3])
        other = self.client_class()
        self.assertEqual(other.get("/visit").json()["visits"], 1)

        session_key = self.client.get("/visit").json()["key"]
        stored = f"django-cache::1:django.contrib.sessions.cache{session_key}"
        self.assertIn(stored, kv.keys())
        self.assertEqual(len(kv.keys("django-cache::1:django.contrib.sessions.cache")), 2)

        self.client.get("/logout")
        self.assertNotIn(stored, kv.keys())
        self.assertEqual(self.client.get("/visit").json()["visits"], 1)

    def test_per_view_cache(self) -> None:
        first = self.client.get("/report")
        second = self.client.get("/report")
        other_query = self.client.get("/report?page=2")

        self.assertEqual(first.content, second.content)
        self.assertNotEqual(first.content, other_query.content)
        self.assertIn("max-age=60", first["Cache-Control"])
        self.assertTrue(kv.keys("django-cache::1:views.decorators.cache.cache_page"))
        caches["default"].clear()
        self.assertNotEqual(self.client.get("/report").content, first.content)


# -- the example project -----------------------------------------------------------


def test_example_project_passes_its_tests_under_djangos_runner(tmp_path: Path) -> None:
    project = EXAMPLES / "django_settings"
    env = {
        **os.environ,
        "KV_PATH": str(tmp_path / "kv.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "--verbosity", "2"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    assert ran is not None and int(ran.group(1)) >= 4, output
    assert output.rstrip().endswith("OK"), output
