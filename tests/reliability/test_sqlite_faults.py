"""fs-lite faults not covered by ``tests/test_sqlite.py``: a full disk, a read-only
file system or file, permission denied, file modes, a writer holding the lock
while threads write. Each ends in a typed, clear error, and the data that was
there before is intact afterwards.

Real file systems, no mocks: a small tmpfs is mounted for the full disk and a
read-only bind mount for the read-only folder (the tests run as root, here and
in CI), and a forked child drops to an unprivileged user for permissions.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hubkv
from hubkv import ConfigError, DriverError

NOBODY = 65534
DATA = {f"kept:{i:03d}": {"i": i, "pad": "x" * 200} for i in range(200)}


def _mount(*args: str) -> None:
    """Run mount(8); failing (not root?) fails the test: these faults need it."""
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed (the fault tests run as root): {result.stderr}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that fills up."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount_point))
    yield mount_point
    _umount(mount_point)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder that an unprivileged user can enter (pytest's tmp_path is root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="hubkv-faults-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def _stored(path: Path) -> hubkv.KV:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set_many(DATA)
    return store


def _assert_intact(path: Path, extra: dict[str, Any] | None = None) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    expected = {**DATA, **(extra or {})}
    assert store.get_many(list(expected)) == expected
    assert sorted(store.keys()) == sorted(expected)
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def as_user(uid: int, work: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Run ``work`` in a forked child that dropped root for ``uid``; return its results."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result, code = {"crash": f"{type(exc).__name__}: {exc}"}, 1
        os.write(write_end, json.dumps(result).encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    result: dict[str, str] = json.loads(output)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def outcome(call: Callable[[], object]) -> str:
    """ "ok: value" or "ErrorType: message", for the parent to check."""
    try:
        return f"ok: {call()!r}"
    except Exception as exc:  # noqa: BLE001 - the type is what is checked
        return f"{type(exc).__name__}: {exc}"


# -- a full disk ------------------------------------------------------------------


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full; return it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (65536, 512):
            try:
                while file.write(b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_under_load_is_a_clear_error_and_loses_nothing(
    tiny_fs: Path, figures: Counter[str]
) -> None:
    path = tiny_fs / "kv.sqlite3"
    store = _stored(path)
    acknowledged: dict[str, dict[str, int]] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        try:
            for i in range(100_000):
                key = f"w{worker}:{i:06d}"
                if i % 10 == 0:
                    batch = {f"{key}:{j}": {"j": j} for j in range(20)}
                    store.set_many(batch)
                    with lock:
                        acknowledged.update(batch)
                else:
                    store.set(key, {"i": i})
                    with lock:
                        acknowledged[key] = {"i": i}
        except BaseException as exc:  # noqa: BLE001 - checked below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    filler = _fill(tiny_fs)
    for thread in threads:
        thread.join()

    # Every writer stopped on the full disk, with a typed error that says so
    # (a batch too: not "cannot rollback", which hid it before).
    assert len(failures) == 4
    for failure in failures:
        assert isinstance(failure, DriverError), repr(failure)
        assert "disk is full" in str(failure) and str(path) in str(failure)
    with pytest.raises(DriverError, match="disk is full"):
        store.set_many({f"late:{j}": "y" * 500 for j in range(50)})
    figures["faults: full disk, writers stopped with a clear error"] += len(failures) + 1

    # Reads work on the full disk; everything acknowledged is there, no half batch.
    assert store.get_many(list(acknowledged)) == acknowledged
    assert store.get_many(list(DATA)) == DATA
    assert store.keys("late:") == []
    figures["faults: keys checked after a full disk"] += len(acknowledged) + len(DATA)

    filler.unlink()  # space again: writes work again, nothing was lost
    store.set("after", 1)
    store.close()
    _assert_intact(path, {**acknowledged, "after": 1})


# -- read-only ---------------------------------------------------------------------


def test_read_only_file_system_is_a_clear_error_and_the_data_intact(
    tmp_path: Path, figures: Counter[str]
) -> None:
    folder = tmp_path / "data"
    path = folder / "kv.sqlite3"
    _stored(path).close()
    before = {item.name: item.read_bytes() for item in folder.iterdir()}
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    _mount("--bind", str(folder), str(read_only))
    try:
        _mount("-o", "remount,bind,ro", str(read_only))
        store = hubkv.KV("fs-lite", path=str(read_only / "kv.sqlite3"))
        for call in (
            lambda: store.get("kept:001"),
            lambda: store.set("new", 1),
            lambda: store.set_many({"new": 1}),
        ):
            with pytest.raises(DriverError, match="Read-only file system") as info:
                call()
            assert str(read_only / "kv.sqlite3") in str(info.value)
            figures["faults: read-only file system"] += 1
        store.close()
    finally:
        _umount(read_only)
    assert {item.name: item.read_bytes() for item in folder.iterdir()} == before
    _assert_intact(path)


def test_read_only_file_reads_and_refuses_writes_clearly(
    shared_dir: Path, figures: Counter[str]
) -> None:
    folder = shared_dir / "data"
    path = folder / "kv.sqlite3"
    _stored(path).close()
    for item in (folder, *folder.iterdir()):
        os.chown(item, NOBODY, NOBODY)
    path.chmod(0o400)

    def work() -> dict[str, str]:
        store = hubkv.KV("fs-lite", path=str(path))
        return {
            "get": outcome(lambda: store.get("kept:007")),
            "keys": outcome(lambda: len(store.keys("kept:"))),
            "set": outcome(lambda: store.set("new", 1)),
            "set_many": outcome(lambda: store.set_many({"new": 1, "other": 2})),
            "delete": outcome(lambda: store.delete("kept:001")),
            "clear": outcome(lambda: store.clear()),
        }

    result = as_user(NOBODY, work)
    assert result["get"] == f"ok: {DATA['kept:007']!r}"
    assert result["keys"] == f"ok: {len(DATA)}"
    for write in ("set", "set_many", "delete", "clear"):
        assert result[write].startswith("DriverError: "), result[write]
        assert "read-only" in result[write] and str(path) in result[write]
        figures["faults: read-only file, write refused"] += 1
    path.chmod(0o600)
    _assert_intact(path)


def test_permission_denied_is_a_clear_error_and_the_data_intact(
    shared_dir: Path, figures: Counter[str]
) -> None:
    private = shared_dir / "private" / "kv.sqlite3"  # root's folder, 0700
    open_folder = shared_dir / "open"  # a folder anyone can enter, root's file 0600
    open_folder.mkdir(mode=0o755)
    open_folder.chmod(0o755)
    exposed = open_folder / "kv.sqlite3"
    for path in (private, exposed):
        _stored(path).close()
    assert private.parent.stat().st_mode & 0o777 == 0o700
    assert exposed.stat().st_mode & 0o777 == 0o600

    def work() -> dict[str, str]:
        result = {}
        for name, path in (("private", private), ("exposed", exposed)):
            store = hubkv.KV("fs-lite", path=str(path))
            result[f"{name} get"] = outcome(lambda store=store: store.get("kept:001"))
            result[f"{name} set"] = outcome(lambda store=store: store.set("new", 1))
        return result

    for name, text in as_user(NOBODY, work).items():
        assert text.startswith("DriverError: "), (name, text)
        assert "Permission denied" in text and "permissions" in text, text
        figures["faults: permission denied"] += 1
    _assert_intact(private)
    _assert_intact(exposed)


# -- file modes -------------------------------------------------------------------

MODES = """
import json, os, sys, hubkv
os.umask(0)  # the most permissive umask: the files must be private anyway
path = sys.argv[1]
store = hubkv.KV("fs-lite", path=path)
store.set("a", 1)
folder = os.path.dirname(path)
print(json.dumps({name: os.stat(os.path.join(folder, name)).st_mode & 0o777
                  for name in os.listdir(folder)} | {".": os.stat(folder).st_mode & 0o777}))
