"""How costs grow with the store: the same operations at 10k, 100k and 1M keys.

For each size every store is loaded once (untimed); then, for each
repetition, with the stores taking turns chunk by chunk: random gets, sets of new keys, ``keys(prefix)``
calls returning 10 keys, and ``clear(prefix)`` calls removing 10 keys (each
call its own block). A store that keeps keys in order answers the prefix
operations with a range scan, so their cost should stay flat as the store
grows; a store that must scan every key slows down in proportion.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .stores import PERSISTENT, Store, disk_bytes, open_store
from .workload import (
    Job,
    block_prefix,
    cache_key,
    chunked,
    folder_name,
    load,
    run_interleaved,
    user_key,
    value,
)

__all__ = ["ScalingSizes", "QUICK_SCALING", "FULL_SCALING", "SCALING_PHASES", "scale"]

#: Keys per block of the prefix phases.
BLOCK = 10


@dataclass(frozen=True)
class ScalingSizes:
    """How much work the scaling run does at each store size."""

    keys: tuple[int, ...]
    reads: int
    writes: int
    prefix_calls: int
    clear_calls: int
    cap: float
    repetitions: int


QUICK_SCALING = ScalingSizes(
    keys=(10_000, 100_000),
    reads=2_000,
    writes=300,
    prefix_calls=20,
    clear_calls=10,
    cap=0.1,
    repetitions=1,
)
FULL_SCALING = ScalingSizes(
    keys=(10_000, 100_000, 1_000_000),
    reads=20_000,
    writes=2_000,
    prefix_calls=200,
    clear_calls=100,
    cap=1.0,
    repetitions=3,
)
#: Phase id -> (label, unit).
SCALING_PHASES = {
    "get": ("get (random key)", "ops/s"),
    "set": ("set (new key)", "ops/s"),
    "keys10": (f"keys(prefix), {BLOCK} keys", "calls/s"),
    "clear10": (f"clear(prefix), {BLOCK} keys", "calls/s"),
}


def scale(
    names: Sequence[str], sizes: ScalingSizes, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Returns ``{"sizes": [...], "phases": {phase: {store: {size: [sample, ...]}}},
    "disk_bytes_per_key": {store: {size: value}}, "problems": [...]}``."""
    phases: dict[str, dict[str, dict[str, list[dict[str, float]]]]] = {
        phase: {name: {} for name in names} for phase in SCALING_PHASES
    }
    disk: dict[str, dict[str, float]] = {name: {} for name in names if name in PERSISTENT}
    problems: list[str] = []
    for count in sizes.keys:
        rng = random.Random(count)
        blocks = rng.sample(range(count // BLOCK), sizes.clear_calls * sizes.repetitions)
        kept = sorted(set(range(count // BLOCK)) - set(blocks))  # listed, never cleared
        opened: dict[str, Store] = {}
        for name in names:
            log(f"scaling: loading {count:,} keys into {name}")
            path = folder / f"{count}" / folder_name(name)
            store = open_store(name, path)
            load(store, count)
            if name in PERSISTENT:
                store.close()
                disk[name][str(count)] = disk_bytes(path) / count
                store = open_store(name, path)
            store.get(user_key(0))
            opened[name] = store
        for repetition in range(sizes.repetitions):
            log(f"scaling: {count:,} keys, repetition {repetition + 1}/{sizes.repetitions}")
            reads = [
                user_key(rng.choice(kept) * BLOCK + rng.randrange(BLOCK))
                for _ in range(sizes.reads)
            ]
            new = [
                (cache_key(repetition * sizes.writes + i), value(i)) for i in range(sizes.writes)
            ]
            prefixes = [block_prefix(rng.choice(kept), BLOCK) for _ in range(sizes.prefix_calls)]
            mine = blocks[repetition * sizes.clear_calls : (repetition + 1) * sizes.clear_calls]
            doomed = [block_prefix(block, BLOCK) for block in mine]
            removed: dict[str, list[int]] = {name: [] for name in opened}
            jobs = {
                "get": {name: Job(store.get, chunked(reads)) for name, store in opened.items()},
                "set": {
                    name: Job(store.set, chunked(new), spread=True)
                    for name, store in opened.items()
                },
                "keys10": {
                    name: Job(store.keys, chunked(prefixes, 1)) for name, store in opened.items()
                },
                "clear10": {
                    name: Job(_counting(store.clear, removed[name]), chunked(doomed, 1))
                    for name, store in opened.items()
                },
            }
            for phase, per_store in jobs.items():
                samples, errors = run_interleaved(per_store, sizes.cap, repetition)
                for name, sample in samples.items():
                    phases[phase][name].setdefault(str(count), []).append(asdict(sample))
                for name, exc in errors.items():
                    problems.append(f"scaling {name} at {count:,}, {phase}: {exc!r}")
                    opened.pop(name).close()
            for name, store in opened.items():
                found = store.keys(prefixes[0])
                if len(found) != BLOCK or set(removed[name]) != {BLOCK}:
                    problems.append(
                        f"scaling {name} at {count:,}: keys(prefix) gave {len(found)} keys, "
                        f"clear(prefix) removed {sorted(set(removed[name]))} (want {BLOCK})"
                    )
        for store in opened.values():
            store.close()
        shutil.rmtree(folder / f"{count}", ignore_errors=True)
    return {
        "sizes": list(sizes.keys),
        "phases": phases,
        "disk_bytes_per_key": disk,
        "problems": problems,
    }


def _counting(clear: Callable[[str], int], removed: list[int]) -> Callable[[str], None]:
    """``clear``, noting how many keys each call removed."""

    def run(prefix: str) -> None:
        removed.append(clear(prefix))

    return run
