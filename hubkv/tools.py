"""Moving data between stores: export to JSON Lines, import from it, copy.

A team that prototyped on the local fs-lite store moves its data to a host,
and backs it up, with three calls (or the ``hubkv export/import/copy``
commands, see :mod:`hubkv.tools_cli`):

>>> import os, tempfile
>>> from hubkv import KV
>>> from hubkv.tools import copy, export, import_file
>>> local = KV("memory")
>>> local.set_many({"settings": {"theme": "system"}, "flags:beta": True})
>>> local.set("session:1", "abc", ttl=3600)
>>> backup = os.path.join(tempfile.mkdtemp(), "backup.jsonl")
>>> print(export(local, backup))
exported 3 keys
>>> restored = KV("memory")
>>> print(import_file(restored, backup))
imported 3 keys
>>> restored.get("settings"), round(restored.ttl("session:1") or 0, -2)
({'theme': 'system'}, 3600.0)
>>> print(copy(local, restored, "flags:", prefix_rewrite=("flags:", "old-flags:")))
copied 1 key
>>> restored.keys("old-")
['old-flags:beta']

The file format is JSON Lines, one record per key::

    {"key": "settings", "value": {"theme": "system"}, "ttl": null}
    {"key": "session:1", "value": "abc", "ttl": 3599.998}

``value`` is the stored JSON value and ``ttl`` the seconds the key had left
when it was exported (``null``: never expires). An import gives each key
that many seconds from the moment it is written again; records whose ``ttl``
is 0 or less count as expired and are skipped.

Guarantees:

- Bounded memory: keys are streamed (``iter_keys``) and moved in batches of
  ``batch_size``; no operation holds every key at once.
- An import checks the whole file first (JSON, keys, TTLs, value sizes
  against the target's ``max_value_bytes``) and writes nothing when any line
  is bad: :class:`ImportFileError` lists the line numbers.
- Copies and imports are resumable: every write is an idempotent overwrite,
  so running the same command again after an interruption ends with the same
  data as an uninterrupted run, with no key lost or duplicated
  (``skip_existing=True`` makes the re-run skip what already arrived).
- Remaining TTLs are preserved (to the millisecond where the target keeps
  them; Cloudflare KV keeps whole seconds, at least 60), counted down from
  the moment each TTL was read to the moment its key is written.
- Few requests: a batch costs one TTL read (``KV.iter_ttls``: from the key
  listing itself on Cloudflare KV, one pipeline or query elsewhere), one
  ``get_many`` and one ``set_many_with_ttls``, however different the TTLs;
  never one request per key.
- A progress bar (done/total, rate, ETA) is drawn on stderr when it is a
  terminal, or with ``progress=True``.
"""

from __future__ import annotations

import io
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec

from . import codec
from .errors import (
    ConfigError,
    DriverError,
    InvalidKeyError,
    KVError,
    ReadOnlyError,
    RequestTooLargeError,
    SerializationError,
)
from .store import KV, MAX_TTL, validate_key, validate_prefix

if TYPE_CHECKING:
    from typing import TypeAlias

    from tqdm import tqdm

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ImportFileError",
    "Summary",
    "TransferInterrupted",
    "copy",
    "export",
    "import_file",
]

#: Keys read, and records written, per batch.
DEFAULT_BATCH_SIZE = 500
# Problems kept (and shown) per summary or bad file.
_MAX_ERRORS = 20
_SHOWN_ERRORS = 5

#: A store, or a SPEC naming one (see :func:`hubkv.config.open_spec`).
StoreLike: TypeAlias = "KV | str"
#: A file path, or an open file (binary or text).
FileLike: TypeAlias = "str | os.PathLike[str] | IO[Any]"
#: ``(OLD, NEW)``: keys starting with ``OLD`` get ``NEW`` instead.
Rewrite: TypeAlias = "tuple[str, str]"

_MISSING = object()
_T = TypeVar("_T")
_VERBS = {"export": "exported", "import": "imported", "copy": "copied"}


