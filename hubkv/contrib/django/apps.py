"""The Django app: configures ``hubkv.kv`` from ``settings.HUBKV`` at startup."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]

from .._common import configure_from_setting

__all__ = ["HubKVConfig"]


class HubKVConfig(AppConfig):  # type: ignore[misc]
    """``INSTALLED_APPS = [..., "hubkv.contrib.django"]`` uses this config.

    ``settings.HUBKV`` is a dict: ``driver`` plus that driver's options, e.g.
    ``{"driver": "fs-lite", "path": BASE_DIR / "data" / "kv.sqlite3"}``.
    Without it hubkv resolves its store as usual (``HUBKV_*`` environment
    variables, ``[tool.hubkv]`` in ``pyproject.toml``, else fs-lite at
    ``.data/kv.sqlite3``). The store opens lazily (per thread and per process,
    so it is safe before a server forks) and is closed when the process exits.
    """

    name = "hubkv.contrib.django"
    label = "hubkv"
    verbose_name = "hubkv"

    def ready(self) -> None:
        configure_from_setting(getattr(settings, "HUBKV", None), "settings.HUBKV")
