"""Fixtures shared by the whole suite.

Each driver's test servers (real redis-server, Cloudflare's workerd, ...) live
in ``tests/standins/`` and are loaded here as plugins.
"""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.standins.redis_server",
    "tests.standins.upstash_rest",
    "tests.standins.faulty_http",
    "tests.standins.cloudflare_kv",
    "tests.reliability.soak_option",
]