@dataclass
class Summary:
    """What an export, import or copy did; every record lands in one count.

    - ``written``: records written (to the file for an export; with
      ``dry_run``, records that would be written);
    - ``skipped``: keys left alone because the target had them (``skip_existing``);
    - ``expired``: records not moved because they expired (or were deleted)
      before they could be read or written;
    - ``failed``: records the target refused (e.g. a value over its
      ``max_value_bytes``), or that the source listed and still has but
      could not read; ``errors`` says why, for the first 20.

    A key the source lists twice (Redis ``SCAN`` can, rarely, when the
    database is resized during the scan) is read and written twice and
    counted twice (the second time as ``skipped`` with ``skip_existing``):
    the second write puts the same value again, and an import of an export
    keeps a key's last record, so the data is the same as with one listing.
    Remembering every key to hide the repeat would hold the whole store in
    memory.

    >>> print(Summary("copy", written=1200, skipped=3, seconds=1.5))
    copied 1,200 keys, skipped 3 existing in 1.5s (800 keys/s)
    """

    operation: str
    written: int = 0
    skipped: int = 0
    expired: int = 0
    failed: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every record was moved, skipped or found expired (none failed)."""
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``hubkv ... --json`` prints it)."""
        return {
            "operation": self.operation,
            "written": self.written,
            "skipped": self.skipped,
            "expired": self.expired,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "errors": list(self.errors),
        }

    def _note(self, error: str) -> None:
        self.failed += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(error)

    def __str__(self) -> str:
        verb = _VERBS.get(self.operation, self.operation)
        if self.dry_run:
            verb = f"would have {verb}"
        text = f"{verb} {self.written:,} key{'' if self.written == 1 else 's'}"
        extras = [
            f"{label} {count:,}{suffix}"
            for label, count, suffix in (
                ("skipped", self.skipped, " existing"),
                ("skipped", self.expired, " expired"),
                ("failed", self.failed, ""),
            )
            if count
        ]
        if extras:
            text += ", " + ", ".join(extras)
        if self.seconds >= 0.1:
            rate = self.written / self.seconds
            text += f" in {self.seconds:.1f}s ({rate:,.0f} keys/s)"
        if self.errors:
            text += "; first failure: " + self.errors[0]
        return text


class ImportFileError(KVError, ValueError):
    """An import file can't be read or has bad records; nothing was written.

    ``problems`` lists ``(line number, message)`` for the first 20 bad lines
    and ``bad_lines`` counts them all (both empty when the file can't be read).
    """

    def __init__(
        self, message: str, problems: list[tuple[int, str]] | None = None, bad_lines: int = 0
    ) -> None:
        super().__init__(message)
        self.problems = problems or []
        self.bad_lines = bad_lines

    @classmethod
    def of_lines(
        cls, name: str, problems: list[tuple[int, str]], bad_lines: int
    ) -> ImportFileError:
        """The error for a file with ``bad_lines`` bad lines, showing the first few."""
        shown = "; ".join(f"line {line}: {message}" for line, message in problems[:_SHOWN_ERRORS])
        more = f"; and {bad_lines - _SHOWN_ERRORS:,} more" if bad_lines > _SHOWN_ERRORS else ""
        return cls(
            f"{name}: {bad_lines:,} bad line{'' if bad_lines == 1 else 's'}, nothing was written "
            f"(fix or remove them and import again): {shown}{more}",
            problems,
            bad_lines,
        )


class TransferInterrupted(DriverError):
    """A store failed part-way; ``summary`` counts what was done before.

    Running the same import or copy again finishes the job: writes are
    idempotent overwrites.
    """

    def __init__(self, message: str, summary: Summary) -> None:
        super().__init__(message)
        self.summary = summary


# -- the Python API -------------------------------------------------------


