"""Soak: several processes x several threads mixing every operation, with TTLs,
on one store; then a full consistency check against what was acknowledged.

Each thread owns its keys (see :mod:`tests.reliability.soak_worker`), so the
final state is predictable: every key holds exactly the last acknowledged
write (nothing lost), keys deleted or expired are gone (nothing resurrected).
On fs-lite one more process is SIGKILLed mid-run: its acknowledged writes
must survive too, and its one unacknowledged write per thread may or may not
have happened, but nothing else. No exception ("database is locked" or any
other) may reach a caller.

Sized by ``--soak-seconds`` (a few seconds in CI) and bounded in operations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import hubkv

from .soak_worker import Entry, Spec, apply

ROOT = Path(__file__).resolve().parents[2]
MAX_OPS_PER_THREAD = 50_000
LONG_TTL = 3600.0
SHORT_TTL = 0.3


@dataclasses.dataclass
class Journal:
    """What one process said: its writes (begun, acknowledged), errors and counts."""

    begun: dict[int, list[tuple[int, dict[str, Any]]]]
    acked: dict[int, set[int]]
    errors: list[str]
    counts: Counter[str]
    finished_threads: int


def read_journal(path: Path) -> Journal:
    journal = Journal({}, {}, [], Counter(), 0)
    for line in path.read_text().splitlines():
        kind, thread_text, rest = (line.split(" ", 2) + [""])[:3]
        thread = int(thread_text)
        if kind == "B":
            seq, op = rest.split(" ", 1)
            journal.begun.setdefault(thread, []).append((int(seq), json.loads(op)))
        elif kind == "A":
            journal.acked.setdefault(thread, set()).add(int(rest))
        elif kind == "E":
            journal.errors.append(f"thread {thread}: {json.loads(rest)}")
        elif kind == "S":
            journal.counts.update(json.loads(rest))
            journal.finished_threads += 1
        else:
            raise AssertionError(f"unexpected journal line {line!r}")
    return journal


def expected_state(journal: Journal, killed: bool) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(key -> value that must be there, key -> the states allowed for keys that
    a write cut short by SIGKILL may or may not have changed)."""
    must: dict[str, Any] = {}
    either: dict[str, list[Any]] = {}
    for thread, ops in journal.begun.items():
        acked = journal.acked.get(thread, set())
        record: dict[str, Entry] = {}
        for position, (seq, op) in enumerate(ops):
            if seq in acked:
                apply(record, op, 0.0, 0.0)  # expiry = ttl: short ones are past by now
                continue
            assert killed and position == len(ops) - 1, (
                f"write {seq} of thread {thread} never acknowledged"
            )
            after = dict(record)
            apply(after, op, 0.0, 0.0)
            for key in set(record) | set(after):
                if record.get(key) != after.get(key):
                    either[key] = [_live_value(record.get(key)), _live_value(after.get(key))]
        for key, entry in record.items():
            if key not in either and _live_value(entry) is not None:
                must[key] = entry[0]
    return must, either


def _live_value(entry: Entry | None) -> Any:
    """The value a key holds once the short TTLs are past (None: absent)."""
    if entry is None or (entry[1] is not None and entry[1] < LONG_TTL):
        return None
    return entry[0]


