"""The examples in the public docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "hubkv",
    "hubkv.store",
    "hubkv.codec",
    "hubkv.errors",
    "hubkv.drivers",
    "hubkv.drivers.sqlite",
    "hubkv.drivers.memory",
    "hubkv.agent",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_import_stays_light() -> None:
    """``import hubkv`` must not pull in HTTP or Redis clients."""
    import subprocess
    import sys

    code = "import sys, hubkv; hubkv.KV('memory'); print(sorted(m for m in sys.modules if m in ('requests', 'redis', 'urllib3')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