def export(
    source: StoreLike,
    dest: FileLike,
    prefix: str = "",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> Summary:
    """Write every key under ``prefix`` to ``dest`` as JSON Lines.

    ``dest`` is a path (written to a temporary file beside it, renamed into
    place at the end: an interrupted export leaves no half backup behind) or
    an open file. ``source`` is a :class:`~hubkv.KV` or a SPEC.

    >>> import io
    >>> from hubkv import KV
    >>> store = KV("memory")
    >>> store.set("a", [1, 2])
    >>> out = io.BytesIO()
    >>> export(store, out).written, out.getvalue()
    (1, b'{"key":"a","value":[1,2],"ttl":null}\\n')
    """
    _check_batch_size(batch_size)
    summary = Summary("export")
    started = time.monotonic()
    with _opened(source) as store, _writable(dest) as write:
        validate_prefix(prefix)
        with _progress_bar(progress, "export", lambda: _count(store, prefix)) as bar:
            for batch in _read_batches(store, prefix, batch_size, summary, bar):
                lines = [
                    _encode_line({"key": key, "value": value, "ttl": _rounded(ttl)}) + b"\n"
                    for key, value, ttl in batch
                ]
                write(b"".join(lines))
                summary.written += len(lines)
    summary.seconds = time.monotonic() - started
    return summary


def import_file(
    target: StoreLike,
    source: FileLike,
    *,
    prefix_rewrite: Rewrite | None = None,
    skip_existing: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> Summary:
    """Write the records of a JSON Lines file (as :func:`export` makes) to ``target``.

    The whole file is checked first; when any line is bad,
    :class:`ImportFileError` names the lines and nothing is written. Then
    records are written in batches; a key in the file twice keeps its last
    value. ``prefix_rewrite=("old:", "new:")`` renames keys starting with
    ``old:`` (others keep their names); ``skip_existing=True`` leaves keys
    the target already has alone; ``dry_run=True`` checks and counts but
    writes nothing. ``source`` is a path or a seekable open file.

    >>> import io
    >>> from hubkv import KV
    >>> store = KV("memory")
    >>> lines = b'{"key": "a", "value": 1, "ttl": null}\\n{"key": "", "value": 2}\\n'
    >>> import_file(store, io.BytesIO(lines))
    Traceback (most recent call last):
    ...
    hubkv.tools.ImportFileError: <file>: 1 bad line, nothing was written (fix or remove them and import again): line 2: invalid key '': a key must be 1 to 512 bytes of UTF-8
    >>> store.keys()
    []
    """
    _check_batch_size(batch_size)
    summary = Summary("import", dry_run=dry_run)
    started = time.monotonic()
    rename = _renamer(prefix_rewrite)
    with _opened(target) as store, _readable(source) as (name, file):
        _check_writable(store, dry_run)
        start = file.tell()
        total = _check_file(file, name, store, rename)
        file.seek(start)
        writer = _Writer(store, summary, rename, skip_existing, dry_run, batch_size)
        with (
            _progress_bar(progress, "import", lambda: total) as bar,
            _interruptible(summary, started),
        ):
            for _, record in _records(file):
                writer.add(record.key, record.value, record.ttl)
                if bar is not None:
                    bar.update(1)
            writer.flush()
    summary.seconds = time.monotonic() - started
    return summary


def copy(
    source: StoreLike,
    target: StoreLike,
    prefix: str = "",
    *,
    prefix_rewrite: Rewrite | None = None,
    skip_existing: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
) -> Summary:
    """Copy every key under ``prefix`` from ``source`` to ``target``, with remaining TTLs.

    Stores are :class:`~hubkv.KV` objects or SPECs (``"fs-lite:path=app.sqlite3"``,
    a profile name); SPECs are opened and closed here. Options as for
    :func:`import_file`. Resumable: after an interruption, the same call
    finishes the job (with ``skip_existing=True`` it skips what arrived).

    >>> from hubkv import KV
    >>> old, new = KV("memory"), KV("memory")
    >>> old.set_many({"a": 1, "b": 2})
    >>> new.set("a", 100)
    >>> print(copy(old, new, skip_existing=True))
    copied 1 key, skipped 1 existing
    >>> new.get_many(["a", "b"])
    {'a': 100, 'b': 2}
    """
    _check_batch_size(batch_size)
    summary = Summary("copy", dry_run=dry_run)
    started = time.monotonic()
    rename = _renamer(prefix_rewrite)
    with _opened(source) as src, _opened(target) as dst:
        validate_prefix(prefix)
        _check_writable(dst, dry_run)
        _refuse_copy_into_itself(src, dst, prefix_rewrite)
        writer = _Writer(dst, summary, rename, skip_existing, dry_run, batch_size)
        with (
            _progress_bar(progress, "copy", lambda: _count(src, prefix)) as bar,
            _interruptible(summary, started),
        ):
            for batch in _read_batches(src, prefix, batch_size, summary, bar):
                for key, value, ttl in batch:
                    writer.add(key, value, ttl)
            writer.flush()
    summary.seconds = time.monotonic() - started
    return summary


# -- reading a store ------------------------------------------------------


def _read_batches(
    store: KV, prefix: str, batch_size: int, summary: Summary, bar: tqdm[Any] | None
) -> Iterator[list[tuple[str, Any, float | None]]]:
    """Live ``(key, value, remaining ttl)`` records under ``prefix``, batch by batch.

    Keys and TTLs come from ``iter_ttls`` (batched by the driver), values from
    one ``get_many`` per batch. A listed key that ``get_many`` doesn't return is
    checked with ``has``: gone means it expired (or was deleted) meanwhile;
    still there, it is read alone, and counted as failed, with a note, if that
    finds nothing either; never dropped without a count.
    """
    for listed in _batched(store.iter_ttls(prefix), batch_size):
        listed_at = time.monotonic()
        ttls = dict(listed)  # a key listed twice in one batch is read once
        keys = list(ttls)
        unreadable: set[str] = set()
        try:
            values = store.get_many(keys)
        except SerializationError:  # a value nobody can read: the others still move
            values = _readable_values(store, keys, summary, unreadable)
        batch = []
        for key in keys:
            if key in unreadable:
                continue
            ttl = ttls[key]
            value = values.get(key, _MISSING)
            if value is _MISSING:
                value = _read_missing(store, key, ttl, listed_at, summary)
                if value is _MISSING:
                    continue
            remaining = _remaining(ttl, listed_at)
            if remaining is not None and remaining <= 0:
                summary.expired += 1
                continue
            batch.append((key, value, remaining))
        yield batch
        if bar is not None:
            bar.update(len(listed))


def _read_missing(
    store: KV, key: str, ttl: float | None, listed_at: float, summary: Summary
) -> Any:
    """The value of a listed key that a batch read did not return, or ``_MISSING``.

    A key the store no longer has (or whose TTL ran out meanwhile) counts as
    expired. One it still has is read alone (a bulk read can skip keys, an
    eventually consistent store can lag); when that too finds nothing, the
    key counts as failed, with a note: a key the store has is never dropped
    silently.
    """
    remaining = _remaining(ttl, listed_at)
    if (remaining is not None and remaining <= 0) or not store.has(key):
        summary.expired += 1
        return _MISSING
    try:
        value = store.get(key, _MISSING)
    except SerializationError as exc:
        summary._note(f"{key!r}: {exc}")
        return _MISSING
    if value is _MISSING:
        remaining = _remaining(ttl, listed_at)
        if remaining is not None and remaining <= 0:
            summary.expired += 1
        else:
            summary._note(
                f"{key!r}: listed and reported present, but reading it returned nothing "
                "(a store still propagating a write?); run the same command again"
            )
    return value


def _remaining(ttl: float | None, read_at: float) -> float | None:
    """Seconds left now of a TTL that was ``ttl`` at ``read_at`` (``time.monotonic()``)."""
    return None if ttl is None else ttl - (time.monotonic() - read_at)


def _readable_values(
    store: KV, keys: list[str], summary: Summary, unreadable: set[str]
) -> dict[str, Any]:
    """The values of ``keys`` read one by one; each unreadable one is noted as failed
    (and added to ``unreadable``)."""
    values = {}
    for key in keys:
        try:
            value = store.get(key, _MISSING)
        except SerializationError as exc:
            summary._note(f"{key!r}: {exc}")
            unreadable.add(key)
            continue
        if value is not _MISSING:
            values[key] = value
    return values


def _count(store: KV, prefix: str) -> int:
    return sum(1 for _ in store.iter_keys(prefix))


def _batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# -- writing a store ------------------------------------------------------


class _Writer:
    """Buffers records and writes each batch in one ``set_many_with_ttls``, whatever its TTLs.

    Counts every record in ``summary``. A TTL counts down from the moment the
    record is added: what is left of it at the write is what the key gets. A
    batch the target refuses as bad input is retried key by key, so one bad
    value fails alone; a failing store (:class:`DriverError`) stops the job.
    """

    def __init__(
        self,
        target: KV,
        summary: Summary,
        rename: Callable[[str], str],
        skip_existing: bool,
        dry_run: bool,
        batch_size: int,
    ) -> None:
        self._target = target
        self._summary = summary
        self._rename = rename
        self._skip_existing = skip_existing
        self._dry_run = dry_run
        self._batch_size = batch_size
        # key -> (value, when its TTL runs out in time.monotonic(), or None)
        self._pending: dict[str, tuple[Any, float | None]] = {}

    def add(self, key: str, value: Any, ttl: float | None) -> None:
        """Queue one record (``ttl``: remaining seconds; 0 or less is expired)."""
        if ttl is not None and ttl <= 0:
            self._summary.expired += 1
            return
        key = self._rename(key)
        if key in self._pending:  # keep file order: the later record must win
            self.flush()
        self._pending[key] = (value, None if ttl is None else time.monotonic() + ttl)
        if len(self._pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Write every queued record."""
        pending, self._pending = self._pending, {}
        if pending and self._skip_existing:
            for key in self._target.get_many(pending):
                del pending[key]
                self._summary.skipped += 1
        now = time.monotonic()
        entries = []
        for key, (value, deadline) in pending.items():
            if deadline is not None and deadline <= now:
                self._summary.expired += 1
                continue
            entries.append((key, value, None if deadline is None else _clamped(deadline - now)))
        if not entries:
            return
        if self._dry_run:
            self._summary.written += len(entries)
        else:
            self._write(entries)

    def _write(self, entries: list[tuple[str, Any, float | None]]) -> None:
        try:
            self._target.set_many_with_ttls(entries)
        except KVError as exc:
            if not _refused(exc):
                raise
        else:
            self._summary.written += len(entries)
            return
        for key, value, ttl in entries:
            try:
                self._target.set(key, value, ttl=ttl)
            except KVError as exc:
                if not _refused(exc):
                    raise
                self._summary._note(f"{key!r}: {exc}")
            else:
                self._summary.written += 1


def _refused(error: KVError) -> bool:
    """Whether the target refused this data (vs. failing as a store)."""
    if isinstance(error, ReadOnlyError):
        return False
    return isinstance(error, RequestTooLargeError) or not isinstance(error, DriverError)


def _clamped(ttl: float) -> float:
    """A remaining TTL as a write takes it: at most ten years (a longer one, set by
    another client, keeps the ten years; hubkv refuses more)."""
    return min(ttl, MAX_TTL)


def _rounded(ttl: float | None) -> float | None:
    return None if ttl is None else round(ttl, 3)


def _renamer(rewrite: Rewrite | None) -> Callable[[str], str]:
    if rewrite is None:
        return _same
    old, new = rewrite
    validate_prefix(old)
    validate_prefix(new)
    cut = len(old)

    def rename(key: str) -> str:
        return new + key[cut:] if key.startswith(old) else key

    return rename


def _same(key: str) -> str:
    return key


def _check_writable(store: KV, dry_run: bool) -> None:
    if store.is_read_only and not dry_run:
        raise ReadOnlyError(
            f"the target store ({store.driver.describe()}) is read-only: nothing was written; "
            "open it with a read-write credential, or use a dry run"
        )


def _refuse_copy_into_itself(src: KV, dst: KV, rewrite: Rewrite | None) -> None:
    """Refuse a copy whose writes would land on the keys it reads (or feed it forever)."""
    one, other = src.driver, dst.driver
    same = one is other or (
        one.name == other.name != "memory" and one.describe() == other.describe()
    )
    if not same:
        return
    old, new = rewrite if rewrite is not None else ("", "")
    if rewrite is None or (dst.prefix + new).startswith(src.prefix + old):
        raise InvalidKeyError(
            f"the source and the target are the same store ({one.describe()}) and the copies "
            "would land on the keys being read; copy to another store, or rewrite the prefix "
            "to one outside the source prefix"
        )


@contextmanager
def _interruptible(summary: Summary, started: float) -> Iterator[None]:
    """Turn a store failure into :class:`TransferInterrupted` carrying the summary."""
    try:
        yield
    except DriverError as exc:
        if isinstance(exc, TransferInterrupted):
            raise
        summary.seconds = time.monotonic() - started
        raise TransferInterrupted(
            f"{exc} ({summary.written:,} keys were written before the failure; "
            "run the same command again to finish: writes are idempotent)",
            summary,
        ) from exc


# -- import files ---------------------------------------------------------


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    # The value's JSON text, written to the target as it is: no decoding.
    value: msgspec.Raw
    ttl: float | None = None


_decode_record = msgspec.json.Decoder(_Record).decode
_encode_line = msgspec.json.Encoder().encode


def _records(file: IO[Any]) -> Iterator[tuple[int, _Record]]:
    """``(line number, record)`` for each non-blank line (the file was checked)."""
    for number, line in enumerate(file, 1):
        if line.strip():
            yield number, _decode_record(line)


def _check_file(file: IO[Any], name: str, target: KV, rename: Callable[[str], str]) -> int:
    """The number of records in ``file``; :class:`ImportFileError` if any line is bad."""
    # The store's own limit, so that no write can fail on size after the check.
    limit = target.max_value_bytes
    problems: list[tuple[int, str]] = []
    bad = count = 0
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        count += 1
        problem = _problem(line, target, rename, limit)
        if problem is not None:
            bad += 1
            if len(problems) < _MAX_ERRORS:
                problems.append((number, problem))
    if bad:
        raise ImportFileError.of_lines(name, problems, bad)
    return count


def _problem(line: bytes | str, target: KV, rename: Callable[[str], str], limit: int) -> str | None:
    """What is wrong with one line, or ``None``."""
    try:
        record = _decode_record(line)
    except msgspec.DecodeError as exc:
        return f"not a record {{'key': str, 'value': JSON, 'ttl': seconds or null}}: {exc}"
    key = rename(record.key)
    try:
        validate_key(key)
        if target.prefix:
            validate_key(target.prefix + key)
    except InvalidKeyError as exc:
        return str(exc)
    if record.ttl is not None and record.ttl > MAX_TTL:
        return f"ttl of {key!r} is {record.ttl:g} seconds, over the ten-year maximum {MAX_TTL:.0f}"
    size = len(record.value)
    if size > limit:
        return (
            f"the value of {key!r} is {size:,} bytes, over the target's limit of {limit:,} "
            "(max_value_bytes)"
        )
    # What a write would refuse, or store unreadably: invalid UTF-8, numbers out
    # of range, nesting too deep.
    try:
        codec.encode(msgspec.json.decode(record.value))
    except (msgspec.DecodeError, RecursionError) as exc:
        return f"the value of {key!r} is not JSON that can be stored: {exc}"
    except SerializationError as exc:
        return f"the value of {key!r} can't be stored: {exc}"
    return None


# -- files, stores, progress ----------------------------------------------


@contextmanager
def _opened(store: StoreLike) -> Iterator[KV]:
    """``store`` itself, or the store a SPEC names (closed afterwards)."""
    if isinstance(store, KV):
        yield store
        return
    from .config import open_spec

    with open_spec(store) as opened:
        yield opened


@contextmanager
def _readable(source: FileLike) -> Iterator[tuple[str, IO[Any]]]:
    """``(name for messages, open file)``; paths are opened (and closed) here."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            file = path.open("rb")
        except OSError as exc:
            raise ImportFileError(
                f"can't read the import file {path}: {exc.strerror or exc}; check the path"
            ) from None
        with file:
            yield str(path), file
        return
    if not source.seekable():
        raise ImportFileError(
            "the import file must be seekable (it is read twice: checked, then written); "
            "pass a path or a regular file"
        )
    name = getattr(source, "name", None)
    yield name if isinstance(name, str) else "<file>", source


@contextmanager
def _writable(dest: FileLike) -> Iterator[Callable[[bytes], object]]:
    """A function writing bytes to ``dest``; a path is replaced atomically at the end."""
    if not isinstance(dest, (str, os.PathLike)):
        if isinstance(dest, io.TextIOBase):
            yield lambda data: dest.write(data.decode())
        else:
            yield dest.write
        dest.flush()
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file.write
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


@contextmanager
def _progress_bar(
    progress: bool | None, operation: str, total: Callable[[], int]
) -> Iterator[tqdm[Any] | None]:
    """A tqdm bar on stderr when it is a terminal (or ``progress=True``), else ``None``."""
    show = progress if progress is not None else bool(sys.stderr and sys.stderr.isatty())
    if not show:
        yield None
        return
    from tqdm import tqdm

    # Follow the terminal's size, unless it reports none (a bare pseudo-terminal):
    # tqdm would then hide the bar.
    sized = _terminal_columns() > 0
    with tqdm(
        total=total(),
        desc=operation,
        unit=" keys",
        file=sys.stderr,
        dynamic_ncols=sized,
        ncols=None if sized else 80,
        nrows=None if sized else 24,
    ) as bar:
        yield bar


def _terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


def _check_batch_size(batch_size: int) -> None:
    if type(batch_size) is not int or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
