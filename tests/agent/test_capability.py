"""KVCapability: tools offered, results of each tool, scope, limits, audit."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hubkv
import hubkv.agent
from hubkv.agent import KVCapability, ToolCall

from .conftest import INSIDE, NEIGHBOURS, SCOPE, RecordingDriver

READ_TOOLS = ["kv_get", "kv_get_many", "kv_list_keys", "kv_has"]


def error_type(result: dict[str, Any]) -> str:
    assert result["ok"] is False, result
    assert set(result) == {"ok", "error"}
    assert set(result["error"]) == {"type", "message"}
    assert result["error"]["message"]
    return str(result["error"]["type"])


def neighbours_untouched(store: hubkv.KV) -> bool:
    return all(store.get(key) == f"not yours: {why}" for key, why in NEIGHBOURS.items())


# -- tools offered --------------------------------------------------------


def test_read_only_by_default_offers_read_tools_only(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE)
    assert not kv.writable
    assert [tool.name for tool in kv.tools] == READ_TOOLS
    assert all(tool.read_only and not tool.destructive for tool in kv.tools)
    assert [tool["function"]["name"] for tool in kv.openai_tools()] == READ_TOOLS
    assert [tool["name"] for tool in kv.anthropic_tools()] == READ_TOOLS
    assert [tool["name"] for tool in kv.mcp_tools()] == READ_TOOLS
    assert all(tool["annotations"]["readOnlyHint"] is True for tool in kv.mcp_tools())


def test_writable_adds_set_and_delete_and_clear_only_when_enabled(store: hubkv.KV) -> None:
    writable = KVCapability(store, SCOPE, writable=True)
    assert [tool.name for tool in writable.tools] == [*READ_TOOLS, "kv_set", "kv_delete"]
    hints = {tool["name"]: tool["annotations"] for tool in writable.mcp_tools()}
    assert hints["kv_set"]["readOnlyHint"] is False
    assert hints["kv_delete"]["destructiveHint"] is True
    clearing = KVCapability(store, SCOPE, writable=True, allow_clear=True)
    assert [tool.name for tool in clearing.tools][-1] == "kv_clear"


def test_formats_carry_the_same_schema() -> None:
    kv = KVCapability(hubkv.KV("memory"), SCOPE, writable=True, namespace="memo")
    openai = {tool["function"]["name"]: tool for tool in kv.openai_tools()}
    anthropic = {tool["name"]: tool for tool in kv.anthropic_tools()}
    assert set(openai) == {"memo_get", "memo_get_many", "memo_list_keys", "memo_has"} | {
        "memo_set",
        "memo_delete",
    }
    for name, tool in openai.items():
        assert tool["type"] == "function"
        schema = tool["function"]["parameters"]
        assert schema == anthropic[name]["input_schema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema.get("required", [])) <= set(schema["properties"])
        assert tool["function"]["description"] == anthropic[name]["description"]
    assert openai["memo_set"]["function"]["parameters"]["required"] == ["key", "value"]
    assert "required" not in openai["memo_list_keys"]["function"]["parameters"]
    json.dumps(kv.openai_tools() + kv.anthropic_tools() + kv.mcp_tools())


# -- construction ------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["users:42", "users", "a:b.", "x:y-"])
def test_prefix_must_end_with_a_separator(prefix: str) -> None:
    with pytest.raises(hubkv.ConfigError, match="must end with"):
        KVCapability(hubkv.KV("memory"), prefix)


@pytest.mark.parametrize("prefix", ["", "a\x00:", 42])
def test_invalid_prefix_is_refused(prefix: Any) -> None:
    with pytest.raises(hubkv.InvalidKeyError):
        KVCapability(hubkv.KV("memory"), prefix)


def test_contradictory_or_bad_options_are_refused() -> None:
    store = hubkv.KV("memory")
    with pytest.raises(hubkv.ConfigError, match="allow_clear=True needs writable=True"):
        KVCapability(store, SCOPE, allow_clear=True)
    with pytest.raises(hubkv.ReadOnlyError, match="writable=True needs a writable store"):
        KVCapability(store.read_only(), SCOPE, writable=True)
    for option in ("max_value_bytes", "max_keys_per_page", "max_calls"):
        for bad in (0, -1, 1.5, True, "10"):
            with pytest.raises(hubkv.ConfigError, match=option):
                KVCapability(store, SCOPE, **{option: bad})
    for namespace in ("", "1kv", "kv tools", "k" * 41, "kv.x"):
        with pytest.raises(hubkv.ConfigError, match="namespace"):
            KVCapability(store, SCOPE, namespace=namespace)
    with pytest.raises(hubkv.ConfigError, match="no room"):
        KVCapability(store, "p" * 511 + ":")
    with pytest.raises(hubkv.ConfigError, match="needs a hubkv.KV"):
        KVCapability({}, SCOPE)  # type: ignore[arg-type]


def test_a_view_can_be_scoped_further(store: hubkv.KV) -> None:
    kv = KVCapability(store.prefixed("users:"), "42:")
    assert kv.scope == SCOPE
    assert kv.call("kv_get", {"key": "profile"})["value"] == INSIDE["profile"]


# -- reading ---------------------------------------------------------------


def test_get_and_has_read_relative_keys(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE)
    assert kv.call("kv_get", {"key": "profile"}) == {
        "ok": True,
        "key": "profile",
        "value": {"name": "Ada"},
    }
    assert kv.call("kv_has", {"key": "notes:1"}) == {"ok": True, "key": "notes:1", "exists": True}
    assert kv.call("kv_has", {"key": "secret"}) == {"ok": True, "key": "secret", "exists": False}
    missing = kv.call("kv_get", {"key": "secret"})
    assert error_type(missing) == "not_found"
    assert "kv_list_keys" in missing["error"]["message"]


def test_get_many_reports_missing_and_too_large(store: hubkv.KV) -> None:
    store.set(SCOPE + "big", "x" * 2000)
    kv = KVCapability(store, SCOPE, max_value_bytes=1000)
    result = kv.call("kv_get_many", {"keys": ["prefs", "nope", "big", "prefs", "profile"]})
    assert result == {
        "ok": True,
        "values": {"prefs": {"lang": "en"}, "profile": {"name": "Ada"}},
        "missing": ["nope"],
        "too_large": ["big"],
    }
    assert error_type(kv.call("kv_get", {"key": "big"})) == "value_too_large"
    assert error_type(kv.call("kv_get_many", {"keys": []})) == "invalid_arguments"
    small = KVCapability(store, SCOPE, max_keys_per_page=2)
    assert error_type(small.call("kv_get_many", {"keys": ["a", "b", "c"]})) == "invalid_arguments"


def test_list_keys_sees_only_the_scope(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE)
    assert kv.call("kv_list_keys", {}) == {
        "ok": True,
        "keys": sorted(INSIDE),
        "next_cursor": None,
    }
    assert kv.call("kv_list_keys", {"prefix": "notes:"})["keys"] == ["notes:1"]
    assert kv.call("kv_list_keys", {"prefix": "0"})["keys"] == []  # not users:420:...


def test_list_keys_pages_with_a_cursor(store: hubkv.KV) -> None:
    store.set_many({f"{SCOPE}item:{n:02}": n for n in range(23)})
    kv = KVCapability(store, SCOPE, max_keys_per_page=10)
    expected = sorted([*INSIDE, *(f"item:{n:02}" for n in range(23))])
    pages, cursor = [], None
    while True:
        arguments = {"cursor": cursor} if cursor else {}
        page = kv.call("kv_list_keys", arguments)
        pages.append(page["keys"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == page["keys"][-1]
    assert [len(page) for page in pages] == [10, 10, 6]
    assert [key for page in pages for key in page] == expected
    limited = kv.call("kv_list_keys", {"prefix": "item:", "limit": 5, "cursor": "item:03"})
    assert limited["keys"] == [f"item:{n:02}" for n in range(4, 9)]
    assert error_type(kv.call("kv_list_keys", {"limit": 11})) == "invalid_arguments"
    assert error_type(kv.call("kv_list_keys", {"limit": 0})) == "invalid_arguments"


def test_a_key_equal_to_the_scope_is_not_listed(store: hubkv.KV) -> None:
    store.set(SCOPE, "the scope itself")
    assert "" not in KVCapability(store, SCOPE).call("kv_list_keys", {})["keys"]


# -- writing -----------------------------------------------------------------


def test_set_and_delete_write_under_the_scope(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    assert kv.call("kv_set", {"key": "draft", "value": [1, "two", None]}) == {
        "ok": True,
        "key": "draft",
    }
    assert store.get(SCOPE + "draft") == [1, "two", None]
    assert kv.call("kv_set", {"key": "nothing", "value": None})["ok"]
    assert store.has(SCOPE + "nothing")
    assert kv.call("kv_set", {"key": "session", "value": 1, "ttl_seconds": 120})["ok"]
    remaining = store.ttl(SCOPE + "session")
    assert remaining is not None and 0 < remaining <= 120
    assert kv.call("kv_set", {"key": "forever", "value": 1, "ttl_seconds": None})["ok"]
    assert store.ttl(SCOPE + "forever") is None
    assert kv.call("kv_delete", {"key": "draft"}) == {"ok": True, "key": "draft"}
    assert not store.has(SCOPE + "draft")
    assert kv.call("kv_delete", {"key": "draft"})["ok"]  # missing is fine
    assert neighbours_untouched(store)


@pytest.mark.parametrize("ttl", [0, -5, "60", True, float("inf"), 1e12, [60]])
def test_bad_ttls_write_nothing(store: hubkv.KV, ttl: Any) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    assert error_type(kv.call("kv_set", {"key": "t", "value": 1, "ttl_seconds": ttl})) == (
        "invalid_arguments"
    )
    assert not store.has(SCOPE + "t")


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        (1, 2),
        b"bytes",
        float("nan"),
        {"x": float("inf")},
        {1: "int key"},
        object(),
        _nested(65),
        [hubkv.KV],
    ],
    ids=["set", "tuple", "bytes", "nan", "inf", "int-key", "object", "deep", "class"],
)
def test_only_json_values_are_written(store: hubkv.KV, value: Any) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    assert error_type(kv.call("kv_set", {"key": "v", "value": value})) == "invalid_value"
    assert not store.has(SCOPE + "v")


def test_values_over_the_limit_are_refused_before_writing(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE, writable=True, max_value_bytes=100)
    assert kv.call("kv_set", {"key": "fits", "value": "x" * 98})["ok"]  # 100 bytes as JSON
    result = kv.call("kv_set", {"key": "huge", "value": "x" * 99})
    assert error_type(result) == "value_too_large"
    assert "101 bytes" in result["error"]["message"]
    assert not store.has(SCOPE + "huge")


def test_clear_only_when_enabled_and_only_in_scope(store: hubkv.KV) -> None:
    writable = KVCapability(store, SCOPE, writable=True)
    assert error_type(writable.call("kv_clear", {"prefix": ""})) == "not_allowed"
    clearing = KVCapability(store, SCOPE, writable=True, allow_clear=True)
    assert clearing.call("kv_clear", {"prefix": "notes:"}) == {"ok": True, "removed": 1}
    assert clearing.call("kv_clear", {"prefix": ""}) == {"ok": True, "removed": 2}
    assert store.keys(SCOPE) == []
    assert neighbours_untouched(store)


def test_read_only_refuses_writes_before_any_io(
    recorded_store: hubkv.KV, recording: RecordingDriver
) -> None:
    seen: list[ToolCall] = []
    kv = KVCapability(recorded_store, SCOPE, audit=seen.append)
    for name, arguments in [
        ("kv_set", {"key": "profile", "value": "overwritten"}),
        ("kv_set", {"key": 1}),  # refused as a write before arguments are looked at
        ("kv_delete", {"key": "profile"}),
        ("kv_clear", {"prefix": ""}),
    ]:
        result = kv.call(name, arguments)
        assert error_type(result) == "read_only"
    assert recording.seen == []
    assert all(isinstance(call.error, hubkv.ReadOnlyError) for call in seen)
    assert recorded_store.get(SCOPE + "profile") == INSIDE["profile"]


# -- a model's mistakes ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "kind"),
    [
        ("kv_drop", {}, "unknown_tool"),
        ("get", {"key": "profile"}, "unknown_tool"),
        (None, {}, "unknown_tool"),
        ("kv_get", None, "invalid_arguments"),
        ("kv_get", {}, "invalid_arguments"),
        ("kv_get", {"key": None}, "invalid_arguments"),
        ("kv_get", {"key": 42}, "invalid_arguments"),
        ("kv_get", {"key": "profile", "as": "admin"}, "invalid_arguments"),
        ("kv_get", ["profile"], "invalid_arguments"),
        ("kv_get", '{"key": ', "invalid_arguments"),
        ("kv_get", '"profile"', "invalid_arguments"),
        ("kv_get", "\ud800", "invalid_arguments"),  # found by Hypothesis
        ("kv_get_many", {"keys": "profile"}, "invalid_arguments"),
        ("kv_get_many", {"keys": ["profile", 7]}, "invalid_arguments"),
        ("kv_list_keys", {"limit": "10"}, "invalid_arguments"),
        ("kv_list_keys", {"limit": 2.0}, "invalid_arguments"),
        ("kv_list_keys", {"cursor": 3}, "invalid_arguments"),
        ("kv_get", {"key": ""}, "invalid_key"),
    ],
)
def test_mistakes_are_answers(store: hubkv.KV, name: Any, arguments: Any, kind: str) -> None:
    result = KVCapability(store, SCOPE).call(name, arguments)
    assert error_type(result) == kind
    json.dumps(result)


@pytest.mark.parametrize(
    ("opener", "inner", "closer"), [("[", "", "]"), ("[", "0", "]"), ('{"a":', "0", "}")]
)
def test_values_nest_at_most_64_levels(
    store: hubkv.KV, opener: str, inner: str, closer: str
) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    for depth, ok in [(63, True), (64, True), (65, False)]:
        value = opener * depth + inner + closer * depth
        assert kv.call("kv_set", '{"key": "v", "value": ' + value + "}")["ok"] is ok, depth


@pytest.mark.parametrize("depth", [300, 1000, 100_000])
def test_deeply_nested_json_text_is_an_answer(store: hubkv.KV, depth: int) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    for opener, closer in [("[", "]"), ('{"a":', "}")]:
        deep = opener * depth + "0" + closer * depth
        for name, text in [
            ("kv_set", '{"key": "d", "value": ' + deep + "}"),
            ("kv_get", '{"key": ' + deep + "}"),
            ("kv_get_many", '{"keys": ' + deep + "}"),
            ("kv_list_keys", deep),
        ]:
            result = kv.call(name, text)
            assert error_type(result) in {"invalid_arguments", "invalid_value"}, (name, depth)
            if name == "kv_set":
                assert "nest" in result["error"]["message"]
    assert not store.has(SCOPE + "d")


@pytest.mark.parametrize("depth", [300, 1000, 100_000])
def test_deeply_nested_decoded_arguments_are_answers(store: hubkv.KV, depth: int) -> None:
    deep = _nested(depth)
    kv = KVCapability(store, SCOPE, writable=True)
    result = kv.call("kv_set", {"key": "d", "value": deep})
    assert error_type(result) == "invalid_value"
    assert "nests deeper than 64 levels" in result["error"]["message"]
    for name, arguments in [
        ("kv_get", {"key": deep}),
        ("kv_get_many", {"keys": deep}),
        ("kv_get_many", {"keys": ["profile", deep]}),
        ("kv_list_keys", {"cursor": deep}),
        ("kv_set", {"key": "d", "value": 1, "ttl_seconds": deep}),
        ("kv_get", deep),
    ]:
        result = kv.call(name, arguments)
        assert error_type(result) == "invalid_arguments", name
        assert len(result["error"]["message"]) < 300
    assert error_type(kv.call(deep, {})) == "unknown_tool"  # type: ignore[arg-type]
    assert not store.has(SCOPE + "d")


def test_unprintable_arguments_are_answers(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE)
    huge = 10**5000  # repr() refuses ints over 4300 digits
    assert error_type(kv.call("kv_get", {"key": huge})) == "invalid_arguments"
    assert error_type(kv.call("kv_get", {"key": "profile", huge: 1})) == "invalid_arguments"
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert error_type(kv.call("kv_get", {"key": cyclic})) == "invalid_arguments"


def test_arguments_may_be_json_text(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE)
    assert kv.call("kv_get", '{"key": "prefs"}')["value"] == {"lang": "en"}
    assert kv.call("kv_list_keys", "")["ok"] is False  # empty text is not JSON
    assert kv.call("kv_list_keys", b'{"prefix": "notes:"}')["keys"] == ["notes:1"]


@pytest.mark.parametrize(
    "key",
    [
        "..",
        "../users:43:secret",
        "notes:..:x",
        "a/./b",
        ".",
        "/etc/passwd",
        "\\windows",
        "users:42:profile",
        "\u2025",  # two dot leader: NFKC '..'
        "\uff0e\uff0e:x",  # fullwidth full stops
        "\uff0fprofile",  # fullwidth solidus
        "pro\u200bfile",  # zero width space
        "\u202eeliforp",  # right-to-left override
        "a\x00b",
        "a\nb",
        "a\u2028b",
        "x" * 504,  # 9 bytes of scope + 504 > 512
    ],
)
def test_hostile_keys_are_refused(store: hubkv.KV, key: str) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    for name, arguments in [
        ("kv_get", {"key": key}),
        ("kv_has", {"key": key}),
        ("kv_set", {"key": key, "value": "pwned"}),
        ("kv_delete", {"key": key}),
        ("kv_get_many", {"keys": ["profile", key]}),
    ]:
        assert error_type(kv.call(name, arguments)) == "invalid_key"
    assert neighbours_untouched(store)
    assert sorted(store.keys(SCOPE)) == sorted(SCOPE + key for key in INSIDE)


def test_longest_key_that_fits_is_accepted(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE, writable=True)
    assert kv.call("kv_set", {"key": "x" * 503, "value": 1})["ok"]
    assert error_type(kv.call("kv_list_keys", {"prefix": "../"})) == "invalid_key"


# -- limits, audit, failures -----------------------------------------------


def test_call_limit_counts_every_call(store: hubkv.KV) -> None:
    kv = KVCapability(store, SCOPE, max_calls=3)
    assert kv.remaining_calls == 3
    assert kv.call("kv_get", {"key": "profile"})["ok"]
    assert not kv.call("kv_nope", {})["ok"]
    assert kv.remaining_calls == 1
    assert kv.call("kv_has", {"key": "profile"})["ok"]
    assert kv.remaining_calls == 0
    exhausted = kv.call("kv_get", {"key": "profile"})
    assert error_type(exhausted) == "limit_exceeded"
    assert KVCapability(store, SCOPE).remaining_calls is None


def test_audit_sees_every_call_and_its_outcome(store: hubkv.KV) -> None:
    seen: list[ToolCall] = []
    kv = KVCapability(store, SCOPE, writable=True, audit=seen.append, max_calls=2)
    first = kv.call("kv_set", {"key": "a", "value": 1})
    second = kv.call("kv_get", {"key": "../x"})
    third = kv.call("kv_get", {"key": "a"})
    assert [(call.name, call.result) for call in seen] == [
        ("kv_set", first),
        ("kv_get", second),
        ("kv_get", third),
    ]
    assert seen[0].arguments == {"key": "a", "value": 1}
    assert {call.scope for call in seen} == {SCOPE}
    assert [call.error for call in seen] == [None, None, None]
    assert error_type(third) == "limit_exceeded"


def test_audit_errors_propagate() -> None:
    def audit(call: ToolCall) -> None:
        raise RuntimeError("audit log is down")

    kv = KVCapability(hubkv.KV("memory"), SCOPE, audit=audit)
    with pytest.raises(RuntimeError, match="audit log is down"):
        kv.call("kv_has", {"key": "a"})


def test_store_failures_are_answers_without_the_location(tmp_path: Path) -> None:
    path = tmp_path / "private-location-7f3a" / "kv.sqlite3"
    path.mkdir(parents=True)  # a folder where the database file should be
    seen: list[ToolCall] = []
    kv = KVCapability(hubkv.KV("fs-lite", path=str(path)), SCOPE, audit=seen.append)
    result = kv.call("kv_get", {"key": "profile"})
    assert error_type(result) == "storage_error"
    assert "DriverError" in result["error"]["message"]
    assert "private-location-7f3a" not in json.dumps(result)
    assert isinstance(seen[0].error, hubkv.DriverError)
    assert "private-location-7f3a" in str(seen[0].error)


def test_importing_the_agent_and_cli_does_not_load_mcp() -> None:
    code = (
        "import sys, hubkv, hubkv.agent, hubkv.cli\n"
        "hubkv.cli.build_parser()\n"
        "slow = {'mcp', 'mcp_types', 'anyio', 'pydantic', 'starlette', 'requests', 'httpx'}\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in slow))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_docstring_examples() -> None:
    result = doctest.testmod(hubkv.agent, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
