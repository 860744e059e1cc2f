"""Hypothesis drives every driver and a plain-Python model with the same random
operations and checks that they agree after every step."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import hubkv

from .conftest import DriverCase

# Keys from a small alphabet, so operations collide and prefixes match: the
# separator, glob and LIKE wildcards, regex and escape characters, unicode.
ALPHABET = "ab:*?[]%_\\/.é日🎉"
KEYS = st.text(ALPHABET, min_size=1, max_size=6).filter(lambda k: k not in (".", ".."))
PREFIXES = st.text(ALPHABET, max_size=3)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# Long enough never to expire during a run: expiry itself is tested case by case.
TTLS = st.none() | st.sampled_from([600, 3600.5])


class KVMachine(RuleBasedStateMachine):
    """One store, one dict; every rule does the same to both."""

    case: DriverCase

    def __init__(self) -> None:
        super().__init__()
        self.store = self.case.make()
        self.store.clear()
        self.model: dict[str, Any] = {}
        self.expiring: set[str] = set()

    def teardown(self) -> None:
        self.store.close()

    def _forget(self, key: str) -> None:
        self.model.pop(key, None)
        self.expiring.discard(key)

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self.store.set(key, value, ttl=ttl)
        self.model[key] = value
        (self.expiring.add if ttl else self.expiring.discard)(key)

    @rule(items=st.dictionaries(KEYS, VALUES, max_size=5), ttl=TTLS)
    def set_many(self, items: dict[str, Any], ttl: float | None) -> None:
        self.store.set_many(items, ttl=ttl)
        for key, value in items.items():
            self.model[key] = value
            (self.expiring.add if ttl else self.expiring.discard)(key)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        marker = object()
        assert self.store.get(key, marker) == self.model.get(key, marker)

    @rule(key=KEYS)
    def has(self, key: str) -> None:
        assert self.store.has(key) == (key in self.model)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.store.delete(key)
        self._forget(key)

    @rule(many=st.lists(KEYS, max_size=5))
    def get_many(self, many: list[str]) -> None:
        expected = {key: self.model[key] for key in dict.fromkeys(many) if key in self.model}
        assert list(self.store.get_many(many).items()) == list(expected.items())

    @rule(many=st.lists(KEYS, max_size=5))
    def delete_many(self, many: list[str]) -> None:
        self.store.delete_many(many)
        for key in many:
            self._forget(key)

    @rule(prefix=PREFIXES)
    def keys(self, prefix: str) -> None:
        assert self.store.keys(prefix) == sorted(k for k in self.model if k.startswith(prefix))

    @rule(prefix=PREFIXES)
    def clear(self, prefix: str) -> None:
        expected = [k for k in self.model if k.startswith(prefix)]
        assert self.store.clear(prefix) == len(expected)
        for key in expected:
            self._forget(key)

    @rule(prefix=st.text(ALPHABET, min_size=1, max_size=2), key=KEYS, value=VALUES)
    def view_set(self, prefix: str, key: str, value: Any) -> None:
        assume(prefix + key != "..")
        self.store.prefixed(prefix).set(key, value)
        self.model[prefix + key] = value
        self.expiring.discard(prefix + key)

    @rule(key=KEYS)
    def ttl(self, key: str) -> None:
        if key not in self.model:
            with pytest.raises(KeyError):
                self.store.ttl(key)
            return
        remaining = self.store.ttl(key)
        if key in self.expiring:
            assert remaining is not None and 0 < remaining <= 3600.5
        else:
            assert remaining is None

    @invariant()
    def same_keys(self) -> None:
        assert self.store.keys() == sorted(self.model)


@pytest.mark.parametrize("steps", [25])
def test_driver_agrees_with_the_model(case: DriverCase, steps: int) -> None:
    machine = type(f"KVMachine_{case.name}", (KVMachine,), {"case": case})
    runner = machine.TestCase
    runner.settings = settings(
        max_examples=30, stateful_step_count=steps, deadline=None, database=None
    )
    runner().runTest()


def test_model_alphabet_is_valid() -> None:
    for char in ALPHABET:
        hubkv.store.validate_key(char + char + char)