"""


def test_store_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "kv.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MODES), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    modes = json.loads(result.stdout)
    # The database and its WAL and shared-memory files (they hold data too).
    for name in ("kv.sqlite3", "kv.sqlite3-wal", "kv.sqlite3-shm"):
        assert modes[name] == 0o600, (name, oct(modes[name]))
    assert modes["."] == 0o700
    assert not any(mode & 0o022 for mode in modes.values()), modes  # nothing writable by others


def test_world_writable_folder_or_file_is_warned_about(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.warns(UserWarning, match="writable by every user") as record:
        hubkv.KV("fs-lite", path=str(folder / "kv.sqlite3")).set("a", 1)
    assert str(folder) in str(record[0].message)

    sticky = tmp_path / "sticky"  # like /tmp: others can't delete, but can plant files
    sticky.mkdir()
    sticky.chmod(0o1777)
    with pytest.warns(UserWarning, match="writable by every user"):
        hubkv.KV("fs-lite", path=str(sticky / "kv.sqlite3")).get("a")

    private = tmp_path / "private" / "kv.sqlite3"
    hubkv.KV("fs-lite", path=str(private)).set("a", 1)
    private.chmod(0o666)
    with pytest.warns(UserWarning, match="writable by every user"):
        hubkv.KV("fs-lite", path=str(private)).get("a")

    private.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a private store warns about nothing
        assert hubkv.KV("fs-lite", path=str(private)).get("a") == 1


# -- the write lock under load ----------------------------------------------------

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES ('holder', '1', NULL)")
print("holding", flush=True)
sys.stdin.readline()  # hold the write lock until told
conn.execute("COMMIT")
"""


def test_another_process_holding_the_lock_stops_writers_cleanly(
    tmp_path: Path, figures: Counter[str]
) -> None:
    """Threads writing while another process holds the write lock past the busy
    timeout: each write fails with a clear error, reads go on, nothing is lost,
    and writes work again once the lock is released."""
    path = tmp_path / "kv.sqlite3"
    _stored(path).close()
    store = hubkv.KV("fs-lite", path=str(path), timeout=0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "holding"
    errors: list[BaseException] = []
    reads: list[bool] = []

    def work(worker: int) -> None:
        for attempt in range(3):
            try:
                if attempt % 2:
                    store.set_many({f"t{worker}:{attempt}:{j}": j for j in range(5)})
                else:
                    store.set(f"t{worker}:{attempt}", attempt)
            except BaseException as exc:  # noqa: BLE001 - checked below
                errors.append(exc)
            reads.append(store.get("kept:001") == DATA["kept:001"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 4 * 3
    for error in errors:
        assert isinstance(error, DriverError) and "write lock" in str(error), repr(error)
    assert all(reads) and len(reads) == 12  # readers are not blocked (WAL)
    figures["faults: lock held past the timeout, writes refused clearly"] += len(errors)
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 0
    assert store.keys("t") == []  # nothing half-written
    store.set("after", 1)
    store.close()
    _assert_intact(path, {"holder": 1, "after": 1})  # its '1' is the JSON 1


def test_regression_huge_timeout_is_refused_not_wrapped_to_no_wait(tmp_path: Path) -> None:
    """SQLite's busy timeout is an int of milliseconds: timeout=3e6 (35 days)
    wrapped around and a locked store failed at once."""
    for timeout in (3e6, float("inf"), float("nan"), -1):
        with pytest.raises(ConfigError, match="timeout"):
            hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"), timeout=timeout)
    assert hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"), timeout=2_000_000).driver
