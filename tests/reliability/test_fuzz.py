"""Hypothesis throws bad and odd input at every driver.

Each input is either stored and read back exactly (for types JSON lacks:
exactly through ``type=``) or refused with the documented error, and then
nothing was written. Validity is decided by oracles written here from the
documented rules (README "Semantics"), not by calling hubkv's own checks.

Remote drivers answer over real local servers, so they get fewer examples
(``_examples``); every driver gets every test.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hubkv
from hubkv import (
    ConfigError,
    InvalidKeyError,
    InvalidTTLError,
    KVError,
    SerializationError,
    ValueTooLargeError,
)
from hubkv.codec import MAX_DEPTH
from hubkv.config import driver_options
from hubkv.drivers import driver_class
from tests.drivers.conftest import DRIVERS, DriverCase
from tests.standins.faulty_http import everything_said
from tests.standins.redis_server import free_port

LOCAL_DRIVERS = ("memory", "fs-lite")
TEN_YEARS = 10 * 365.25 * 24 * 3600


def _examples(case: DriverCase, local: int) -> Callable[[Callable[..., None]], Any]:
    """Hypothesis settings for ``case``: ``local`` examples, a quarter over HTTP."""
    return settings(
        max_examples=local if case.name in LOCAL_DRIVERS else max(10, local // 4),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _fresh(case: DriverCase, **options: Any) -> hubkv.KV:
    store = case.make(**options)
    store.clear()
    return store


# -- oracles --------------------------------------------------------------------


def _text_is_valid(text: object) -> bool:
    """A str of at most 512 bytes of UTF-8 without control characters (Unicode
    category Cc) or lone surrogates (Cs)."""
    if not isinstance(text, str):
        return False
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        return False
    return len(text.encode("utf-8")) <= 512


def key_is_valid(key: object) -> bool:
    """The documented key rules: valid text, not empty, not "." or ".."."""
    return _text_is_valid(key) and key not in ("", ".", "..")


def prefix_is_valid(prefix: object) -> bool:
    """A prefix follows the key rules but may be empty (or "." and "..": prefixes of keys)."""
    return _text_is_valid(prefix)


def ttl_is_valid(ttl: object) -> bool:
    """int or float (not bool), finite, > 0 and at most ten years."""
    return (
        type(ttl) in (int, float)
        and math.isfinite(ttl)  # type: ignore[arg-type]
        and 0 < ttl <= TEN_YEARS  # type: ignore[operator]
    )


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0 nor True; -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- strategies ---------------------------------------------------------------

# Every code point, surrogates and controls included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
# 1- to 4-byte characters repeated to land around the 512-byte limit.
UNITS = st.sampled_from(["a", "é", "日", "🎉", "\x00", "\ud800"])
NEAR_LIMIT = st.builds(
    lambda unit, delta, tail: (
        unit * (512 // len(unit.encode("utf-8", "surrogatepass")) + delta) + tail
    ),
    UNITS,
    st.integers(-3, 2),
    st.text(ANY_CHAR, max_size=2),
)
KEYS = st.one_of(
    st.text(ANY_CHAR, max_size=12),
    st.text(ANY_CHAR, min_size=100, max_size=140),
    NEAR_LIMIT,
    st.sampled_from(["", ".", "..", "...", " ", "\u2028", "\ufeff", "\U0010ffff", "a\x7f"]),
)
NOT_STRINGS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.tuples(st.text(max_size=3)),
    st.builds(bytearray, st.binary(max_size=4)),
)
# Keys with characters that glob/LIKE/regex engines treat specially.
PREFIX_ALPHABET = "ab:*?[]%_\\/.é日🎉\ue000"
PREFIXES = st.one_of(st.text(PREFIX_ALPHABET, max_size=4), st.text(ANY_CHAR, max_size=4))
STORED_KEYS = [
    "a",
    "a:",
    "a:b",
    "a:b:c",
    "ab",
    "a%",
    "a_",
    "a*",
    "a?",
    "a[b]",
    "a\\",
    "b",
    "é",
    "é:x",
    "日本",
    "🎉",
    "\ue000",
    "\U0010ffff",
    "z" * 512,
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # any size
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, 2**53 + 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _nested(depth: int, leaf: Any, use_dicts: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if use_dicts else [value]
    return value


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Profile(msgspec.Struct):
    name: str
    tags: list[str]


# UTC offsets in whole minutes: RFC 3339 holds no more (others are refused, see below).
_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: datetime.timedelta(minutes=m))
_ODD_OFFSETS = st.timedeltas(
    min_value=datetime.timedelta(hours=-23, minutes=-59),
    max_value=datetime.timedelta(hours=23, minutes=59),
).filter(lambda offset: bool(offset % datetime.timedelta(minutes=1)))
_TIMEZONES = st.none() | st.just(datetime.timezone.utc) | st.builds(datetime.timezone, _OFFSETS)
# (value, type=) pairs of types JSON lacks; each must come back exactly through type=.
TYPED_VALUES = st.one_of(
    st.tuples(st.datetimes(timezones=_TIMEZONES), st.just(datetime.datetime)),
    st.tuples(st.dates(), st.just(datetime.date)),
    st.tuples(st.times(timezones=_TIMEZONES), st.just(datetime.time)),
    st.tuples(st.timedeltas(), st.just(datetime.timedelta)),
    st.tuples(st.uuids(), st.just(uuid.UUID)),
    st.tuples(st.decimals(allow_nan=False), st.just(decimal.Decimal)),
    st.tuples(st.binary(), st.just(bytes)),
    st.tuples(st.binary().map(bytearray), st.just(bytearray)),
    st.tuples(st.tuples(st.integers(), st.text()), st.just(tuple[int, str])),
    st.tuples(st.sets(st.integers()), st.just(set[int])),
    st.tuples(st.frozensets(st.text()), st.just(frozenset[str])),
    st.tuples(st.dictionaries(st.integers(), st.booleans()), st.just(dict[int, bool])),
    st.tuples(st.sampled_from(Color), st.just(Color)),
    st.tuples(st.sampled_from(Level), st.just(Level)),
    st.tuples(
        st.builds(Point, st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        st.just(Point),
    ),
    st.tuples(st.builds(Profile, st.text(), st.lists(st.text())), st.just(Profile)),
)
# Values JSON can't hold at all.
UNSTORABLE = st.one_of(
    st.complex_numbers(),
    st.builds(object),
    st.just(Ellipsis),
    st.just(range(3)),
    st.just(datetime.timezone.utc),
    st.dictionaries(st.tuples(st.integers()), st.integers(), min_size=1),
    st.dictionaries(st.none(), st.integers(), min_size=1),
    st.text(ANY_CHAR).filter(lambda text: any("\ud800" <= c <= "\udfff" for c in text)),
    st.builds(lambda v: [1, {"x": v}], NON_FINITE),
    st.builds(
        lambda offset, when: {"at": when.replace(tzinfo=datetime.timezone(offset))},
        _ODD_OFFSETS,
        st.datetimes(min_value=datetime.datetime(1900, 1, 2)),
    ),
)

ODD_TTLS = st.one_of(
    st.floats(),  # NaN, infinities, negative, zero, subnormal
    st.integers(),
    st.integers(min_value=int(TEN_YEARS) - 2, max_value=int(TEN_YEARS) + 2),
    st.sampled_from([True, False, "10", b"10", decimal.Decimal(5), datetime.timedelta(seconds=5)]),
    st.floats(min_value=5, max_value=TEN_YEARS),
)


# -- keys -----------------------------------------------------------------------


def test_key_oracle_agrees_with_the_documented_examples() -> None:
    from tests.drivers.test_semantics import INVALID_KEYS, VALID_KEYS

    assert all(key_is_valid(key) for key in VALID_KEYS)
    assert not any(key_is_valid(key) for key in INVALID_KEYS)


def test_any_key_is_stored_exactly_or_refused_before_writing(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)

    @_examples(case, 300)
    @given(key=KEYS)
    def check(key: str) -> None:
        if key_is_valid(key):
            figures["fuzz: valid keys stored and read back"] += 1
            store.set(key, {"k": key})
            assert store.get(key) == {"k": key}
            assert store.has(key) and key in store.keys()
            assert store.get_many([key]) == {key: {"k": key}}
            store.delete(key)
            assert not store.has(key)
            return
        figures["fuzz: bad keys refused"] += 1
        writes: list[Callable[[], object]] = [
            lambda: store.set(key, 1),
            lambda: store.set_many({"fine": 1, key: 2}),
            lambda: store.set_many([(key, 1), ("fine", 2)]),
            lambda: store.delete(key),
            lambda: store.delete_many(["fine", key]),
        ]
        reads: list[Callable[[], object]] = [
            lambda: store.get(key),
            lambda: store.has(key),
            lambda: store.ttl(key),
            lambda: store.get_many(["fine", key]),
        ]
        for call in writes + reads:
            with pytest.raises(InvalidKeyError):
                call()
        assert store.keys() == []  # nothing written, not even the valid half of a batch

    check()
    store.close()


def test_non_string_keys_are_refused(case: DriverCase, figures: Counter[str]) -> None:
    store = _fresh(case)

    @_examples(case, 60)
    @given(key=NOT_STRINGS)
    def check(key: Any) -> None:
        figures["fuzz: bad keys refused"] += 1
        for call in (
            lambda: store.set(key, 1),
            lambda: store.get(key),
            lambda: store.set_many([(key, 1)]),
            lambda: store.prefixed("p:").set(key, 1),
        ):
            with pytest.raises(InvalidKeyError):
                call()
        assert store.keys() == []

    check()
    store.close()


# -- prefixes and views ---------------------------------------------------------


def test_any_prefix_lists_exactly_the_matching_keys(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)
    store.set_many({key: key for key in STORED_KEYS})

    @_examples(case, 200)
    @given(prefix=PREFIXES)
    def check(prefix: str) -> None:
        if not prefix_is_valid(prefix):
            figures["fuzz: bad prefixes refused"] += 1
            for call in (
                lambda: store.keys(prefix),
                lambda: store.clear(prefix),
                lambda: list(store.iter_keys(prefix)),
                lambda: store.prefixed(prefix),
            ):
                with pytest.raises(InvalidKeyError):
                    call()
            return
        figures["fuzz: prefixes listed"] += 1
        expected = sorted(key for key in STORED_KEYS if key.startswith(prefix))
        assert store.keys(prefix) == expected
        assert sorted(store.iter_keys(prefix)) == expected
        if prefix:
            view = store.prefixed(prefix)
            # A key equal to the view's prefix is not in the view (its relative key is "").
            assert view.keys() == [key[len(prefix) :] for key in expected if key != prefix]

    check()
    assert store.keys() == sorted(STORED_KEYS)  # listing never changed anything
    store.close()


def test_clear_removes_exactly_the_listed_keys(case: DriverCase, figures: Counter[str]) -> None:
    store = _fresh(case)

    @_examples(case, 60)
    @given(prefix=st.text(PREFIX_ALPHABET, max_size=3))
    def check(prefix: str) -> None:
        figures["fuzz: prefixes cleared"] += 1
        store.set_many({key: 1 for key in STORED_KEYS})
        expected = [key for key in STORED_KEYS if key.startswith(prefix)]
        assert store.clear(prefix) == len(expected)
        assert store.keys() == sorted(set(STORED_KEYS) - set(expected))

    check()
    store.close()


def test_views_store_under_prefix_plus_key_or_refuse(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)

    @_examples(case, 150)
    @given(prefix=st.one_of(st.text(PREFIX_ALPHABET, min_size=1, max_size=3), NEAR_LIMIT), key=KEYS)
    def check(prefix: str, key: str) -> None:
        if not prefix_is_valid(prefix) or not prefix:
            figures["fuzz: bad prefixes refused"] += 1
            with pytest.raises(InvalidKeyError):
                store.prefixed(prefix)
            return
        view = store.prefixed(prefix)
        if key and key_is_valid(prefix + key):
            figures["fuzz: view keys stored and read back"] += 1
            view.set(key, [key])
            assert store.get(prefix + key) == [key]
            assert view.keys() == [key]
            view.delete(key)
        else:
            figures["fuzz: bad keys refused"] += 1
            with pytest.raises(InvalidKeyError):
                view.set(key, 1)
            with pytest.raises(InvalidKeyError):
                view.get(key)
        assert store.keys() == []

    check()
    store.close()


# -- values ---------------------------------------------------------------------


def test_json_values_round_trip_exactly(case: DriverCase, figures: Counter[str]) -> None:
    store = _fresh(case)

    @_examples(case, 300)
    @given(value=JSON_VALUES)
    def check(value: Any) -> None:
        figures["fuzz: values stored and read back"] += 1
        store.set("v", value)
        assert same(store.get("v"), value)
        store.set_many({"m1": value, "m2": [value]})
        got = store.get_many(["m1", "m2"])
        assert same(got["m1"], value) and same(got["m2"], [value])

    check()
    store.close()


def test_types_json_lacks_round_trip_through_type(case: DriverCase, figures: Counter[str]) -> None:
    store = _fresh(case)

    @_examples(case, 300)
    @given(pair=TYPED_VALUES)
    def check(pair: tuple[Any, Any]) -> None:
        value, kind = pair
        figures["fuzz: typed values stored and read back"] += 1
        store.set("v", value)
        back = store.get("v", type=kind)
        assert type(back) is type(value)
        assert back == value
        if isinstance(value, (datetime.datetime, datetime.time)):
            assert back.utcoffset() == value.utcoffset()

    check()
    store.close()


def test_unstorable_values_are_refused_and_the_old_value_kept(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)
    store.set("v", "old")

    @_examples(case, 150)
    @given(value=UNSTORABLE, ttl=st.none() | st.just(60))
    def check(value: Any, ttl: int | None) -> None:
        figures["fuzz: bad values refused"] += 1
        with pytest.raises(SerializationError):
            store.set("v", value, ttl=ttl)
        with pytest.raises(SerializationError):
            store.set_many({"fine": 1, "v": value})
        assert store.get("v") == "old"
        assert store.keys() == ["v"]

    check()
    store.close()


def test_nesting_is_stored_up_to_the_limit_and_refused_beyond(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)
    store.set("v", "old")

    @_examples(case, 100)
    @given(
        depth=st.one_of(st.integers(1, 1200), st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3)),
        leaf=st.sampled_from([1, "[[{", '"]}\\', None, [], {}]),
        use_dicts=st.booleans(),
    )
    def check(depth: int, leaf: Any, use_dicts: bool) -> None:
        value = _nested(depth, leaf, use_dicts)
        levels = depth + (1 if leaf in ([], {}) else 0)
        if levels <= MAX_DEPTH:
            figures["fuzz: values stored and read back"] += 1
            store.set("deep", value)
            assert store.get("deep") == value
            store.delete("deep")
        else:
            figures["fuzz: bad values refused"] += 1
            with pytest.raises(SerializationError, match="deeper than"):
                store.set("deep", value)
            assert not store.has("deep")
        assert store.get("v") == "old"

    check()
    store.close()


def test_value_size_limit_is_exact(case: DriverCase, figures: Counter[str]) -> None:
    store = _fresh(case, max_value_bytes=300)

    @_examples(case, 60)
    @given(size=st.integers(280, 320), char=st.sampled_from(["x", "é", "日", "🎉"]))
    def check(size: int, char: str) -> None:
        text = char * (size // len(char.encode()))
        encoded = len(text.encode()) + 2  # the JSON string's quotes
        if encoded <= 300:
            figures["fuzz: values stored and read back"] += 1
            store.set("s", text)
            assert store.get("s") == text
            store.delete("s")
        else:
            figures["fuzz: bad values refused"] += 1
            with pytest.raises(ValueTooLargeError):
                store.set("s", text)
            assert store.keys() == []

    check()
    store.close()


# -- TTLs -------------------------------------------------------------------------


def test_any_ttl_is_honoured_or_refused_before_writing(
    case: DriverCase, figures: Counter[str]
) -> None:
    store = _fresh(case)
    store.set("k", "old")

    @_examples(case, 200)
    @given(ttl=ODD_TTLS)
    def check(ttl: Any) -> None:
        if not ttl_is_valid(ttl):
            figures["fuzz: bad TTLs refused"] += 1
            with pytest.raises(InvalidTTLError):
                store.set("k", "new", ttl=ttl)
            with pytest.raises(InvalidTTLError):
                store.set_many({"k": "new", "other": 1}, ttl=ttl)
            assert store.get("k") == "old" and store.ttl("k") is None
            assert store.keys() == ["k"]
            return
        figures["fuzz: TTLs honoured"] += 1
        store.set("t", "x", ttl=ttl)
        if ttl >= max(case.short_ttl, 5):  # long enough not to expire before the read
            remaining = store.ttl("t")
            # Drivers round up: Redis to milliseconds; Cloudflare to whole seconds, 60 at least.
            rounding = 1.0 if case.short_ttl >= 1 else 0.001
            assert remaining is not None and 0 < remaining <= max(ttl, case.short_ttl) + rounding
            assert store.get("t") == "x"
        store.delete("t")

    check()
    store.close()


# -- configuration ---------------------------------------------------------------

OPTION_VALUES = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e999", " 2 ", "0x10", "yes", "", "1.5"]),
    st.floats(),
    st.integers(),
    st.integers(0, 5),
    st.booleans(),
    st.none(),
)
_TRUE_FALSE = {"1", "0", "true", "false", "yes", "no", "on", "off"}
# Values every driver must accept for these options (and refuse below 0).
_SURELY_FINE = {"timeout": (0.5, 100.0), "retries": (0, 5), "max_value_bytes": (1, 2**40)}


def option_verdict(name: str, kind: type, value: Any) -> bool | None:
    """Whether ``value`` must be accepted (True) or refused (False) for an option of
    type ``kind``; ``None`` when the documented rules leave it to the driver."""
    if isinstance(value, str):  # from the environment or TOML: converted by its type
        text = value.strip()
        if kind is bool:
            return text.lower() in _TRUE_FALSE
        try:
            value = kind(text)
        except ValueError:
            return False
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float)):
        return False
    if kind is bool:
        return True
    if math.isnan(value) or math.isinf(value) or value < 0:
        return False
    if kind is int and value != int(value):
        return False  # 1.5 connections or bytes: refused, not rounded
    low, high = _SURELY_FINE.get(name, (math.inf, -math.inf))
    return True if low <= value <= high else None


def _numeric_options(case: DriverCase) -> dict[str, type]:
    options = {**driver_options(driver_class(case.name)), "read_only": bool, "max_value_bytes": int}
    return {
        name: kind
        for name, kind in options.items()
        if kind in (bool, int, float) and name not in ("path", "url", "token")
    }


def test_option_values_work_or_raise_config_error(case: DriverCase, figures: Counter[str]) -> None:
    """Odd option values, from code or as environment strings, are refused with a
    ConfigError when the store is created, or give a store that works."""
    options = _numeric_options(case)
    # The store exists first: read_only=True on fs-lite refuses a missing file (a
    # DriverError, as documented), which made the test fail when hypothesis tried
    # read_only=True before any example had created the file.
    _fresh(case).close()

    @_examples(case, 200)
    @given(name=st.sampled_from(sorted(options)), value=OPTION_VALUES)
    def check(name: str, value: Any) -> None:
        verdict = option_verdict(name, options[name], value)
        try:
            store = case.make(**{name: value})
        except ConfigError:
            figures["fuzz: bad config values refused"] += 1
            assert verdict is not True, f"{name}={value!r} should be accepted"
            return
        figures["fuzz: config values accepted"] += 1
        assert verdict is not False, f"{name}={value!r} should be refused with ConfigError"
        try:
            store.get("probe")
            if not store.is_read_only:
                store.set("probe", 1)
        except KVError:  # e.g. a 0 s timeout: may fail, but typed
            assert verdict is None
        store.close()

    check()


# String options: every one of every driver (url, base_url, base, path, namespace_id,
# binding, token, ...), given odd text, URLs of every shape or values that are not
# strings. Each is accepted or refused with ConfigError - never another exception -
# and no message shows a secret: the token, a password in a URL, whether configured
# alongside or inside the fuzzed value itself. Accepted stores are used once against
# this machine only (a port nothing listens on, a file under tmp_path), so that an
# option that breaks only at the first request is caught too: that fails with a
# KVError or works.

SECRET = "hubkv-FUZZ-SECRET-" + uuid.uuid4().hex
CLOSED = free_port()  # nothing listens there
#: Options holding a secret: their value is never shown.
SECRET_OPTIONS = {"token", "api_token"}
URL_OPTIONS = {"url", "base_url"}


def string_options(driver: str) -> list[str]:
    """The options of ``driver`` that take a string (``str``, ``str | None``, a path)."""
    return sorted(
        name
        for name, kind in driver_options(driver_class(driver)).items()
        if kind is str or str in getattr(kind, "__args__", ())
    )


def baseline(driver: str, folder: Path) -> dict[str, Any]:
    """Valid options pointing ``driver`` at this machine, with ``SECRET`` as the
    credential, failing fast."""
    fast = {"timeout": 0.5, "retries": 0}
    if driver == "fs-lite":
        return {"path": str(folder / "base.sqlite3")}
    if driver == "upstash":
        return {"url": f"http://127.0.0.1:{CLOSED}", "token": SECRET, **fast}
    if driver == "redis":
        return {"url": f"redis://ada:{SECRET}@127.0.0.1:{CLOSED}/0", **fast}
    assert driver == "cloudflare-kv-binding"
    return {
        "base_url": f"http://127.0.0.1:{CLOSED}",
        "api_token": SECRET,
        "account_id": "0123456789abcdef0123456789abcdef",
        "namespace_id": "fedcba9876543210fedcba9876543210",
        **fast,
    }


PLAIN_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=12),
    NEAR_LIMIT,
    st.sampled_from(["", " ", "KV", "0" * 32, "a:b", "*", "%2F", "$x", "normal", "FULL", "\u2028"]),
)
# Secrets may hide anywhere in a secret option's value, or be all of it.
SECRET_TEXT = st.one_of(
    st.just(SECRET),
    st.builds(lambda text: f"{text}{SECRET}", PLAIN_TEXT),
    st.sampled_from([f"Bearer {SECRET}", f"{SECRET}\n", f" {SECRET}", f"{SECRET}\x00x"]),
)
URLS = st.one_of(
    st.builds(
        "{}://{}{}{}{}{}".format,
        st.sampled_from(["http", "https", "HTTPS", "redis", "rediss", "unix", "ftp", ""]),
        st.sampled_from(["", f"ada:{SECRET}@", f":{SECRET}@", f"{SECRET}@", "ada@"]),
        st.sampled_from(["127.0.0.1", "localhost", "[::1]", "127.1", "kv.localhost"])
        | st.sampled_from(["10.0.0.1", "0.0.0.0", "[::1", "kv.example.invalid", ""])
        | st.text(ANY_CHAR, max_size=4),
        st.sampled_from(["", f":{CLOSED}", ":0", ":65536", ":x", ":-1"]),
        st.sampled_from(["", "/", "/0", "/99", "/a b"]) | st.text(ANY_CHAR, max_size=4),
        st.sampled_from(["", "?db=1", "?ssl_cert_reqs=none", "?ssl_check_hostname=false"])
        | st.sampled_from(["?bogus=1", "?decode_responses=true", "?socket_timeout=1", "?db=x"])
        | st.sampled_from([f"?password={SECRET}", f"?ssl_password={SECRET}&ssl_ca_certs=/x"])
        | st.sampled_from(["?#frag", "?client_name=a&health_check_interval=x"]),
    ),
    st.text(ANY_CHAR, max_size=10),
)
# Not strings, none of them holding a secret (see the regression test below for those).
NOT_TEXT = st.one_of(
    st.integers(), st.floats(), st.booleans(), st.binary(max_size=4), st.lists(st.integers())
)


def string_values(name: str, folder: Path) -> st.SearchStrategy[Any]:
    if name in URL_OPTIONS:
        texts = URLS
    elif name in SECRET_OPTIONS:
        texts = st.one_of(PLAIN_TEXT, SECRET_TEXT)
    elif name == "path":  # one file name under folder: never outside it
        texts = st.one_of(
            PLAIN_TEXT.map(lambda text: f"{folder}/{text.replace('/', '_').replace('.', '_')}"),
            st.sampled_from([str(folder), f"{folder}/sub/dir/kv.sqlite3", f"{folder}/x" * 40]),
        )
    else:
        texts = PLAIN_TEXT
    return st.one_of(texts, NOT_TEXT, st.none())


def url_verdict(driver: str, url: str) -> bool | None:
    """False for the documented refusals of an endpoint URL, None otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port is refused
    except ValueError:
        return False
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if driver == "redis":
        if parts.scheme not in ("redis", "rediss", "unix"):
            return False
        if parts.scheme == "redis" and not loopback:
            return False  # clear text to another host, without allow_plaintext
        return False if "ssl_cert_reqs=none" in url or "hostname=false" in url else None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None:
        return False  # credentials go in the token option
    if parts.scheme == "http" and not loopback:
        return False
    return None


