"""hubkv.tools.import_file: the whole file is checked before the first write."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv.store import MAX_TTL
from hubkv.tools import ImportFileError, export, import_file


def write_lines(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, strings as they are."""
    path.write_text(
        "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in lines),
        encoding="utf-8",
    )
    return path


def good(i: int, **extra: Any) -> dict[str, Any]:
    return {"key": f"k:{i:03d}", "value": {"i": i}, "ttl": None, **extra}


def test_one_bad_line_writes_nothing_and_names_its_line(tmp_path: Path) -> None:
    lines: list[Any] = [good(i) for i in range(100)]
    lines[56] = {"key": "bad\x00key", "value": 1}
    path = write_lines(tmp_path / "in.jsonl", lines)
    store = hubkv.KV("memory")
    with pytest.raises(ImportFileError) as caught:
        import_file(store, path, batch_size=10)
    assert caught.value.bad_lines == 1
    assert [line for line, _ in caught.value.problems] == [57]
    assert "line 57" in str(caught.value) and "nothing was written" in str(caught.value)
    assert store.keys() == []


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("{not json", "malformed"),
        ({"key": "a"}, "missing required field `value`"),
        ({"key": 7, "value": 1}, "Expected `str`"),
        ({"key": "a", "value": 1, "extra": True}, "unknown field `extra`"),
        ({"key": "a", "value": 1, "ttl": "soon"}, "$.ttl"),
        ({"key": "a", "value": 1, "ttl": True}, "$.ttl"),
        ({"key": "", "value": 1}, "invalid key ''"),
        ({"key": "..", "value": 1}, "'.' and '..' are not keys"),
        ({"key": "x" * 513, "value": 1}, "at most 512 allowed"),
        ({"key": "a", "value": 1, "ttl": MAX_TTL * 2}, "ten-year maximum"),
        ('{"key": "a", "value": NaN}', "malformed"),
        ("[1, 2]", "Expected `object`"),
        ('{"key": "a", "value": 1e999}', "Number out of range"),
        ('{"key": "a", "value": ' + "[" * 300 + "]" * 300 + "}", "deeper than 256"),
    ],
    ids=repr,
)
def test_each_kind_of_bad_line_is_reported(tmp_path: Path, bad: Any, says: str) -> None:
    path = write_lines(tmp_path / "in.jsonl", [good(1), "", good(2), bad, good(3)])
    store = hubkv.KV("memory")
    with pytest.raises(ImportFileError) as caught:
        import_file(store, path)
    assert caught.value.problems[0][0] == 4  # blank lines are skipped but still counted
    assert says in caught.value.problems[0][1]
    assert store.keys() == []


def test_invalid_utf_8_in_a_value_is_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"key": "a", "value": 1}\n{"key": "b", "value": "caf\xe9"}\n')
    store = hubkv.KV("memory")
    with pytest.raises(ImportFileError, match="line 2: .*UTF-8"):
        import_file(store, path)
    assert store.keys() == []


def test_values_over_the_targets_limit_are_bad_lines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl", [good(1), {"key": "big", "value": "x" * 200}, good(2)]
    )
    store = hubkv.KV("memory", max_value_bytes=100)
    with pytest.raises(ImportFileError, match="line 2: the value of 'big' is 202 bytes"):
        import_file(store, path)
    assert store.keys() == []


def test_many_bad_lines_are_all_counted_and_the_first_ones_listed(tmp_path: Path) -> None:
    lines: list[Any] = [good(i) if i % 2 else "oops" for i in range(100)]
    path = write_lines(tmp_path / "in.jsonl", lines)
    with pytest.raises(ImportFileError) as caught:
        import_file(hubkv.KV("memory"), path)
    assert caught.value.bad_lines == 50
    assert [line for line, _ in caught.value.problems] == list(range(1, 41, 2))
    assert "and 45 more" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_rewritten_key_is_checked_too(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [{"key": "a:" + "x" * 500, "value": 1}])
    store = hubkv.KV("memory")
    with pytest.raises(ImportFileError, match="line 1: invalid key"):
        import_file(store, path, prefix_rewrite=("a:", "a-much-longer-prefix:"))
    assert store.keys() == []


def test_records_with_ttls_keep_them_and_expired_ones_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            {"key": "hour", "value": 1, "ttl": 3600.4},
            {"key": "forever", "value": 2, "ttl": None},
            {"key": "no-ttl-field", "value": 3},
            {"key": "gone", "value": 4, "ttl": 0},
            {"key": "long-gone", "value": 5, "ttl": -30},
            {"key": "second", "value": 6, "ttl": 0.2},
        ],
    )
    store = hubkv.KV("memory")
    summary = import_file(store, path)
    assert (summary.written, summary.expired, summary.skipped, summary.failed) == (4, 2, 0, 0)
    assert store.keys() == ["forever", "hour", "no-ttl-field", "second"]
    assert store.ttl("forever") is None and store.ttl("no-ttl-field") is None
    # TTLs are kept to the millisecond (no rounding: a batch is one write whatever its TTLs).
    assert 3595 < (store.ttl("hour") or 0) <= 3600.4
    # What is left of a sub-second TTL, never written as permanent.
    assert 0 < (store.ttl("second") or 0) <= 0.2


