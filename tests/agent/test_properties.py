"""Hypothesis: hostile tool calls never reach outside the scope, and always get an answer.

Keys are built from traversal pieces (``..``, ``/``, ``\\``), prefixes and
siblings of the scope, Unicode look-alikes (fullwidth dots and slashes, the
two-dot leader, a fullwidth colon), invisible and control characters, lone
surrogates and oversized text; arguments also take wrong types, JSON text,
huge and deeply nested values (JSON text up to 5000 levels deep) and non-JSON
Python objects.
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hubkv
from hubkv.agent import KVCapability

from .conftest import INSIDE, NEIGHBOURS, SCOPE, RecordingDriver, fill

ERROR_TYPES = {
    "unknown_tool",
    "invalid_arguments",
    "invalid_key",
    "invalid_value",
    "not_found",
    "value_too_large",
    "read_only",
    "not_allowed",
    "limit_exceeded",
    "storage_error",
}
TOOLS = ["kv_get", "kv_get_many", "kv_list_keys", "kv_has", "kv_set", "kv_delete", "kv_clear"]
PIECES = [
    "..",
    ".",
    "/",
    "\\",
    ":",
    SCOPE,
    "users:",
    "users:4",
    "users:42",
    "users:420:",
    "0:secret",
    "secret",
    "profile",
    "notes:1",
    "\u2025",  # two dot leader
    "\u2024",  # one dot leader
    "\uff0e",  # fullwidth full stop
    "\uff0f",  # fullwidth solidus
    "\uff1a",  # fullwidth colon
    "\u2215",  # division slash
    "\u200b",  # zero width space
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\x00",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\ud800",  # lone surrogate
    "e\u0301",
    "\u00e9",
    "%2e%2e",
    "*",
    "%",
    "'",
    " ",
]

hostile_text = st.one_of(
    st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=8).map("".join),
    st.text(max_size=20),
    st.integers(490, 530).map(lambda n: "k" * n),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


odd_values = st.one_of(
    st.integers(0, 3000).map(lambda n: "x" * n),  # around max_value_bytes=2048
    st.integers(60, 70).map(_nested),
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            b"raw",
            {1, 2},
            (1, 2),
            datetime.date(2026, 12, 3),
            object(),
            {1: "int key"},
            [float("-inf")],
        ]
    ),
)
any_argument = st.one_of(
    hostile_text,
    st.lists(hostile_text, max_size=5),
    json_values,
    odd_values,
    st.integers(-5, 200),
    st.floats(),
)
argument_names = st.sampled_from(
    ["key", "keys", "value", "prefix", "cursor", "limit", "ttl_seconds", "as", ""]
)
argument_maps = st.dictionaries(argument_names, any_argument, max_size=4)
arguments = st.one_of(
    argument_maps,
    argument_maps.map(lambda args: json.dumps(args, default=repr)),
    st.none(),
    any_argument,
)
odd_names = st.one_of(
    st.sampled_from(["kv_GET", "get", "kv_get ", "", "kv_", "kv_set\x00", "kv_clear_all"]),
    st.text(max_size=10),
    st.none(),
    st.integers(),
)
key_like = st.one_of(
    hostile_text, st.sampled_from(["profile", "prefs", "notes:1", "notes:", "new", "n:2"])
)
values = st.one_of(json_values, odd_values)
SHAPED = {
    "kv_get": st.fixed_dictionaries({"key": key_like}),
    "kv_has": st.fixed_dictionaries({"key": key_like}),
    "kv_delete": st.fixed_dictionaries({"key": key_like}),
    "kv_get_many": st.fixed_dictionaries({"keys": st.lists(key_like, max_size=7)}),
    "kv_list_keys": st.fixed_dictionaries(
        {},
        optional={
            "prefix": key_like,
            "cursor": key_like | st.none(),
            "limit": st.integers(-1, 8) | st.none(),
        },
    ),
    "kv_set": st.fixed_dictionaries(
        {"key": key_like, "value": values},
        optional={"ttl_seconds": st.none() | st.floats() | st.integers(-1, 10**10)},
    ),
    "kv_clear": st.fixed_dictionaries({"prefix": key_like}),
}


@st.composite
def deep_json_text(draw: st.DrawFn) -> str:
    """JSON text nesting up to 5000 levels: the arguments, or one argument, of a call.

    Decoding fails past Python's recursion limit (1000, but Hypothesis raises
    it to 2048 while a test runs); less deep text decodes into values nested
    deeper than any check allows, which must still be answered (and described).
    """
    depth = draw(
        st.integers(60, 70)
        | st.integers(250, 300)
        | st.integers(900, 1100)
        | st.integers(2500, 5000)
    )
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    deep = opener * depth + draw(st.sampled_from(["0", '"profile"', ""])) + closer * depth
    if opener == "[" and draw(st.booleans()):
        return deep  # the arguments themselves
    argument = draw(argument_names)
    return '{"key": "profile", ' + json.dumps(argument) + ": " + deep + "}"


@st.composite
def tool_calls(draw: st.DrawFn) -> tuple[Any, Any]:
    """Mostly real tool names with arguments of the right shape and hostile content."""
    roll = draw(st.integers(0, 9))
    if roll >= 8:
        return draw(odd_names), draw(arguments)
    if roll == 7:
        return draw(st.sampled_from(TOOLS)), draw(deep_json_text())
    name = draw(st.sampled_from(TOOLS))
    if draw(st.integers(0, 9)) >= 7:
        return name, draw(arguments)
    shaped = draw(SHAPED[name])
    if draw(st.integers(0, 9)) == 0:
        return name, json.dumps(shaped, default=repr)  # as OpenAI sends arguments
    return name, shaped


modes = st.sampled_from(
    [
        {},
        {"writable": True},
        {"writable": True, "allow_clear": True},
    ]
)
calls = st.lists(tool_calls(), min_size=1, max_size=6)

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)


def check_answer(result: object) -> None:
    """A result the model can always be handed: JSON with ok, or ok false and an error."""
    assert isinstance(result, dict)
    json.dumps(result, allow_nan=False)
    msgspec.json.encode(result)  # what the MCP server sends
    assert type(result["ok"]) is bool
    event("ok" if result["ok"] else result["error"]["type"])
    if not result["ok"]:
        assert set(result) == {"ok", "error"}
        assert result["error"]["type"] in ERROR_TYPES
        assert isinstance(result["error"]["message"], str) and result["error"]["message"]


@SETTINGS
@given(mode=modes, calls=calls)
def test_hostile_calls_stay_in_scope_and_get_answers(
    mode: dict[str, bool], calls: list[tuple[Any, Any]]
) -> None:
    driver = RecordingDriver()
    store = hubkv.KV(driver)
    fill(store)
    driver.forget()
    kv = KVCapability(store, SCOPE, max_value_bytes=2048, max_keys_per_page=5, **mode)
    for name, args in calls:
        check_answer(kv.call(name, args))
    # Nothing outside the scope was read, listed or written ...
    outside = [key for key in driver.seen if not key.startswith(SCOPE)]
    assert outside == []
    # ... and the data outside it is exactly as it was.
    for key, why in NEIGHBOURS.items():
        assert store.get(key) == f"not yours: {why}"
    if not mode:
        assert driver.writes == []
        assert {key: store.get(SCOPE + key) for key in INSIDE} == INSIDE


@SETTINGS
@given(key=hostile_text, value=json_values)
def test_an_accepted_key_lands_under_the_scope(key: str, value: Any) -> None:
    store = hubkv.KV("memory")
    fill(store)
    kv = KVCapability(store, SCOPE, writable=True)
    result = kv.call("kv_set", {"key": key, "value": value})
    check_answer(result)
    if result["ok"]:
        assert store.get(SCOPE + key) == value
        assert kv.call("kv_get", {"key": key}) == {"ok": True, "key": key, "value": value}
        normal = unicodedata.normalize("NFKC", key)
        assert not normal.startswith(("/", "\\"))
        assert not {".", ".."} & set(re.split(r"[:/\\]", normal))
    else:
        assert result["error"]["type"] in {"invalid_key", "invalid_value"}
        assert store.keys(SCOPE) == sorted(SCOPE + k for k in INSIDE)


@settings(max_examples=100, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ab:z0é", min_size=1, max_size=6), max_size=30),
    limit=st.integers(1, 7),
)
def test_pages_list_every_key_once_in_order(keys: set[str], limit: int) -> None:
    store = hubkv.KV("memory")
    kv = KVCapability(store, SCOPE, writable=True, max_keys_per_page=7)
    accepted = {key for key in keys if kv.call("kv_set", {"key": key, "value": 0})["ok"]}
    listed: list[str] = []
    cursor = None
    while True:
        page = kv.call("kv_list_keys", {"limit": limit, "cursor": cursor})
        assert len(page["keys"]) <= limit
        listed += page["keys"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == sorted(accepted)


@settings(max_examples=100, deadline=None)
@given(mode=modes, name=st.sampled_from(TOOLS), text=deep_json_text())
def test_deeply_nested_json_text_gets_an_answer(
    mode: dict[str, bool], name: str, text: str
) -> None:
    store = hubkv.KV("memory")
    fill(store)
    kv = KVCapability(store, SCOPE, **mode)
    result = kv.call(name, text)
    check_answer(result)
    if text.count("[") + text.count("{") > 250:  # no argument may nest that deep
        assert result["error"]["type"] in {
            "invalid_arguments",
            "invalid_value",
            "read_only",
            "not_allowed",
        }
    assert store.keys(SCOPE) == sorted(SCOPE + key for key in INSIDE)