def _local_target(driver: str, options: dict[str, Any]) -> bool:
    """Whether a request by a store of these options stays on this machine."""
    url = options.get("url") or options.get("base_url")
    if driver == "fs-lite" or url is None:
        return True
    parts = urlsplit(str(url))
    return parts.scheme == "unix" or parts.hostname in ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize("driver", [name for name in DRIVERS if string_options(name)])
def test_string_option_values_work_or_raise_config_error(
    driver: str, tmp_path: Path, figures: Counter[str]
) -> None:
    """Every string option of ``driver``: accepted, or refused with ConfigError; no
    message, repr or traceback shows a secret."""
    names = string_options(driver)
    base = baseline(driver, tmp_path)

    @settings(max_examples=300, deadline=None, database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names), label="option")
        value = data.draw(string_values(name, tmp_path), label="value")
        options = {**base, name: value}
        if not isinstance(value, str) and value is not None:
            verdict: bool | None = False  # the config layer refuses them: "must be a string"
        elif name in URL_OPTIONS and isinstance(value, str):
            verdict = url_verdict(driver, value)
        else:
            verdict = None
        try:
            store = hubkv.KV(driver, **options)
        except ConfigError as exc:
            figures["fuzz: bad string options refused"] += 1
            assert SECRET not in everything_said(exc), f"{name}={value!r} shows a secret"
            assert verdict is not True
            return
        figures["fuzz: string options accepted"] += 1
        assert verdict is not False, f"{name}={value!r} should be refused with ConfigError"
        shown = repr(store) + store.driver.describe()
        if _local_target(driver, options):
            try:
                store.get("probe")
                store.set("probe", 1)
            except KVError as exc:
                shown += everything_said(exc)
        assert SECRET not in shown, f"{name}={value!r} shows a secret"
        store.close()

    check()


