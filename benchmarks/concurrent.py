"""Several processes writing to one store at once: throughput, errors, lost keys.

Each round gives every persistent store a fresh, already created file; then
``WRITERS`` processes (a pool started once, so interpreter start-up is not
timed) open it, wait for a common start time, and each ``set``s its own
``count`` keys one by one. A write that raises counts as an error; a write
that returned but whose key is missing or wrong afterwards counts as lost.
Throughput is every acknowledged write over the time from the first start to
the last finish.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .stores import PERSISTENT, open_store
from .workload import folder_name, rotated, value

__all__ = ["WRITERS", "write_concurrently"]

WRITERS = 4
#: Seconds between handing out the work and the common start.
_START_DELAY = 0.5


def _key(writer: int, i: int) -> str:
    return f"cache:w{writer}:{i:08d}"


def _writer(task: tuple[str, str, int, int, float]) -> dict[str, Any]:
    """One writer process: open, wait for ``start_at``, set ``count`` keys, close."""
    name, folder, writer, count, start_at = task
    store = open_store(name, folder)
    store.has(_key(writer, 0))  # first-use costs (schema checks) before the start
    written: list[int] = []
    errors: list[str] = []
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    for i in range(count):
        try:
            store.set(_key(writer, i), value(i))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        else:
            written.append(i)
    finished = time.time()
    try:
        store.close()  # sqlitedict commits in a thread: its failures surface here
    except Exception as exc:
        errors.append(f"close: {type(exc).__name__}: {exc}")
    return {"written": written, "errors": errors, "started": started, "finished": finished}


def write_concurrently(
    names: Sequence[str], count: int, rounds: int, folder: Path, log: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """For each persistent store, ``rounds`` rounds of ``WRITERS`` x ``count`` writes.

    Returns ``{store: [{"throughput", "errors", "lost", "first_error"}, ...]}``.
    """
    stores = [name for name in names if name in PERSISTENT]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in stores}
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        for round_ in range(rounds):
            for name in rotated(stores, round_):
                log(f"{WRITERS} writer processes, round {round_ + 1}/{rounds}: {name}")
                path = folder / f"round-{round_ + 1}" / folder_name(name)
                open_store(name, path).close()  # created (schema, WAL) before the writers
                start_at = time.time() + _START_DELAY
                tasks = [(name, str(path), writer, count, start_at) for writer in range(WRITERS)]
                outcomes = pool.map(_writer, tasks, chunksize=1)
                results[name].append(_check(name, path, outcomes))
                shutil.rmtree(path, ignore_errors=True)
    return results


def _check(name: str, path: Path, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput, errors and lost keys of one round."""
    store = open_store(name, path)
    lost = 0
    try:
        for writer, outcome in enumerate(outcomes):
            for i in outcome["written"]:
                if store.get(_key(writer, i)) != value(i):
                    lost += 1
    finally:
        store.close()
    acknowledged = sum(len(outcome["written"]) for outcome in outcomes)
    errors = [error for outcome in outcomes for error in outcome["errors"]]
    seconds = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    return {
        "writes": acknowledged,
        "seconds": seconds,
        "throughput": acknowledged / seconds if seconds > 0 else 0.0,
        "errors": len(errors),
        "lost": lost,
        "first_error": errors[0] if errors else None,
    }
