"""Reliability and security tests: soak, faults, fuzzing, secrets.

The shared driver fixtures (``case`` over every driver, ``store``, the
``<driver>_case`` fixtures) are re-exported from ``tests/drivers`` so the
fuzz tests run against every driver the suite knows, as drivers land.

``--soak-seconds`` (or ``HUBKV_SOAK_SECONDS``; the option is registered by
:mod:`tests.reliability.soak_option`, a plugin of ``tests/conftest.py``, so it
works from any directory) sizes the soak tests: a few seconds by default, as
in CI; longer for a real soak::

    python3 -m pytest tests/reliability -k soak --soak-seconds 300

At the end of a run the figures (operations held, faults injected, bad
inputs tried, keys lost) are printed in the terminal summary.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.drivers.conftest import *  # noqa: F403 - the shared driver fixtures

#: Figures gathered by the tests of this folder, printed at the end of the run.
FIGURES: Counter[str] = Counter()


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    """How long a soak test runs (``--soak-seconds``)."""
    return float(request.config.getoption("--soak-seconds"))


@pytest.fixture
def figures() -> Counter[str]:
    """Add counts to the figures printed at the end of the run."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("hubkv reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value:,}")
