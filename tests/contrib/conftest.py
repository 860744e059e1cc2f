"""Fixtures of the framework integration tests (Flask, Django, cachelib, gunicorn)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import hubkv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(relative: str, module_name: str) -> ModuleType:
    """Import ``examples/<relative>`` as ``module_name`` (examples are not packages)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _reset_default_store() -> Iterator[None]:
    """Integrations re-point ``hubkv.kv``; put it back to "not configured" after each test."""
    yield
    hubkv.kv._replace(None)  # type: ignore[attr-defined]
