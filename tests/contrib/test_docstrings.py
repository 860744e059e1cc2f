"""The examples in the integrations' docstrings run and say what they show."""

from __future__ import annotations

import pytest

from tests.test_docstrings import test_docstring_examples as check_docstring_examples


@pytest.mark.parametrize("module", ["_common", "flask", "cachelib", "django.cache"])
def test_integration_docstring_examples(module: str) -> None:
    check_docstring_examples(f"hubkv.contrib.{module}")
