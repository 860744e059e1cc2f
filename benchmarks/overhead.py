"""Where fs-lite's time goes beyond raw sqlite3, layer by layer, for get and has.

The same random reads run through five callables that add one layer of
hubkv at a time, taking turns chunk by chunk like every other phase:

1. raw sqlite3: the hand-written store (its own file, the same rows);
2. fs-lite's SQL: its statement on its connection and file (the extra
   ``expires_at`` column read, the expiry checked in Python), then decode;
3. + key validation: :func:`hubkv.store.validate_key` first;
4. + driver: the driver's method instead of the inline statement;
5. hubkv ``KV``: the public method (its call, the type/default handling).

The differences between rows are what each layer costs per call.
"""

from __future__ import annotations

import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hubkv
from hubkv import codec
from hubkv.store import validate_key

from .stores import HUBKV, RAW, open_store
from .workload import Job, chunked, folder_name, load, run_interleaved, user_key

__all__ = ["layers"]

_GET = "SELECT value, expires_at FROM kv WHERE key = ?"
_HAS = "SELECT expires_at FROM kv WHERE key = ?"


def layers(
    keys: int, reads: int, repetitions: int, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """``{"get": [{"layer", "ns"}], "has": [...]}``: median ns per call of each layer."""
    log(f"overhead: loading {keys:,} keys into raw sqlite3 and fs-lite")
    stores = {name: open_store(name, folder / folder_name(name)) for name in (RAW, HUBKV)}
    for loaded in stores.values():
        load(loaded, keys)
        loaded.close()  # checkpointed, like every phase's start
    raw = open_store(RAW, folder / folder_name(RAW))
    path = str(folder / folder_name(HUBKV) / "kv.sqlite3")
    # Every layer has a connection of its own, as raw sqlite3 has: layers
    # sharing one would find its caches warm from each other's turns.
    opened: list[hubkv.KV] = []

    def fresh() -> hubkv.KV:
        opened.append(hubkv.KV("fs-lite", path=path))
        opened[-1].has(user_key(0))
        return opened[-1]

    def connection() -> Any:
        driver: Any = fresh().driver
        return driver._conn().execute  # fs-lite's own kind of connection

    decode = codec.decode_json
    execute_get, execute_validated_get = connection(), connection()
    execute_has, execute_validated_has = connection(), connection()
    get_driver, has_driver = fresh().driver, fresh().driver
    store_for_get, store_for_has = fresh(), fresh()

    def sql_get(key: str) -> Any:
        row = execute_get(_GET, (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return decode(row[0])

    def validated_get(key: str) -> Any:
        row = execute_validated_get(_GET, (validate_key(key),)).fetchone()
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        return decode(row[0])

    def sql_has(key: str) -> bool:
        row = execute_has(_HAS, (key,)).fetchone()
        return row is not None and (row[0] is None or row[0] > time.time())

    def validated_has(key: str) -> bool:
        row = execute_validated_has(_HAS, (validate_key(key),)).fetchone()
        return row is not None and (row[0] is None or row[0] > time.time())

    def driver_get(key: str) -> Any:
        data = get_driver.get(validate_key(key))
        return None if data is None else decode(data)

    def driver_has(key: str) -> bool:
        return has_driver.has(validate_key(key))

    steps = {
        "get": [
            ("raw sqlite3", raw.get),
            ("fs-lite's SQL (expires_at read and checked) + decode", sql_get),
            ("+ key validation", validated_get),
            ("+ driver method", driver_get),
            ("hubkv KV.get", store_for_get.get),
        ],
        "has": [
            ("raw sqlite3", raw.has),
            ("fs-lite's SQL (expires_at read and checked)", sql_has),
            ("+ key validation", validated_has),
            ("+ driver method", driver_has),
            ("hubkv KV.has", store_for_has.has),
        ],
    }
    rng = random.Random(8)
    results: dict[str, Any] = {}
    try:
        for operation, named in steps.items():
            per_layer: dict[str, list[float]] = {name: [] for name, _ in named}
            for repetition in range(repetitions):
                log(f"overhead: {operation}, repetition {repetition + 1}/{repetitions}")
                # Each layer its own random keys: the fs-lite layers share one
                # connection, and the same keys would find its page cache warm.
                jobs = {
                    name: Job(call, chunked([user_key(rng.randrange(keys)) for _ in range(reads)]))
                    for name, call in named
                }
                samples, errors = run_interleaved(jobs, 60.0, repetition)
                if errors:
                    raise RuntimeError(f"overhead {operation}: {errors}")
                for name, sample in samples.items():
                    per_layer[name].append(sample.seconds / sample.ops * 1e9)
            results[operation] = [
                {"layer": name, "ns": statistics.median(values), "samples": values}
                for name, values in per_layer.items()
            ]
    finally:
        raw.close()
        for store in opened:
            store.close()
        shutil.rmtree(folder, ignore_errors=True)
    return results
