"""Fixtures of the framework integration tests (Flask, Django, cachelib, gunicorn)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


class Point:
    """A picklable object of our own, for the cache backends' round trips."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def run_in_threads(work: Callable[[int], object], threads: int) -> None:
    """Run ``work(0)``, ..., ``work(threads - 1)`` at the same time; re-raise any failure."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))


@pytest.fixture(autouse=True)
def _reset_default_store() -> Iterator[None]:
    """Integrations re-point ``hubkv.kv``; put it back to "not configured" after each test."""
    yield
    hubkv.kv._replace(None)  # type: ignore[attr-defined]
