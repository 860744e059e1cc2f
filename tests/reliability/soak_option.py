"""The ``--soak-seconds`` option, registered for the whole suite.

It lives in a plugin (listed in ``tests/conftest.py``) rather than in
``tests/reliability/conftest.py``: pytest only accepts options from plugins
and from the conftest files it loads at start-up, and a run of ``pytest`` or
``pytest tests`` would otherwise reject the flag.
"""

from __future__ import annotations

import os

import pytest

#: Seconds each soak test runs by default (CI): long enough to mix every
#: operation many times, short enough for a quick suite.
DEFAULT_SOAK_SECONDS = 3.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=float(os.environ.get("HUBKV_SOAK_SECONDS", DEFAULT_SOAK_SECONDS)),
        help="how long each soak test runs, in seconds (default: 3, or HUBKV_SOAK_SECONDS)",
    )
