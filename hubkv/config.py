"""Configuration: which driver, with which options.

Resolved when a store is created. Each layer is a whole configuration; the
first layer that names a driver wins, and the driver's own defaults fill in
the options it does not give:

1. arguments to ``KV(...)`` / ``hubkv.configure(...)``;
2. ``HUBKV_DRIVER`` with ``HUBKV_<OPTION>`` environment variables
   (``HUBKV_PATH=data/app.sqlite3``);
3. the ``[tool.hubkv]`` table of the nearest ``pyproject.toml`` (relative
   ``path`` options are relative to that file);
4. host credentials in the environment (e.g. Upstash's on Vercel);
5. fs-lite at ``.data/kv.sqlite3`` under the current directory.

The ``hubkv`` logger says at INFO level which driver was chosen and why.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .drivers import HOST_DRIVERS, available, driver_class
from .drivers.base import Driver
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from .store import KV

__all__ = ["Resolved", "resolve", "find_pyproject", "STORE_OPTIONS", "open_spec"]

log = logging.getLogger("hubkv")

#: Options the store itself takes, on top of the driver's.
STORE_OPTIONS: dict[str, type] = {"read_only": bool, "max_value_bytes": int}
DEFAULT_DRIVER = "fs-lite"
#: Largest encoded value by default: 25 MiB, Cloudflare's limit, on every driver.
DEFAULT_MAX_VALUE_BYTES = 25 * 1024 * 1024
_ENV_PREFIX = "HUBKV_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Resolved:
    """The outcome of configuration: a ready driver and the store options."""

    driver: Driver
    read_only: bool
    max_value_bytes: int
    reason: str


def resolve(
    driver: str | Driver | None,
    options: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Resolved:
    """Resolve ``driver`` and ``options`` (the arguments layer) into a driver.

    Store options given as arguments (``read_only``, ``max_value_bytes``)
    apply whichever layer names the driver.
    """
    env = os.environ if environ is None else environ
    options = dict(options)
    store_options = {name: options.pop(name) for name in STORE_OPTIONS if name in options}

    if isinstance(driver, Driver):
        if options:
            raise ConfigError(
                f"options {sorted(options)} can't apply to a driver instance; "
                "pass them to the driver's constructor"
            )
        reason = "a driver instance was passed"
    else:
        name, chosen, reason, base = _choose(driver, options, env, cwd)
        layer_store_options = {k: chosen.pop(k) for k in STORE_OPTIONS if k in chosen}
        store_options = {**layer_store_options, **store_options}

    read_only = _coerce("read_only", store_options.get("read_only", False), bool)
    instance = (
        driver
        if isinstance(driver, Driver)
        else build_driver(name, chosen, base, read_only=read_only)
    )
    max_value_bytes = _coerce(
        "max_value_bytes", store_options.get("max_value_bytes", DEFAULT_MAX_VALUE_BYTES), int
    )
    if max_value_bytes <= 0:
        raise ConfigError(
            f"max_value_bytes must be a positive number of bytes, got {max_value_bytes}"
        )
    log.info("hubkv: using %s (%s): %s", instance.name, instance.describe(), reason)
    return Resolved(instance, bool(read_only), int(max_value_bytes), reason)


def build_driver(
    name: str, options: Mapping[str, Any], base: Path | None = None, *, read_only: bool = False
) -> Driver:
    """Create driver ``name`` with ``options``, checked against its signature.

    String values (from the environment) are converted to the annotated type;
    a relative ``path`` is taken relative to ``base`` when given. With
    ``read_only``, a driver that takes a ``read_only`` option gets it, to open
    its storage read-only (the store refuses writes either way).
    """
    cls = driver_class(name)
    accepted = driver_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = sorted(set(accepted) | set(STORE_OPTIONS))
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for driver {name!r}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    kwargs = {key: _coerce(key, value, accepted[key]) for key, value in options.items()}
    if (
        base is not None
        and isinstance(kwargs.get("path"), str)
        and not os.path.isabs(kwargs["path"])
    ):
        kwargs["path"] = str(base / kwargs["path"])
    if read_only and "read_only" in accepted:
        kwargs["read_only"] = True
    return cls(**kwargs)


def driver_options(cls: type[Driver]) -> dict[str, Any]:
    """The options of a driver class: its ``__init__`` keyword parameters and types."""
    hints = typing.get_type_hints(cls.__init__)
    params = inspect.signature(cls.__init__).parameters
    return {
        name: hints.get(name, Any)
        for name, param in params.items()
        if name != "self" and param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)
    }


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (the current directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_pyproject_table(path: Path) -> dict[str, Any]:
    """The ``[tool.hubkv]`` table of ``path`` (empty if it has none)."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"can't read [tool.hubkv] from {path}: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("hubkv", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.hubkv] in {path} must be a table")
    return table


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def open_spec(
    spec: str,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> KV:
    """The store that ``spec`` names: a profile, a driver, or a driver with options.

    ``spec`` is one of:

    - a profile name: the ``[tool.hubkv.profiles.NAME]`` table of the nearest
      ``pyproject.toml`` (``driver = "..."`` plus options; relative ``path``
      options are relative to that file, and ``${VAR}`` in a string option is
      replaced by the environment variable ``VAR``, so tokens stay out of the
      file);
    - a driver name (``"memory"``, ``"upstash"``): options from the host's
      environment variables, as ``KV()`` would find them;
    - ``DRIVER:NAME=VALUE,NAME=VALUE``: a driver with options (on top of
      those from the environment), e.g. ``fs-lite:path=data/app.sqlite3``.
      Values can't contain commas; use a profile for those (and for tokens,
      which a command line would show to other users of the machine).

    A profile name wins over a driver name of the same spelling (``memory:``,
    with a colon, always names the driver). Store
    options (``read_only``, ``max_value_bytes``) are accepted everywhere.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "app.sqlite3")
    >>> store = open_spec(f"fs-lite:path={path},read_only=true")
    >>> store.driver.name, store.is_read_only
    ('fs-lite', True)
    >>> open_spec("memory").driver.name
    'memory'
    """
    from .store import KV

    env = os.environ if environ is None else environ
    name, options, base = _spec_layer(spec, env, cwd)
    store_options = {key: options.pop(key) for key in STORE_OPTIONS if key in options}
    read_only = _coerce("read_only", store_options.get("read_only", False), bool)
    return KV(build_driver(name, options, base, read_only=read_only), **store_options)


def _spec_layer(
    spec: str, env: Mapping[str, str], cwd: Path | None
) -> tuple[str, dict[str, Any], Path | None]:
    """(driver name, options, base folder for relative paths) of a store SPEC.

    Error messages name the driver and option names only: option values may
    be secrets.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            "a store SPEC is a profile name, a driver name, or DRIVER:NAME=VALUE,...; got "
            + ("an empty string" if isinstance(spec, str) else type(spec).__name__)
        )
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if not colon:
        pyproject = find_pyproject(cwd)
        profiles = _profiles(pyproject) if pyproject is not None else {}
        if name in profiles:
            assert pyproject is not None
            return _profile_layer(name, profiles[name], pyproject, env)
        if name not in available():
            where = f"[tool.hubkv.profiles] of {pyproject}" if pyproject else "no pyproject.toml"
            raise ConfigError(
                f"unknown store {name!r}: not a profile ({where}) nor a driver "
                f"(valid drivers: {', '.join(available())}); "
                "give DRIVER:NAME=VALUE for a driver with options"
            )
    options = _host_options(name, env)
    for item in rest.split(","):
        if not item.strip():
            continue
        option, equals, value = item.partition("=")
        if not equals or not option.strip():
            raise ConfigError(
                f"store SPEC for driver {name!r}: options are NAME=VALUE separated by commas, "
                "e.g. fs-lite:path=data/app.sqlite3,timeout=5"
            )
        options[option.strip()] = value
    return name, options, None


def _host_options(name: str, env: Mapping[str, str]) -> dict[str, Any]:
    found = driver_class(name).from_environment(env)
    return dict(found[0]) if found is not None else {}


def _profiles(pyproject: Path) -> dict[str, Any]:
    profiles = read_pyproject_table(pyproject).get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"[tool.hubkv.profiles] in {pyproject} must be a table of tables")
    return profiles


def _profile_layer(
    name: str, table: Any, pyproject: Path, env: Mapping[str, str]
) -> tuple[str, dict[str, Any], Path | None]:
    where = f"[tool.hubkv.profiles.{name}] in {pyproject}"
    if not isinstance(table, dict) or not isinstance(table.get("driver"), str):
        raise ConfigError(f'{where} must be a table with driver = "NAME" and the driver\'s options')
    options = {
        key: _expand_env(value, env, f"{where}, option {key}") if isinstance(value, str) else value
        for key, value in table.items()
        if key != "driver"
    }
    return table["driver"], options, pyproject.parent


def _expand_env(value: str, env: Mapping[str, str], where: str) -> str:
    """``value`` with each ``${VAR}`` replaced by the environment variable ``VAR``."""

    def replace(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in env:
            raise ConfigError(
                f"{where} uses ${{{variable}}} but the environment variable {variable} is not set; "
                "set it, or write the value in the profile"
            )
        return env[variable]

    return _ENV_REFERENCE.sub(replace, value)


def _choose(
    driver: str | None, options: dict[str, Any], env: Mapping[str, str], cwd: Path | None
) -> tuple[str, dict[str, Any], str, Path | None]:
    """(driver name, options, reason, base folder for relative paths)."""
    if driver is not None:
        if not isinstance(driver, str):
            raise ConfigError(
                f"driver must be a name (str) or a Driver, not {type(driver).__name__}"
            )
        return driver, options, "named in code", None
    if options:
        raise ConfigError(
            f"options {sorted(options)} were given without a driver; "
            "name it too, e.g. KV('fs-lite', path='data/app.sqlite3')"
        )
    env_driver = env.get(_ENV_PREFIX + "DRIVER")
    env_options = {
        key[len(_ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(_ENV_PREFIX) and key != _ENV_PREFIX + "DRIVER"
    }
    if env_driver:
        return env_driver, env_options, "HUBKV_DRIVER is set", None
    if env_options:
        # Options with no driver would be silently ignored: say so instead.
        names = ", ".join(_ENV_PREFIX + name.upper() for name in sorted(env_options))
        raise ConfigError(
            f"{names} set but HUBKV_DRIVER is not; set HUBKV_DRIVER too "
            "(e.g. HUBKV_DRIVER=fs-lite), or unset them"
        )
    pyproject = find_pyproject(cwd)
    if pyproject is not None:
        table = read_pyproject_table(pyproject)
        if "driver" in table:
            table_options = {k: v for k, v in table.items() if k not in ("driver", "profiles")}
            return (
                str(table["driver"]),
                table_options,
                f"[tool.hubkv] in {pyproject}",
                pyproject.parent,
            )
    for name in HOST_DRIVERS:
        found = driver_class(name).from_environment(env)
        if found is not None:
            host_options, why = found
            return name, host_options, why, None
    return DEFAULT_DRIVER, {}, "the default: no driver configured", None


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """``value`` as ``kind``; strings (from the environment or TOML) are converted.

    Numbers must be finite, and whole for ``int`` options (``1.0`` is taken,
    ``1.5`` refused); ``bool`` options take only booleans or their spellings.
    """
    if value is None and _allows_none(kind):
        return value
    if (kind is str or str in typing.get_args(kind)) and not isinstance(value, (str, os.PathLike)):
        # Not the value itself: it may be a token or a URL with a password in it.
        raise ConfigError(f"option {name} must be a string, not {type(value).__name__}")
    target = _plain_type(kind)
    if target is None or target is str:
        return value
    if target is bool and isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"option {name} must be true or false (1/0, yes/no), got {value!r}")
    if target is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"option {name} must be true or false, got {value!r}")
        return value
    what = "a whole number" if target is int else "a number"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"option {name} must be {what}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"option {name} must be {what}, got {value!r}")
    if target is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"option {name} must be {what}, got {value!r}")
        return int(value)
    return float(value)


def _allows_none(kind: Any) -> bool:
    return type(None) in typing.get_args(kind)


def _plain_type(kind: Any) -> type | None:
    """``int`` for ``int`` or ``int | None``; ``None`` when there is no single plain type."""
    if kind in (str, int, float, bool):
        return typing.cast(type, kind)
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if len(args) == 1 and args[0] in (str, int, float, bool):
        return typing.cast(type, args[0])
    return None
