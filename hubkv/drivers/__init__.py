"""The driver registry: names to driver classes.

Built-in drivers are imported only when first used, so ``import hubkv`` stays
fast and a remote driver's HTTP stack is loaded only by apps that use it.
Third-party drivers register with :func:`register` or through the
``hubkv.drivers`` entry-point group::

    [project.entry-points."hubkv.drivers"]
    my-driver = "my_package.module:MyDriver"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import Driver

__all__ = ["Driver", "HOST_DRIVERS", "available", "driver_class", "register"]

# name -> "module:Class" (imported on first use) or the class itself.
_registry: dict[str, str | type[Driver]] = {
    "fs-lite": "hubkv.drivers.sqlite:SQLiteDriver",
    "memory": "hubkv.drivers.memory:MemoryDriver",
    "upstash": "hubkv.drivers.upstash:UpstashDriver",
    "redis": "hubkv.drivers.redis:RedisDriver",
    "cloudflare-kv-binding": "hubkv.drivers.cloudflare:CloudflareKVDriver",
    "cloudflare-kv-http": "hubkv.drivers.cloudflare:CloudflareKVDriver",
}

#: Drivers whose host credentials are looked for in the environment when
#: nothing else names a driver, in this order.
HOST_DRIVERS: tuple[str, ...] = ("upstash", "cloudflare-kv-binding")

_entry_points_loaded = False


def register(name: str, driver: str | type[Driver]) -> None:
    """Make ``driver`` (a class, or ``"module:Class"``) available as ``name``.

    >>> from hubkv.drivers.memory import MemoryDriver
    >>> register("scratch", MemoryDriver)
    >>> "scratch" in available()
    True
    """
    _registry[name] = driver


def available() -> list[str]:
    """Every registered driver name, sorted."""
    _load_entry_points()
    return sorted(_registry)


def driver_class(name: str) -> type[Driver]:
    """The class registered as ``name``; :class:`ConfigError` if there is none."""
    if name not in _registry:
        _load_entry_points()
    target = _registry.get(name)
    if target is None:
        raise ConfigError(f"unknown driver {name!r}; valid drivers: {', '.join(available())}")
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), class_name)
        except ImportError as exc:
            raise ConfigError(
                f"driver {name!r} needs a package that is not installed ({exc.name}); "
                f"install it, e.g. pip install 'hubkv[{name}]'"
            ) from exc
        if not (isinstance(target, type) and issubclass(target, Driver)):
            raise ConfigError(f"driver {name!r} ({_registry[name]}) is not a hubkv Driver")
        _registry[name] = target
    return target


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group="hubkv.drivers"):
        _registry.setdefault(entry.name, entry.value)