def run_soak(
    tmp_path: Path,
    driver: str,
    options: dict[str, Any],
    *,
    processes: int,
    threads: int,
    seconds: float,
    short_ttl: float | None,
    killed_threads: int = 0,
) -> dict[str, Any]:
    """Run the soak and check the store; return the figures."""
    base = {"driver": driver, "options": options, "threads": threads, "seconds": seconds}
    base |= {
        "max_ops": MAX_OPS_PER_THREAD,
        "keys": 24,
        "short_ttl": short_ttl,
        "long_ttl": LONG_TTL,
    }
    specs = [Spec(**base, process=p, seed=p + 1) for p in range(processes)]
    if killed_threads:  # runs past the others' end unless killed: it is killed halfway
        specs.append(
            Spec(
                **{**base, "threads": killed_threads, "seconds": seconds * 10},
                process=processes,
                seed=99,
            )
        )
    running = []
    for spec in specs:
        path = tmp_path / f"journal-{spec.process}.txt"
        with path.open("wb") as out:
            running.append(
                (
                    spec,
                    path,
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.reliability.soak_worker",
                            json.dumps(dataclasses.asdict(spec)),
                        ],
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
    if killed_threads:
        time.sleep(seconds / 2 + 0.5)  # + start-up
        os.kill(running[-1][2].pid, signal.SIGKILL)
    figures: Counter[str] = Counter()
    musts: dict[str, Any] = {}
    eithers: dict[str, list[Any]] = {}
    for spec, path, process in running:
        killed = spec.process == processes
        _, err = process.communicate(timeout=seconds * 10 + 120)
        if killed:
            assert process.returncode == -signal.SIGKILL
        else:
            assert process.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
        journal = read_journal(path)
        assert journal.errors == [], journal.errors[:5]
        if not killed:
            assert journal.finished_threads == spec.threads
        must, either = expected_state(journal, killed)
        musts |= must
        eithers |= either
        figures["operations"] += (
            sum(journal.counts.values())
            + sum(len(acked) for acked in journal.acked.values()) * killed
        )
        figures["writes acknowledged"] += sum(len(acked) for acked in journal.acked.values())
        figures["threads"] += spec.threads
    time.sleep((short_ttl or 0) + 0.2)  # every short TTL is past

    store = hubkv.KV(driver, **options)
    found = store.get_many(store.keys())
    lost = {key: value for key, value in musts.items() if found.get(key) != value}
    unexpected = {
        key: value for key, value in found.items() if key not in musts and key not in eithers
    }
    unsure = {
        key: found.get(key) for key, allowed in eithers.items() if found.get(key) not in allowed
    }
    store.close()
    assert lost == {}, f"{len(lost)} acknowledged keys lost or changed"
    assert unexpected == {}, f"{len(unexpected)} deleted or expired keys came back"
    assert unsure == {}, "a write cut short by SIGKILL left a state it could not have made"
    figures["processes"] = len(specs)
    figures["keys checked"] = len(set(musts) | set(found) | set(eithers))
    figures["keys lost"] = len(lost) + len(unexpected) + len(unsure)
    return dict(figures)


def _record(figures: Counter[str], name: str, result: dict[str, Any]) -> None:
    for item, value in result.items():
        figures[f"soak {name}: {item}"] += value


def test_soak_fs_lite_processes_threads_and_a_sigkill(
    tmp_path: Path, soak_seconds: float, figures: Counter[str]
) -> None:
    path = tmp_path / "soak" / "kv.sqlite3"
    assert not hubkv.KV("fs-lite", path=str(path)).has("init")  # the file exists before the race
    result = run_soak(
        tmp_path,
        "fs-lite",
        {"path": str(path)},
        processes=3,
        threads=4,
        seconds=soak_seconds,
        short_ttl=SHORT_TTL,
        killed_threads=2,
    )
    _record(figures, "fs-lite", result)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("driver", ["redis", "upstash", "cloudflare-kv-binding"])
def test_soak_remote_drivers_at_moderate_concurrency(
    driver: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    soak_seconds: float,
    figures: Counter[str],
) -> None:
    """Two processes x three threads against the local stand-ins (Cloudflare: no
    short TTLs, its shortest is 60 s)."""
    base = f"soak{os.getpid()}"
    short_ttl: float | None = SHORT_TTL
    if driver == "redis":
        options: dict[str, Any] = {"url": request.getfixturevalue("redis_server").url, "base": base}
    elif driver == "upstash":
        rest = request.getfixturevalue("upstash_rest")
        options = {"url": rest.url, "token": rest.token, "base": base}
    else:
        cloudflare = request.getfixturevalue("cloudflare_kv")
        options = cloudflare.options(request.getfixturevalue("cloudflare_namespace"))
        short_ttl = None
    hubkv.KV(driver, **options).clear()
    result = run_soak(
        tmp_path,
        driver,
        options,
        processes=2,
        threads=3,
        seconds=max(1.0, soak_seconds / 2),
        short_ttl=short_ttl,
    )
    _record(figures, driver, result)
