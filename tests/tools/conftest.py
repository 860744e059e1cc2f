"""Fixtures and helpers for the transfer tests.

The shared driver suite's cases are imported, so every driver that joins
``tests/drivers`` (remote ones included) joins the round trips here too.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hubkv

from ..drivers.conftest import *  # noqa: F403 - the ``case`` fixture and every ``*_case``

#: Seconds an expiry time may move through a few transfers (Cloudflare keeps whole seconds).
TTL_SLACK = 3.0

SAMPLE_VALUES: list[Any] = [
    {"theme": "system", "sizes": [1, 2, 3]},
    "plain text",
    "ünïcødé 🎉",
    42,
    -1.5,
    True,
    None,
    [],
    {"nested": {"deep": [{"x": None}]}},
    "",
]


def populate(store: hubkv.KV, count: int, prefix: str = "k:") -> dict[str, Any]:
    """Write ``count`` keys (a third with a one-hour TTL, a seventh with two hours)."""
    written: dict[str, Any] = {}
    for ttl in (None, 3600, 7200):
        batch = {
            f"{prefix}{i:06d}": SAMPLE_VALUES[i % len(SAMPLE_VALUES)]
            for i in range(count)
            if _ttl_of(i) == ttl
        }
        store.set_many(batch, ttl=ttl)
        written.update(batch)
    return written


def _ttl_of(i: int) -> int | None:
    if i % 3 == 0:
        return 3600
    if i % 7 == 0:
        return 7200
    return None


def snapshot(store: hubkv.KV, prefix: str = "") -> dict[str, tuple[Any, float | None]]:
    """Every key under ``prefix`` with its value and expiry time (``time.time()`` based)."""
    keys = store.keys(prefix)
    values = store.get_many(keys)
    return {key: (values[key], _expiry(store.ttl(key))) for key in keys}


def _expiry(ttl: float | None) -> float | None:
    return None if ttl is None else time.time() + ttl


def assert_same_data(
    got: dict[str, tuple[Any, float | None]], expected: dict[str, tuple[Any, float | None]]
) -> None:
    """Same keys and values; expiry times equal up to :data:`TTL_SLACK` (``None`` stays)."""
    assert sorted(got) == sorted(expected)
    for key, (value, expires) in expected.items():
        got_value, got_expires = got[key]
        assert got_value == value, key
        if expires is None:
            assert got_expires is None, key
        else:
            assert got_expires is not None, key
            assert math.isclose(got_expires, expires, abs_tol=TTL_SLACK), (
                key,
                got_expires - expires,
            )


@pytest.fixture
def hubkv_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m hubkv ARGS`` in ``tmp_path``, isolated from host credentials."""
    env = cli_env()

    def run(
        *args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hubkv", *args],
            cwd=tmp_path,
            env={**env, **(extra_env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def cli_env() -> dict[str, str]:
    """The environment for hubkv subprocesses: this one, minus host credentials."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUBKV_", "UPSTASH_", "KV_", "REDIS_", "CLOUDFLARE_"))
    }
