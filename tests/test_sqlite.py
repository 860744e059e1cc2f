"""fs-lite specifics, with real files, threads and processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hubkv
from hubkv import DriverError, KVError
from hubkv.drivers.sqlite import APPLICATION_ID, SCHEMA_VERSION, SQLiteDriver


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "kv.sqlite3"


def _run(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_file_and_folders_are_created_private(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    assert not path.exists()  # created on first use, not on construction
    store.set("a", 1)
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_path_under_a_regular_file_is_a_driver_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    store = hubkv.KV("fs-lite", path=str(tmp_path / "file" / "kv.sqlite3"))
    with pytest.raises(DriverError, match="can't create or open"):
        store.set("a", 1)


def test_default_path_is_under_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("HUBKV_")]:
        monkeypatch.delenv(name)
    store = hubkv.KV("fs-lite")
    store.set("a", 1)
    assert (tmp_path / ".data" / "kv.sqlite3").is_file()
    monkeypatch.chdir("/")
    assert store.get("a") == 1  # the path was made absolute at creation


def test_threads_share_one_store(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(150):
                store.set(f"t{worker}:{i}", {"w": worker, "i": i})
                assert store.get(f"t{worker}:{i}") == {"w": worker, "i": i}
                if i % 50 == 0:
                    store.set_many({f"t{worker}:batch:{i}:{j}": j for j in range(20)})
                    store.keys(f"t{worker}:")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for worker in range(8):
        assert len(store.keys(f"t{worker}:")) == 150 + 3 * 20
    store.close()


def test_close_while_other_threads_query(path: Path) -> None:
    """close() under running queries neither crashes nor fails them; idle connections close."""
    store = hubkv.KV("fs-lite", path=str(path))
    store.set_many({f"k{i}": i for i in range(200)})
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                assert len(store.keys("k")) == 200
                store.get("k1")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(50):
        store.close()
        time.sleep(0.002)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    own = store.driver._conn()  # type: ignore[attr-defined]
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        own.execute("SELECT 1")  # this thread's connection was closed at once
    assert store.get("k1") == 1  # and the store reopens on use


WRITER = """
import sys, hubkv
store = hubkv.KV("fs-lite", path=sys.argv[1], timeout=60)
worker = sys.argv[2]
for i in range(int(sys.argv[3])):
    store.set(f"p{worker}:{i:05d}", {"worker": worker, "i": i})
    if i % 100 == 0:
        store.set_many({f"p{worker}:batch:{i}:{j}": j for j in range(10)})
        store.get(f"p{worker}:{i:05d}")
print("done", flush=True)
"""


def test_four_processes_write_at_once(path: Path) -> None:
    hubkv.KV("fs-lite", path=str(path)).set("init", True)
    writers = [_run(WRITER, str(path), str(n), "400") for n in range(4)]
    results = [writer.communicate(timeout=120) for writer in writers]
    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err
        assert out.strip() == "done"
    store = hubkv.KV("fs-lite", path=str(path))
    for n in range(4):
        assert len(store.keys(f"p{n}:")) == 400 + 4 * 10
        assert store.get(f"p{n}:00399") == {"worker": str(n), "i": 399}


def test_first_use_races_between_processes(tmp_path: Path) -> None:
    """Many processes creating the same new file at once: one schema, no errors."""
    path = tmp_path / "race" / "kv.sqlite3"
    writers = [_run(WRITER, str(path), str(n), "20") for n in range(4)]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    assert len(hubkv.KV("fs-lite", path=str(path)).keys()) == 4 * (20 + 10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_forked_child_gets_its_own_connection(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set("parent", 1)
    pid = os.fork()
    if pid == 0:  # the child: must not use the parent's connection
        code = 0
        try:
            store.set("child", 2)
            assert store.get("parent") == 1
            assert store.keys() == ["child", "parent"]
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection still works after the child exited.
    assert store.get("child") == 2
    store.set("after", 3)
    assert store.keys() == ["after", "child", "parent"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


KILLED_WRITER = """
import sys, hubkv
store = hubkv.KV("fs-lite", path=sys.argv[1])
i = 0
while True:
    store.set(f"k:{i:07d}", {"i": i, "pad": "x" * 200})
    print(i, flush=True)  # acknowledged: set() returned
    i += 1