# -- regressions found by the fuzzing above ---------------------------------------


@pytest.mark.parametrize("name", ["a\x00b", "a\ud800"], ids=["NUL", "surrogate"])
def test_regression_a_path_the_os_cannot_take_is_a_config_error(tmp_path: Path, name: str) -> None:
    """Raised a bare ValueError or UnicodeEncodeError at first use."""
    with pytest.raises(ConfigError, match="path must be a file name"):
        hubkv.KV("fs-lite", path=f"{tmp_path}/{name}").get("k")


@pytest.mark.parametrize("name", ["account_id", "namespace_id"])
def test_regression_a_cloudflare_id_with_a_lone_surrogate_is_a_config_error(
    tmp_path: Path, name: str
) -> None:
    """quote() of the id raised UnicodeEncodeError."""
    with pytest.raises(ConfigError, match="printable ASCII"):
        hubkv.KV(
            "cloudflare-kv-binding",
            **{**baseline("cloudflare-kv-binding", tmp_path), name: "a\ud800"},
        )


@pytest.mark.parametrize(
    ("driver", "name", "value"),
    [
        ("upstash", "token", SECRET.encode()),
        ("cloudflare-kv-binding", "api_token", [SECRET]),
        ("upstash", "url", f"https://ada:{SECRET}@kv.example.com".encode()),
        ("redis", "url", f"rediss://:{SECRET}@cache.example.com".encode()),
    ],
    ids=["token as bytes", "api_token in a list", "url as bytes", "redis url as bytes"],
)
def test_regression_a_secret_that_is_not_a_string_is_not_shown(
    tmp_path: Path, driver: str, name: str, value: object
) -> None:
    """'option token must be a string, got b"..."' showed the value."""
    with pytest.raises(ConfigError) as info:
        hubkv.KV(driver, **{**baseline(driver, tmp_path), name: value})
    assert SECRET not in everything_said(info.value)


