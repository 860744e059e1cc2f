"""hubkv.tools.copy and export: streaming, TTLs, skips, failures, refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import hubkv
from hubkv.tools import TransferInterrupted, copy, export

from .conftest import assert_same_data, populate, snapshot


def fs_lite(tmp_path: Path, name: str) -> hubkv.KV:
    return hubkv.KV("fs-lite", path=str(tmp_path / f"{name}.sqlite3"))


def test_copy_preserves_values_and_remaining_ttls(tmp_path: Path) -> None:
    source = fs_lite(tmp_path, "source")
    populate(source, 1000)
    target = hubkv.KV("memory")
    summary = copy(source, target, batch_size=128)
    assert (summary.written, summary.skipped, summary.expired, summary.failed) == (1000, 0, 0, 0)
    assert summary.ok
    assert_same_data(snapshot(target), snapshot(source))


def test_copy_takes_specs_and_a_prefix(tmp_path: Path) -> None:
    source = fs_lite(tmp_path, "source")
    populate(source, 30, prefix="a:")
    populate(source, 30, prefix="b:")
    summary = copy(
        f"fs-lite:path={tmp_path / 'source.sqlite3'}", f"fs-lite:path={tmp_path / 't'}", "b:"
    )
    assert summary.written == 30
    target = hubkv.KV("fs-lite", path=str(tmp_path / "t"))
    assert_same_data(snapshot(target), snapshot(source, "b:"))


def test_skip_existing_and_a_second_run_skips_everything(tmp_path: Path) -> None:
    source = hubkv.KV("memory")
    populate(source, 50)
    target = hubkv.KV("memory")
    target.set("k:000010", "kept")
    first = copy(source, target, skip_existing=True, batch_size=7)
    assert (first.written, first.skipped) == (49, 1)
    assert target.get("k:000010") == "kept"
    second = copy(source, target, skip_existing=True)
    assert (second.written, second.skipped) == (0, 50)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = hubkv.KV("memory")
    populate(source, 20)
    target = fs_lite(tmp_path, "target")
    target.set("k:000001", "here")
    summary = copy(source, target, dry_run=True, skip_existing=True)
    assert (summary.written, summary.skipped, summary.dry_run) == (19, 1, True)
    assert target.keys() == ["k:000001"] and target.get("k:000001") == "here"


def test_values_the_target_refuses_fail_alone_and_are_counted(tmp_path: Path) -> None:
    source = hubkv.KV("memory")
    source.set_many({f"small:{i}": i for i in range(10)})
    source.set_many({"big:1": "x" * 500, "big:2": ["y" * 500]}, ttl=600)
    target = hubkv.KV("memory", max_value_bytes=100)
    summary = copy(source, target, batch_size=5)
    assert (summary.written, summary.failed) == (10, 2)
    assert not summary.ok
    assert len(summary.errors) == 2 and all("max_value_bytes" in e for e in summary.errors)
    assert sorted(target.keys()) == sorted(f"small:{i}" for i in range(10))
    assert json.loads(json.dumps(summary.as_dict()))["failed"] == 2


def test_copying_a_store_onto_itself_is_refused_unless_renamed_away(tmp_path: Path) -> None:
    store = fs_lite(tmp_path, "one")
    store.set_many({"a:1": 1, "a:2": 2})
    same_file = fs_lite(tmp_path, "one")
    with pytest.raises(hubkv.InvalidKeyError, match="same store"):
        copy(store, same_file)
    with pytest.raises(hubkv.InvalidKeyError, match="same store"):
        copy(store, store, "a:", prefix_rewrite=("a:", "a:b:"))
    assert store.keys() == ["a:1", "a:2"]
    assert copy(store, same_file, "a:", prefix_rewrite=("a:", "b:")).written == 2
    assert store.get_many(store.keys()) == {"a:1": 1, "a:2": 2, "b:1": 1, "b:2": 2}


def test_a_failing_target_stops_the_copy_with_what_was_done(tmp_path: Path) -> None:
    source = hubkv.KV("memory")
    populate(source, 10)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database file, " * 100)
    with pytest.raises(TransferInterrupted, match="run the same command again") as caught:
        copy(source, hubkv.KV("fs-lite", path=str(garbage)))
    assert caught.value.summary.written == 0
    assert isinstance(caught.value, hubkv.DriverError)


def test_read_only_target_is_refused_before_reading(tmp_path: Path) -> None:
    source = hubkv.KV("memory")
    source.set("a", 1)
    with pytest.raises(hubkv.ReadOnlyError):
        copy(source, hubkv.KV("memory", read_only=True))


def test_export_streams_a_prefix_of_a_view_and_replaces_the_file_atomically(
    tmp_path: Path,
) -> None:
    store = hubkv.KV("memory")
    store.set_many({"t:1:a": 1, "t:1:b": 2, "t:2:a": 3})
    store.set("t:1:c", 4, ttl=90)
    path = tmp_path / "out" / "backup.jsonl"
    path.parent.mkdir()
    path.write_text("old content\n")
    summary = export(store.prefixed("t:1:"), path, batch_size=1)
    assert summary.written == 3
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["key"] for r in records) == ["a", "b", "c"]
    ttls = {r["key"]: r["ttl"] for r in records}
    assert ttls["a"] is None and 85 < ttls["c"] <= 90
    assert [p.name for p in path.parent.iterdir()] == ["backup.jsonl"]


def test_export_to_text_and_binary_files(tmp_path: Path) -> None:
    store = hubkv.KV("memory")
    store.set("ключ", {"v": "é"})
    text = io.StringIO()
    export(store, text)
    binary = io.BytesIO()
    export(store, binary)
    assert text.getvalue().encode() == binary.getvalue()
    assert json.loads(text.getvalue()) == {"key": "ключ", "value": {"v": "é"}, "ttl": None}


def test_bad_arguments_are_typed_errors(tmp_path: Path) -> None:
    store = hubkv.KV("memory")
    with pytest.raises(hubkv.ConfigError, match="batch_size"):
        copy(store, hubkv.KV("memory"), batch_size=0)
    with pytest.raises(hubkv.InvalidKeyError):
        export(store, tmp_path / "x.jsonl", "bad\x00prefix")
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(hubkv.ConfigError, match="unknown store"):
        copy("no-such-profile-or-driver", store)


def test_an_unreadable_stored_value_fails_alone(tmp_path: Path) -> None:
    source = hubkv.KV("fs-lite", path=str(tmp_path / "src.sqlite3"))
    source.set_many({f"k:{i}": i for i in range(10)})
    source.driver.set("k:5", b"\xff\xfe not JSON, not UTF-8", None)  # another client's bytes
    target = hubkv.KV("memory")
    summary = copy(source, target)
    assert (summary.written, summary.failed) == (9, 1)
    assert "k:5" in summary.errors[0]
    assert target.keys() == sorted(f"k:{i}" for i in range(10) if i != 5)
