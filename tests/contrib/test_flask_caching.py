"""Flask-Caching building KVCache subclasses through ``KVCache.factory``.

Flask-Caching calls a ``CACHE_TYPE`` whose import path contains "cachelib"
(``hubkv.contrib.cachelib.KVCache``) like a cachelib class; any other path,
such as this module's, gets its backend convention ``(app, config, args,
kwargs)``. This module's name must therefore not contain "cachelib".
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_caching import Cache

import hubkv
from hubkv.contrib.cachelib import KVCache

APP_CACHE = f"{__name__}.AppCache"


class AppCache(KVCache):
    """An application's own cache class, at an import path of its own."""


def test_a_subclass_elsewhere_is_built_with_the_flask_caching_settings(tmp_path: Path) -> None:
    assert "cachelib" not in APP_CACHE
    path = str(tmp_path / "kv.sqlite3")
    store = hubkv.KV("fs-lite", path=path)
    store.set("other:keep", "not the cache's")
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE=APP_CACHE,
        CACHE_KEY_PREFIX="app-cache:",
        CACHE_DEFAULT_TIMEOUT=120,
        CACHE_OPTIONS={"driver": "fs-lite", "path": path},
    )
    cache = Cache(app)
    calls: list[str] = []

    @app.get("/report")
    @cache.cached()
    def report() -> str:
        calls.append("report")
        return f"report #{len(calls)}"

    client = app.test_client()
    assert client.get("/report").text == "report #1"
    assert client.get("/report").text == "report #1"

    backend = app.extensions["cache"][cache]
    assert type(backend) is AppCache
    assert (backend.key_prefix, backend.default_timeout) == ("app-cache:", 120)
    cached = store.keys("app-cache:")
    assert len(cached) == 1 and "report" in cached[0]
    ttl = store.ttl(cached[0])
    assert ttl is not None and 100 < ttl <= 120

    with app.app_context():
        cache.clear()
    assert store.keys() == ["other:keep"]
    assert client.get("/report").text == "report #2"


def test_cache_options_and_args_reach_the_subclass() -> None:
    store = hubkv.KV("memory")
    app = Flask(__name__)
    # CACHE_KEY_PREFIX is left at Flask-Caching's default ("flask_cache_") ...
    app.config.update(CACHE_TYPE=APP_CACHE, CACHE_ARGS=[store])
    default = Cache(app)
    # ... or overridden by a key_prefix in CACHE_OPTIONS, the backend's own options.
    explicit = Cache(
        app,
        config={
            "CACHE_TYPE": APP_CACHE,
            "CACHE_ARGS": [store],
            "CACHE_KEY_PREFIX": "ignored:",
            "CACHE_OPTIONS": {"key_prefix": "mine:", "default_timeout": 0},
        },
    )
    first, second = app.extensions["cache"][default], app.extensions["cache"][explicit]
    assert (first.store, first.key_prefix, first.default_timeout) == (store, "flask_cache_", 300)
    assert (second.store, second.key_prefix, second.default_timeout) == (store, "mine:", 0)
    with app.app_context():
        default.set("a", 1)
        explicit.set("b", 2)
    assert store.keys() == ["flask_cache_a", "mine:b"]
    assert store.ttl("mine:b") is None


def test_kvcache_is_still_called_like_any_class() -> None:
    cache = AppCache(hubkv.KV("memory"), key_prefix="c:", default_timeout=5)
    assert (type(cache), cache.key_prefix, cache.default_timeout) == (AppCache, "c:", 5)
    assert isinstance(KVCache.factory(Flask(__name__), {}, ["memory"], {}), KVCache)