"""


def test_sigkill_mid_stream_loses_nothing_acknowledged(path: Path) -> None:
    hubkv.KV("fs-lite", path=str(path)).set("init", True)
    writer = _run(KILLED_WRITER, str(path))
    assert writer.stdout is not None
    acknowledged = -1
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 1500:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    # Whatever was printed after our last read was acknowledged too.
    rest = writer.stdout.read().split()
    if rest:
        acknowledged = int(rest[-1])
    store = hubkv.KV("fs-lite", path=str(path))
    keys = store.keys("k:")
    assert len(keys) >= acknowledged + 1
    assert keys[: acknowledged + 1] == [f"k:{i:07d}" for i in range(acknowledged + 1)]
    assert store.get(f"k:{acknowledged:07d}") == {"i": acknowledged, "pad": "x" * 200}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_file_that_is_not_a_database_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"this is not a database\n" * 100
    path.write_bytes(garbage)
    store = hubkv.KV("fs-lite", path=str(path))
    with pytest.raises(KVError) as info:
        store.get("a")
    assert str(path) in str(info.value)
    with pytest.raises(KVError):
        store.set("a", 1)
    assert path.read_bytes() == garbage


def test_a_corrupt_hubkv_file_is_refused_untouched(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set_many({f"k{i}": "v" * 100 for i in range(500)})
    store.close()
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    data[4096 : 4096 * 3] = os.urandom(4096 * 2)  # overwrite pages after the header
    path.write_bytes(bytes(data))
    fresh = hubkv.KV("fs-lite", path=str(path))
    with pytest.raises(DriverError) as info:
        for i in range(500):
            fresh.get(f"k{i}")
        fresh.keys()
    assert str(path) in str(info.value)
    assert path.read_bytes() == bytes(data)


def test_a_foreign_sqlite_database_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DriverError, match="not a hubkv store"):
        hubkv.KV("fs-lite", path=str(path)).set("a", 1)
    assert path.read_bytes() == before


def test_an_empty_foreign_file_with_a_user_version_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=7")  # no tables, application_id 0: not ours either
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DriverError, match="not a hubkv store"):
        hubkv.KV("fs-lite", path=str(path)).set("a", 1)
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused_not_downgraded(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set("a", 1)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DriverError, match="newer hubkv"):
        hubkv.KV("fs-lite", path=str(path)).get("a")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_an_empty_file_becomes_a_store(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.touch()
    store = hubkv.KV("fs-lite", path=str(path))
    store.set("a", 1)
    assert store.get("a") == 1


def test_a_writer_holding_the_lock_too_long_gives_a_clear_error(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path), timeout=0.2)
    store.set("a", 1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DriverError, match="write lock") as info:
            store.set("a", 2)
        assert str(path) in str(info.value)
        assert store.get("a") == 1  # readers are not blocked by the writer (WAL)
    finally:
        blocker.execute("ROLLBACK")
    store.set("a", 3)
    assert store.get("a") == 3


def test_prefix_queries_are_index_range_scans(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set("a", 1)
    conn = sqlite3.connect(path)
    from hubkv.drivers.sqlite import _LIVE, _prefix_range

    where, params = _prefix_range("users:42:")
    plan = conn.execute(
        f"EXPLAIN QUERY PLAN SELECT key FROM kv WHERE {where} AND {_LIVE} ORDER BY key",
        (*params, time.time()),
    ).fetchall()
    detail = " ".join(row[-1] for row in plan)
    assert "SEARCH kv USING PRIMARY KEY (key>? AND key<?)" in detail, detail
    assert "SCAN" not in detail


def test_expired_rows_are_purged_in_batches(path: Path) -> None:
    driver = SQLiteDriver(path=str(path))
    store = hubkv.KV(driver)
    store.set("keep", 1)
    raw = sqlite3.connect(path)
    past = time.time() - 1  # 1,200 rows that expired a second ago
    raw.executemany(
        "INSERT INTO kv VALUES (?, ?, ?)", [(f"tmp:{i}", b"1", past) for i in range(1200)]
    )
    raw.commit()
    assert store.keys() == ["keep"]
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM kv").fetchone()[0]
    assert rows == 1201  # hidden, not yet deleted
    assert driver.purge_expired(limit=500) == 500
    # writes purge as they go: enough of them empty the backlog
    for i in range(3000):
        store.set(f"w{i % 10}", i)
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM kv").fetchone()[0]
    assert rows == 11


def test_synchronous_option(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path), synchronous="full")
    store.set("a", 1)
    assert store.get("a") == 1
    with pytest.raises(hubkv.ConfigError, match="synchronous"):
        hubkv.KV("fs-lite", path=str(path), synchronous="off")


def test_purging_keeps_pace_with_a_ttl_workload(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path))
    store.set("first", 0)
    rows = sqlite3.connect(path)

    def count() -> int:
        return int(rows.execute("SELECT count(*) FROM kv").fetchone()[0])

    # Sessions-style: every write a new key with a short TTL, one at a time and in batches.
    for i in range(6000):
        store.set(f"session:{i}", i, ttl=0.001)
    time.sleep(0.01)
    store.set_many({f"rate:{i}": i for i in range(20_000)}, ttl=0.001)
    time.sleep(0.01)
    store.set_many({f"flag:{i}": i for i in range(1000)})  # permanent; the purge runs after
    assert count() <= 1001 + 1000  # the live keys, plus at most one purge interval behind
    assert store.keys() == sorted(["first", *(f"flag:{i}" for i in range(1000))])


# -- read-only -----------------------------------------------------------------------


def test_read_only_never_creates_a_file(path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(path), read_only=True)
    with pytest.raises(DriverError, match="no such file") as info:
        store.get("a")
    assert str(path) in str(info.value)
    assert not path.parent.parent.exists()
    with pytest.raises(hubkv.ReadOnlyError):
        store.set("a", 1)


def test_read_only_reads_what_writers_write(path: Path) -> None:
    writer = hubkv.KV("fs-lite", path=str(path))
    writer.set("a", 1)
    reader = hubkv.KV("fs-lite", path=str(path), read_only=True)
    assert reader.get("a") == 1
    writer.set_many({"b": 2, "c": 3})
    assert reader.keys() == ["a", "b", "c"]
    assert reader.driver.read_only  # the file itself is opened read-only
    with pytest.raises(hubkv.ReadOnlyError):
        reader.clear()
    conn = reader.driver._conn()  # type: ignore[attr-defined]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM kv")
    assert writer.keys() == ["a", "b", "c"]


@pytest.mark.parametrize(("version", "message"), [(0, "older hubkv"), (SCHEMA_VERSION + 1, "newer hubkv")])
def test_read_only_refuses_other_schemas_without_touching_them(
    path: Path, version: int, message: str
) -> None:
    hubkv.KV("fs-lite", path=str(path)).set("a", 1)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={version}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(DriverError, match=message):
        hubkv.KV("fs-lite", path=str(path), read_only=True).get("a")
    assert path.read_bytes() == before
