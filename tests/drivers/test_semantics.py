"""The semantics every driver shares, case by case (see README "Semantics")."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fractions
import math
import uuid
from typing import Any, NamedTuple

import msgspec
import pytest

import hubkv
from hubkv import (
    InvalidKeyError,
    InvalidTTLError,
    KVError,
    ReadOnlyError,
    SerializationError,
    ValueTooLargeError,
)

from .conftest import DriverCase

# -- keys ---------------------------------------------------------------------

VALID_KEYS = [
    "a",
    "settings",
    "users:42:profile",
    "with space",
    "a/b/../c",
    "?query=1&x",
    "CaSe",
    "case",
    "*?[]%_\\",
    "...",
    ".hidden",
    "ünïcødé",
    "日本語",
    "emoji 🎉",
    "x" * 512,
    "é" * 256,
    "\u00a0nbsp",
    "\ue000private",
    "\U0010ffff",
]

INVALID_KEYS = [
    "",
    ".",
    "..",
    "x" * 513,
    "é" * 257,
    "tab\there",
    "new\nline",
    "nul\x00",
    "del\x7f",
    "c1\x85",
    "\x9f",
    "lone \ud800 surrogate",
    "\udfff",
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys_round_trip_exactly(store: hubkv.KV, key: str) -> None:
    store.set(key, {"k": key})
    assert store.get(key) == {"k": key}
    assert store.has(key)
    assert store.keys() == [key]
    store.delete(key)
    assert not store.has(key)


def test_keys_are_not_normalised(store: hubkv.KV) -> None:
    for key in ["Case", "case", "a/b", "a//b", "a/./b", "x?y", "x"]:
        store.set(key, key)
    assert store.keys() == sorted(["Case", "case", "a/b", "a//b", "a/./b", "x?y", "x"])
    assert [store.get(k) for k in store.keys()] == store.keys()


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_on_every_operation(store: hubkv.KV, key: str) -> None:
    store.set("sentinel", 1)
    operations = [
        lambda: store.set(key, 1),
        lambda: store.get(key),
        lambda: store.has(key),
        lambda: store.delete(key),
        lambda: store.ttl(key),
        lambda: store.get_many(["sentinel", key]),
        lambda: store.set_many({"fine": 1, key: 2}),
        lambda: store.delete_many(["sentinel", key]),
        lambda: store[key],
    ]
    for operation in operations:
        with pytest.raises(InvalidKeyError):
            operation()
    assert store.keys() == ["sentinel"]


@pytest.mark.parametrize("key", [None, 1, b"bytes", ("t",), 1.5])
def test_non_str_keys_are_refused(store: hubkv.KV, key: Any) -> None:
    with pytest.raises(InvalidKeyError, match="must be a str"):
        store.set(key, 1)
    with pytest.raises(InvalidKeyError):
        store.get(key)
    assert store.keys() == []


def test_invalid_key_error_is_a_value_error() -> None:
    assert issubclass(InvalidKeyError, ValueError)
    assert issubclass(InvalidKeyError, KVError)


@pytest.mark.parametrize("prefix", ["x" * 513, "a\x00", "\ud800", 5, None])
def test_invalid_prefixes_are_refused(store: hubkv.KV, prefix: Any) -> None:
    store.set("a", 1)
    with pytest.raises(InvalidKeyError):
        store.keys(prefix)
    with pytest.raises(InvalidKeyError):
        store.clear(prefix)
    assert store.keys() == ["a"]


# -- prefixes -----------------------------------------------------------------


def test_prefix_is_a_plain_string_prefix(store: hubkv.KV) -> None:
    store.set_many({"foo": 1, "foo:a": 2, "foobar": 3, "fo": 4, "goo": 5})
    assert store.keys("foo") == ["foo", "foo:a", "foobar"]
    assert store.keys("foo:") == ["foo:a"]
    assert store.keys("") == ["fo", "foo", "foo:a", "foobar", "goo"]
    assert store.keys("zzz") == []


@pytest.mark.parametrize("wild", ["*", "?", "[", "]", "%", "_", "\\", "[a-z]", "\\*"])
def test_wildcard_characters_in_prefixes_are_literal(store: hubkv.KV, wild: str) -> None:
    literal = f"p{wild}"
    store.set_many({literal + ":1": 1, "pa:1": 2, "pz:1": 3, "p:1": 4, "p" + wild + wild: 5})
    expected = sorted(k for k in store.keys() if k.startswith(literal))
    assert store.keys(literal) == expected
    assert all(key.startswith(literal) for key in expected) and expected
    assert store.clear(literal) == len(expected)
    assert all(not key.startswith(literal) for key in store.keys())
    assert len(store.keys()) == 5 - len(expected)


def test_keys_are_sorted_by_code_point(store: hubkv.KV) -> None:
    keys = ["b", "a", "B", "é", "z", "日", "🎉", "\uffff", "a:b", "a-b", "\U0010ffff", "\ue000"]
    store.set_many({key: 0 for key in keys})
    assert store.keys() == sorted(keys)


def test_prefix_at_the_top_of_unicode(store: hubkv.KV) -> None:
    top = "\U0010ffff"
    store.set_many({top: 1, top + "a": 2, "\ud7ff": 3, "\ue000": 4, "z": 5})
    assert store.keys(top) == [top, top + "a"]
    assert store.keys("\ud7ff") == ["\ud7ff"]
    assert store.clear(top) == 2
    assert store.keys() == ["z", "\ud7ff", "\ue000"]


def test_clear_removes_exactly_what_keys_lists(store: hubkv.KV) -> None:
    store.set_many({"cache:1": 1, "cache:2": 2, "cache": 0, "cachex": 3, "other": 4})
    listed = store.keys("cache:")
    assert store.clear("cache:") == len(listed) == 2
    assert store.keys() == ["cache", "cachex", "other"]
    assert store.clear("") == 3
    assert store.keys() == []
    assert store.clear() == 0


# -- values -------------------------------------------------------------------

LOSSLESS_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**53 + 1,
    -(2**63),
    2**64 - 1,
    0.0,
    -0.0,
    1.5,
    0.1,
    1e300,
    -1e-300,
    5e-324,
    "",
    "text",
    "123",
    "true",
    "false",
    "null",
    '"x"',
    "[1]",
    '{"a": 1}',
    " 1 ",
    "1e5",
    "NaN",
    "ünïcødé 🎉",
    "\x00 control \x1f inside values is fine",
    [],
    {},
    [1, "two", 3.0, None, True, [], {}],
    {"nested": {"list": [1, 2, {"deep": [None]}]}, "": "empty key", "日本": "ok"},
    {"theme": "system"},
]


@pytest.mark.parametrize("value", LOSSLESS_VALUES, ids=repr)
def test_json_values_round_trip_losslessly(store: hubkv.KV, value: Any) -> None:
    store.set("value", value)
    got = store.get("value")
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)
    assert store.has("value")


def test_none_is_a_value(store: hubkv.KV) -> None:
    store.set("nothing", None)
    assert store.has("nothing")
    assert store.get("nothing", "default") is None
    assert store["nothing"] is None
    assert "nothing" in store
    assert store.keys() == ["nothing"]


def test_tuples_and_sets_come_back_as_lists(store: hubkv.KV) -> None:
    store.set("t", (1, 2, (3,)))
    store.set("s", {3})
    assert store.get("t") == [1, 2, [3]]
    assert store.get("s") == [3]


class Color(enum.Enum):
    RED = "red"


class Profile(msgspec.Struct):
    name: str
    age: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Pair(NamedTuple):
    first: float
    second: float


TYPED: list[tuple[Any, Any, Any]] = [
    (datetime.datetime(2026, 12, 3, 18, 0, tzinfo=datetime.timezone.utc), datetime.datetime, str),
    (datetime.date(2026, 12, 3), datetime.date, str),
    (uuid.UUID(int=42), uuid.UUID, str),
    (b"\x00\xffbytes", bytes, str),
    (Color.RED, Color, str),
    (Profile("ada", 36), Profile, dict),
    (Point(1.0, 2.5), Point, dict),
    ([1, 2, 3], list[int], list),
    ((1, "a"), tuple[int, str], list),
    ({"a": 1}, dict[str, int], dict),
]


@pytest.mark.parametrize(("value", "type_", "plain"), TYPED, ids=lambda v: repr(v)[:30])
def test_typed_get_restores_rich_values(
    store: hubkv.KV, value: Any, type_: Any, plain: type
) -> None:
    store.set("rich", value)
    assert type(store.get("rich")) is plain
    assert store.get("rich", type=type_) == value
    assert store.get_many(["rich"], type=type_) == {"rich": value}


def test_typed_get_of_a_mismatch_raises_serialization_error(store: hubkv.KV) -> None:
    store.set("profile", {"name": "ada"})
    with pytest.raises(SerializationError, match="profile"):
        store.get("profile", type=Profile)
    with pytest.raises(SerializationError):
        store.get("profile", type=int)
    assert store.get("missing", "default", type=Profile) == "default"


@pytest.mark.parametrize(
    "bad",
    [
        object(),
        {1, object()},
        {"a": lambda: None},
        float("nan"),
        float("inf"),
        -float("inf"),
        [1, [2, [float("nan")]]],
        {"deep": {"er": float("-inf")}},
        Point(float("nan"), 1.0),
        Profile("x", 1).__class__,
        (1, float("nan")),
        [(float("inf"),)],
        Pair(float("nan"), 1),
        Point((1.0, float("-inf")), 1.0),  # type: ignore[arg-type]
        (datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(seconds=30))),),
    ],
    ids=repr,
)
def test_unserializable_values_write_nothing(store: hubkv.KV, bad: Any) -> None:
    store.set("key", "before")
    with pytest.raises(SerializationError) as info:
        store.set("key", bad)
    assert isinstance(info.value, TypeError)
    with pytest.raises(SerializationError):
        store.set_many({"other": 1, "key": bad})
    assert store.get("key") == "before"
    assert store.keys() == ["key"]


def test_huge_ints_round_trip(store: hubkv.KV) -> None:
    for value in (2**64, -(2**200), 10**300):
        store.set("big", value)
        assert store.get("big") == value


def test_oversized_values_are_refused_before_any_write(case: DriverCase) -> None:
    store = case.make(max_value_bytes=1000)
    store.clear()
    store.set("fits", "x" * 990)
    with pytest.raises(ValueTooLargeError, match="1,000"):
        store.set("big", "x" * 1000)
    with pytest.raises(ValueTooLargeError):
        store.set_many({"a": 1, "big": "x" * 2000})
    assert store.keys() == ["fits"]
    store.close()


def test_default_value_limit_is_25_mib(store: hubkv.KV) -> None:
    with pytest.raises(ValueTooLargeError):
        store.set("big", "x" * (25 * 1024 * 1024))
    assert store.keys() == []


# -- TTL ----------------------------------------------------------------------


def test_ttl_expires_keys_everywhere(case: DriverCase) -> None:
    store = case.make()
    store.clear()
    store.set("short", 1, ttl=case.short_ttl)
    store.set_many({"batch:1": 1, "batch:2": 2}, ttl=case.short_ttl)
    store.set("forever", 2)
    assert store.keys() == ["batch:1", "batch:2", "forever", "short"]
    remaining = store.ttl("short")
    assert remaining is not None and 0 < remaining <= case.short_ttl
    case.wait(case.short_ttl + 0.2)
    assert store.get("short") is None
    assert not store.has("short")
    assert "short" not in store
    assert store.keys() == ["forever"]
    assert store.get_many(["short", "batch:1", "forever"]) == {"forever": 2}
    with pytest.raises(KeyError):
        store.ttl("short")
    assert store.clear() == 1
    store.close()


def test_overwrite_without_ttl_makes_the_key_permanent(case: DriverCase) -> None:
    store = case.make()
    store.clear()
    store.set("k", 1, ttl=case.short_ttl)
    store.set("k", 2)
    assert store.ttl("k") is None
    case.wait(case.short_ttl + 0.2)
    assert store.get("k") == 2
    store.close()


def test_ttl_of_a_permanent_and_a_missing_key(store: hubkv.KV) -> None:
    store.set("k", 1)
    assert store.ttl("k") is None
    with pytest.raises(KeyError):
        store.ttl("missing")
    store.set("long", 1, ttl=3600)
    remaining = store.ttl("long")
    assert remaining is not None and 3500 < remaining <= 3600


class Seconds(int):
    pass


@pytest.mark.parametrize("ttl", [Seconds(3600), fractions.Fraction(7201, 2), 3600.0])
def test_ttls_of_any_real_number_type(store: hubkv.KV, ttl: Any) -> None:
    store.set("k", 1, ttl=ttl)
    store.set_many({"a": 1}, ttl=ttl)
    for key in ("k", "a"):
        remaining = store.ttl(key)
        assert remaining is not None and 3500 < remaining <= float(ttl)


@pytest.mark.parametrize(
    "ttl", [0, -1, -0.5, float("nan"), float("inf"), True, False, "10", [1], 1e12, 0j]
)
def test_invalid_ttls_write_nothing(store: hubkv.KV, ttl: Any) -> None:
    with pytest.raises(InvalidTTLError) as info:
        store.set("k", 1, ttl=ttl)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KVError)
    with pytest.raises(InvalidTTLError):
        store.set_many({"a": 1}, ttl=ttl)
    assert store.keys() == []


# -- batches ------------------------------------------------------------------


def test_get_many_returns_present_keys_in_the_order_asked(store: hubkv.KV) -> None:
    store.set_many({"a": 1, "b": None, "c": 3})
    result = store.get_many(["c", "missing", "a", "b", "a"])
    assert list(result.items()) == [("c", 3), ("a", 1), ("b", None)]
    assert store.get_many([]) == {}
    assert store.get_many(iter(["a"])) == {"a": 1}


def test_set_many_takes_mappings_and_pairs(store: hubkv.KV) -> None:
    store.set_many([("a", 1), ("b", 2), ("a", 3)])
    assert store.get_many(["a", "b"]) == {"a": 3, "b": 2}
    store.set_many({})
    store.set_many(x for x in [("c", [1])])
    assert store.keys() == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [[("a", 1), ("b",)], [("a", 1), "abc"], [("a", 1), 5], [("a", 1, 2)]])
def test_set_many_of_items_that_are_not_pairs_writes_nothing(store: hubkv.KV, bad: Any) -> None:
    with pytest.raises(InvalidKeyError, match="pairs"):
        store.set_many(bad)
    assert store.keys() == []


def test_keys_that_look_like_numbers_in_batches(store: hubkv.KV) -> None:
    keys = ["0", "42", "-1", "007", "1e3", "4294967294", "4294967295", "0.5"]
    store.set_many({key: key for key in keys})
    assert store.get_many(keys) == {key: key for key in keys}
    assert store.keys() == sorted(keys)


def test_large_batches(store: hubkv.KV) -> None:
    items = {f"bulk:{i:05d}": {"i": i} for i in range(1200)}
    store.set_many(items)
    assert store.keys("bulk:") == sorted(items)
    assert store.get_many(items) == items
    store.delete_many(list(items)[:700])
    assert len(store.keys("bulk:")) == 500
    assert store.clear("bulk:") == 500


def test_delete_many_ignores_missing_and_duplicates(store: hubkv.KV) -> None:
    store.set_many({"a": 1, "b": 2, "c": 3})
    store.delete_many(["a", "a", "missing", "c"])
    assert store.keys() == ["b"]
    store.delete_many([])


def test_single_str_is_not_taken_as_a_key_list(store: hubkv.KV) -> None:
    with pytest.raises(InvalidKeyError):
        store.get_many("abc")
    with pytest.raises(InvalidKeyError):
        store.delete_many("abc")


# -- views --------------------------------------------------------------------


def test_views_are_relative_and_nest(store: hubkv.KV) -> None:
    users = store.prefixed("users:")
    ada = users.prefixed("42:")
    ada.set("profile", {"name": "ada"})
    ada["prefs"] = {"lang": "en"}
    store.set("users:7:profile", {"name": "bob"})
    store.set("other", 1)
    assert ada.prefix == "users:42:"
    assert ada.keys() == ["prefs", "profile"]
    assert users.keys("42:") == ["42:prefs", "42:profile"]
    assert store.keys("users:42:") == ["users:42:prefs", "users:42:profile"]
    assert ada.get("profile") == {"name": "ada"} == store.get("users:42:profile")
    assert ada.get_many(["prefs", "nope"]) == {"prefs": {"lang": "en"}}
    assert sorted(ada.iter_keys()) == ["prefs", "profile"]
    assert ada.clear() == 2
    assert store.keys() == ["other", "users:7:profile"]


def test_views_validate_relative_and_full_keys(store: hubkv.KV) -> None:
    view = store.prefixed("p:")
    with pytest.raises(InvalidKeyError):
        view.set("", 1)
    with pytest.raises(InvalidKeyError):
        view.set("x" * 511, 1)  # 513 bytes with the prefix
    with pytest.raises(InvalidKeyError):
        store.prefixed("")
    with pytest.raises(InvalidKeyError):
        store.prefixed("bad\x00")
    view.set(".", 1)  # "p:." is a valid full key
    view.set("..", 2)
    assert store.keys() == ["p:.", "p:.."]


def test_a_key_equal_to_a_views_prefix_is_outside_the_view(store: hubkv.KV) -> None:
    store.set_many({"users:42:": "parent's", "users:42:a": 1, "users:42:b": 2})
    view = store.prefixed("users:42:")
    assert view.keys() == ["a", "b"]
    assert sorted(view.iter_keys()) == ["a", "b"]
    assert view.clear() == 2
    assert store.keys() == ["users:42:"]
    assert store.get("users:42:") == "parent's"


def test_closing_a_view_leaves_the_parent_open(store: hubkv.KV) -> None:
    with store.prefixed("v:") as view:
        view.set("a", 1)
    assert store.get("v:a") == 1


def test_read_only_stores_and_views_refuse_writes_before_io(case: DriverCase) -> None:
    writer = case.make()
    writer.clear()
    writer.set("a", 1)
    for reader in (case.make(read_only=True), writer.read_only(), writer.prefixed("a").read_only()):
        assert reader.is_read_only
        for write in _writes(reader):
            with pytest.raises(ReadOnlyError):
                write()
    assert case.make(read_only=True).get("a") == 1
    assert writer.keys() == ["a"]
    assert writer.get("a") == 1


def _writes(reader: hubkv.KV) -> list[Any]:
    return [
        lambda: reader.set("a", 2),
        lambda: reader.set_many({"b": 2}),
        lambda: reader.set_many_with_ttls([("b", 2, None), ("c", 3, 60)]),
        lambda: reader.delete("a"),
        lambda: reader.delete_many(["a"]),
        lambda: reader.clear(),
        lambda: reader.__setitem__("a", 3),
        lambda: reader.__delitem__("a"),
        lambda: reader.set("\x00bad", 1),  # refused as read-only before validation
    ]


# -- mapping protocol ---------------------------------------------------------


def test_mapping_protocol(store: hubkv.KV) -> None:
    store["a"] = {"x": 1}
    assert store["a"] == {"x": 1}
    assert "a" in store and "b" not in store
    with pytest.raises(KeyError):
        store["b"]
    with pytest.raises(KeyError):
        del store["b"]
    del store["a"]
    assert store.keys() == []


def test_delete_of_a_missing_key_is_not_an_error(store: hubkv.KV) -> None:
    store.delete("never-there")
    assert store.keys() == []


def test_a_second_store_sees_the_same_data(case: DriverCase) -> None:
    first, second = case.make(), case.make()
    first.clear()
    first.set("shared", [1, 2])
    assert second.get("shared") == [1, 2]
    second.delete("shared")
    assert not first.has("shared")
    first.close()
    second.close()


def test_close_then_reuse_reopens(store: hubkv.KV) -> None:
    store.set("a", 1)
    store.close()
    assert store.get("a") == 1
    with store:
        store.set("b", 2)
    assert store.keys() == ["a", "b"]


def test_repr_names_the_driver(store: hubkv.KV, case: DriverCase) -> None:
    assert case.name in repr(store)
