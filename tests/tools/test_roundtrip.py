"""Round trips: fs-lite -> memory -> every driver of the shared suite -> fs-lite."""

from __future__ import annotations

from pathlib import Path

import hubkv
from hubkv.tools import copy, export, import_file

from .conftest import DriverCase, assert_same_data, populate, snapshot

# Small batches, so that a few hundred keys cross many batch boundaries.
BATCH = 64


def test_round_trip_through_every_driver_keeps_keys_values_and_ttls(
    case: DriverCase, tmp_path: Path
) -> None:
    origin = hubkv.KV("fs-lite", path=str(tmp_path / "origin.sqlite3"))
    populate(origin, 300)
    origin.set_many({"ünï:日本語": {"x": 1}, "a b/c?d": "odd key", "x" * 512: "long key"})
    expected = snapshot(origin)

    first = tmp_path / "first.jsonl"
    assert export(origin, first, batch_size=BATCH).written == len(expected)
    assert len(first.read_bytes().splitlines()) == len(expected)

    memory = hubkv.KV("memory")
    assert import_file(memory, first, batch_size=BATCH).written == len(expected)
    assert_same_data(snapshot(memory), expected)

    remote = case.make()
    remote.clear()
    summary = copy(memory, remote, batch_size=BATCH)
    assert (summary.written, summary.skipped, summary.failed) == (len(expected), 0, 0)
    assert_same_data(snapshot(remote), expected)

    second = tmp_path / "second.jsonl"
    assert export(remote, second, batch_size=BATCH).written == len(expected)
    back = hubkv.KV("fs-lite", path=str(tmp_path / "back.sqlite3"))
    assert import_file(back, second, batch_size=BATCH).written == len(expected)
    assert_same_data(snapshot(back), expected)
    remote.clear()
    remote.close()


def test_copy_of_a_prefix_with_rewrite_into_every_driver(case: DriverCase, tmp_path: Path) -> None:
    source = hubkv.KV("fs-lite", path=str(tmp_path / "source.sqlite3"))
    populate(source, 40, prefix="staging:")
    populate(source, 5, prefix="other:")
    expected = {
        "prod:" + key[len("staging:") :]: entry
        for key, entry in snapshot(source, "staging:").items()
    }
    target = case.make()
    target.clear()
    summary = copy(source, target, "staging:", prefix_rewrite=("staging:", "prod:"))
    assert summary.written == 40
    assert target.keys("other:") == [] and target.keys("staging:") == []
    assert_same_data(snapshot(target), expected)
    target.clear()
    target.close()