@pytest.mark.parametrize("value", [1.5, math.inf, math.nan])
def test_regression_fractional_size_option_is_refused(value: float) -> None:
    """max_value_bytes=1.5 became 1, and inf raised a bare OverflowError."""
    with pytest.raises(ConfigError):
        hubkv.KV("memory", max_value_bytes=value)


def test_regression_deep_value_is_refused_not_stored_unreadable(store: hubkv.KV) -> None:
    """A value nested ~990 deep was stored, then get() raised a bare RecursionError."""
    value = _nested(990, 1, use_dicts=False)
    with pytest.raises(SerializationError):
        store.set("deep", value)
    assert not store.has("deep")


def test_regression_deep_json_written_elsewhere_reads_as_a_typed_error(store: hubkv.KV) -> None:
    """Deep JSON from another client (not from hubkv) decodes to SerializationError,
    never to a RecursionError or to its text."""
    store.driver.set("deep", b"[" * 5000 + b"]" * 5000, None)
    with pytest.raises(SerializationError, match="too deeply"):
        store.get("deep")
    with pytest.raises(SerializationError, match="too deeply"):
        store.get("deep", type=list[Any])


def test_regression_sub_minute_utc_offset_is_refused_not_rounded(store: hubkv.KV) -> None:
    """msgspec writes offsets in whole minutes: 12:00+00:19:32 (Amsterdam's mean time
    until 1937) was stored as 12:00+00:20, 28 seconds off, without a word."""
    from zoneinfo import ZoneInfo

    moment = datetime.datetime(1900, 1, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert moment.utcoffset() == datetime.timedelta(minutes=19, seconds=32)
    for value in (
        moment,
        {"at": [moment]},
        datetime.time(12, tzinfo=datetime.timezone(datetime.timedelta(seconds=20))),
    ):
        with pytest.raises(SerializationError, match="whole minutes"):
            store.set("when", value)
    assert store.keys() == []
    utc = moment.astimezone(datetime.timezone.utc)  # the advice in the message works
    store.set("when", utc)
    assert store.get("when", type=datetime.datetime) == moment