def test_a_key_given_twice_keeps_its_last_value(tmp_path: Path) -> None:
    lines = [{"key": "dup", "value": "first", "ttl": 60}, good(1)]
    lines += [{"key": "dup", "value": "second"}]
    lines += [good(i) for i in range(2, 12)] + [{"key": "dup", "value": "third", "ttl": 999}]
    path = write_lines(tmp_path / "in.jsonl", lines)
    store = hubkv.KV("memory")
    summary = import_file(store, path, batch_size=4)
    assert summary.written == len(lines)
    assert store.get("dup") == "third"
    assert 990 < (store.ttl("dup") or 0) <= 999


def test_skip_existing_leaves_present_keys_alone(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [good(i) for i in range(10)])
    store = hubkv.KV("memory")
    store.set_many({"k:002": "mine", "k:007": "mine too"})
    summary = import_file(store, path, skip_existing=True, batch_size=3)
    assert (summary.written, summary.skipped) == (8, 2)
    assert store.get("k:002") == "mine" and store.get("k:007") == "mine too"
    assert store.get("k:003") == {"i": 3}
    again = import_file(store, path, skip_existing=True)
    assert (again.written, again.skipped) == (0, 10)


def test_prefix_rewrite_renames_matching_keys_only(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            {"key": "staging:a", "value": 1},
            {"key": "staging:b", "value": 2},
            {"key": "other", "value": 3},
        ],
    )
    store = hubkv.KV("memory")
    import_file(store, path, prefix_rewrite=("staging:", "prod:"))
    assert store.get_many(store.keys()) == {"other": 3, "prod:a": 1, "prod:b": 2}
    added = hubkv.KV("memory")
    import_file(added, path, prefix_rewrite=("", "backup/"))
    assert added.keys() == ["backup/other", "backup/staging:a", "backup/staging:b"]


def test_dry_run_checks_and_counts_but_writes_nothing(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [good(i) for i in range(5)] + [good(9, ttl=-1)])
    store = hubkv.KV("memory")
    store.set("k:001", "here")
    summary = import_file(store, path, dry_run=True, skip_existing=True)
    assert (summary.written, summary.skipped, summary.expired, summary.dry_run) == (4, 1, 1, True)
    assert store.keys() == ["k:001"]
    assert "would have imported 4 keys" in str(summary)


def test_read_only_targets_are_refused_before_anything(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [good(1)])
    store = hubkv.KV("memory")
    with pytest.raises(hubkv.ReadOnlyError, match="nothing was written"):
        import_file(store.read_only(), path)
    assert import_file(store.read_only(), path, dry_run=True).written == 1
    assert store.keys() == []


def test_values_come_back_exactly(tmp_path: Path) -> None:
    values = {
        "nested": {"a": [1, 2.5, None, True, {"b": "ü"}]},
        "null": None,
        "big": 2**62,
        "float": 0.1,
        "text": 'quote " and \\ backslash',
        "emoji": "🎉",
    }
    source = hubkv.KV("memory")
    source.set_many(values)
    buffer = io.BytesIO()
    export(source, buffer)
    buffer.seek(0)
    target = hubkv.KV("memory")
    import_file(target, buffer)
    assert target.get_many(values) == values
    assert target.has("null")


def test_files_open_in_text_mode_and_views_work(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [good(1), good(2)])
    store = hubkv.KV("memory")
    view = store.prefixed("tenant:")
    with path.open(encoding="utf-8") as file:
        assert import_file(view, file).written == 2
    assert store.keys() == ["tenant:k:001", "tenant:k:002"]


def test_unreadable_and_unseekable_sources_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="can't read the import file"):
        import_file(hubkv.KV("memory"), tmp_path / "missing.jsonl")

    class Stream(io.BytesIO):
        def seekable(self) -> bool:
            return False

    with pytest.raises(ImportFileError, match="seekable"):
        import_file(hubkv.KV("memory"), Stream(b'{"key": "a", "value": 1}\n'))


def test_a_ttl_record_expiring_after_export_still_imports_with_its_remaining_time(
    tmp_path: Path,
) -> None:
    # TTLs in the file are durations: an import restores them from the time of writing.
    source = hubkv.KV("memory")
    source.set("soon", 1, ttl=120)
    path = tmp_path / "out.jsonl"
    export(source, path)
    target = hubkv.KV("memory")
    import_file(target, path)
    assert 118 < (target.ttl("soon") or 0) <= 120
