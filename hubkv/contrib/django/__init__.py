"""Django integration: an app that configures hubkv, and a cache backend.

::

    INSTALLED_APPS = [..., "hubkv.contrib.django"]
    HUBKV = {"driver": "fs-lite", "path": BASE_DIR / "data" / "kv.sqlite3"}
    CACHES = {"default": {"BACKEND": "hubkv.contrib.django.KVCache"}}

``from hubkv import kv`` then works in every view (see
:class:`~hubkv.contrib.django.apps.HubKVConfig`), and the cache
(:class:`~hubkv.contrib.django.cache.KVCache`) keeps its entries in the same
store under ``django-cache:``.
"""

from __future__ import annotations

from .cache import KVCache

__all__ = ["KVCache"]
