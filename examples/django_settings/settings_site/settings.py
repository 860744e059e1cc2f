"""Settings of the example: hubkv holds the app's data, the cache and the sessions."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.sessions",
    "hubkv.contrib.django",  # configures `from hubkv import kv` from HUBKV below
]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
ROOT_URLCONF = "settings_site.urls"
WSGI_APPLICATION = "settings_site.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}  # no SQL database: everything is in hubkv
USE_TZ = True

# The store: a driver and its options (here fs-lite; KV_PATH moves the file).
HUBKV = {
    "driver": "fs-lite",
    "path": os.environ.get("KV_PATH", str(BASE_DIR / ".data" / "kv.sqlite3")),
}

# Django's cache in the same store, under "django-cache:" (no OPTIONS: the HUBKV store).
CACHES = {"default": {"BACKEND": "hubkv.contrib.django.KVCache", "TIMEOUT": 300}}

# Sessions in that cache.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
