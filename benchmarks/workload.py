"""The data, the phases, and the timed loops shared by every run.

Keys are ``users:{id:08d}:profile`` (the loaded data) and ``cache:{id:08d}``
(new keys); values are small JSON dicts. Ids are zero-padded so that a prefix
such as ``users:00042`` names exactly a block of 10, 1,000 or 10,000 keys.

A phase times one kind of operation on one store: the same operations, in the
same order, for every store. Its loop runs in chunks and stops after
``cap`` seconds, so a slow store costs bounded time; the rate is what was done
divided by the time it took. The garbage collector is off while timing (as
:mod:`timeit` does). After each timed loop an untimed check proves the store
did the work (values read back, counts of keys), so a fast wrong answer shows
up as a problem instead of a good number.

>>> user_key(42), block_prefix(3, 1000)
('users:00000042:profile', 'users:00003')
"""

from __future__ import annotations

import functools
import gc
import math
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from .stores import PERSISTENT, Store, disk_bytes, open_store

__all__ = [
    "Sizes",
    "QUICK",
    "FULL",
    "Plan",
    "Phase",
    "PHASES",
    "Sample",
    "user_key",
    "cache_key",
    "value",
    "block_prefix",
    "load",
    "timed",
    "chunked",
    "rotated",
    "folder_name",
    "compare",
]

#: Digits of the zero-padded ids.
ID_DIGITS = 8
#: Keys per call of the set_many phase.
BATCH = 1000
#: Where the set_many phase's new keys start (far above the set phase's).
BATCH_IDS = 10**7
#: Operations between two looks at the clock in a timed loop.
CHUNK = 100


@dataclass(frozen=True)
class Sizes:
    """How much work one run does."""

    keys: int  # keys loaded before the phases (a power of ten, >= 1,000)
    writes: int  # operations per write phase (set, overwrite, delete)
    reads: int  # operations per read phase (get, has, get missing)
    prefix_calls: int  # keys(prefix) calls
    batches: int  # set_many calls of BATCH keys
    opens: int  # open + get + close cycles
    cap: float  # seconds at most per store and phase (a started call finishes)
    repetitions: int


QUICK = Sizes(
    keys=10_000,
    writes=500,
    reads=2_000,
    prefix_calls=20,
    batches=3,
    opens=10,
    cap=0.1,
    repetitions=2,
)
FULL = Sizes(
    keys=100_000,
    writes=5_000,
    reads=30_000,
    prefix_calls=300,
    batches=30,
    opens=100,
    cap=1.5,
    repetitions=5,
)


def user_key(i: int) -> str:
    """A key of the loaded data."""
    return f"users:{i:0{ID_DIGITS}d}:profile"


def cache_key(i: int) -> str:
    """A key that is not loaded (written by the write phases)."""
    return f"cache:{i:0{ID_DIGITS}d}"


def value(i: int) -> dict[str, Any]:
    """A small JSON dict (about 110 bytes as JSON)."""
    return {
        "id": i,
        "name": f"user {i}",
        "email": f"user{i}@example.com",
        "active": i % 3 != 0,
        "score": i % 1000 / 10,
        "tags": ["reader", "beta"],
    }


def block_prefix(block: int, size: int) -> str:
    """The prefix of the ``users:`` keys with ids ``block*size .. block*size+size-1``."""
    digits = round(math.log10(size))
    if size != 10**digits:
        raise ValueError(f"block size must be a power of ten, got {size}")
    return f"users:{block:0{ID_DIGITS - digits}d}"


def load(store: Store, count: int, chunk: int = 10_000) -> None:
    """Write ``users`` keys ``0 .. count-1`` (untimed), ``chunk`` keys at a time."""
    bulk = store.load
    assert bulk is not None
    for start in range(0, count, chunk):
        bulk({user_key(i): value(i) for i in range(start, min(count, start + chunk))})


@dataclass
class Sample:
    """What one store did in one phase of one repetition."""

    ops: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else math.inf


def timed(
    op: Callable[..., Any],
    chunks: Sequence[Sequence[Any]],
    cap: float,
    *,
    weight: int = 1,
    spread: bool = False,
) -> Sample:
    """Call ``op(item)`` (``op(*item)`` if ``spread``) for the items of ``chunks``.

    Stops after the first chunk that ends past ``cap`` seconds; each call
    counts ``weight`` operations.
    """
    done = 0
    gc.collect()
    gc.disable()
    try:
        start = perf_counter()
        elapsed = 0.0
        for chunk in chunks:
            if spread:
                for item in chunk:
                    op(*item)
            else:
                for item in chunk:
                    op(item)
            done += len(chunk)
            elapsed = perf_counter() - start
            if elapsed > cap:
                break
    finally:
        gc.enable()
    return Sample(done * weight, elapsed)


def chunked(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of ``size`` (the timed loops' chunks)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass
class Plan:
    """The operations of one repetition, the same for every store (seeded)."""

    sizes: Sizes
    seed: int
    new: list[tuple[str, Any]] = field(init=False)
    reads: list[int] = field(init=False)
    probes: list[int] = field(init=False)
    missing: list[str] = field(init=False)
    overwrites: list[tuple[str, Any]] = field(init=False)
    prefixes: list[str] = field(init=False)
    clear_prefix: str = field(init=False)
    batches: list[dict[str, Any]] = field(init=False)
    #: An id the phases leave as loaded (read by the cold-open phase).
    kept: int = field(init=False)

    def __post_init__(self) -> None:
        sizes, rng = self.sizes, random.Random(self.seed)
        n = sizes.keys
        self.new = [(cache_key(i), value(i)) for i in range(sizes.writes)]
        self.reads = [rng.randrange(n) for _ in range(sizes.reads)]
        self.probes = [rng.randrange(n) for _ in range(sizes.reads)]
        self.missing = [
            f"users:{rng.randrange(n):0{ID_DIGITS}d}:settings" for _ in range(sizes.reads)
        ]
        rewritten = [rng.randrange(n) for _ in range(sizes.writes)]
        self.overwrites = [(user_key(i), value(i + 1)) for i in rewritten]
        self.prefixes = [
            block_prefix(rng.randrange(100), n // 100) for _ in range(sizes.prefix_calls)
        ]
        # The first tenth of the ids is never cleared; one id there is never overwritten.
        self.clear_prefix = block_prefix(rng.randrange(1, 10), n // 10)
        self.kept = min(set(range(n // 10)) - set(rewritten))
        self.batches = [
            {cache_key(BATCH_IDS + b * BATCH + j): value(j) for j in range(BATCH)}
            for b in range(sizes.batches)
        ]


@dataclass
class State:
    """What earlier phases of one repetition left in one store."""

    #: Opens the same store again (persistent stores only).
    reopen: Callable[[], Store] | None = None
    new_written: int = 0
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)


@dataclass(frozen=True)
class Phase:
    """One row of the results table."""

    id: str
    label: str
    unit: str
    run: Callable[[Store, Plan, State], Sample]
    persistent_only: bool = False


def _set_new(store: Store, plan: Plan, state: State) -> Sample:
    sample = timed(store.set, chunked(plan.new), plan.sizes.cap, spread=True)
    state.new_written = sample.ops
    key, val = plan.new[sample.ops - 1]
    state.expect(store.get(key) == val, f"set: {key} does not read back")
    return sample


def _get(store: Store, plan: Plan, state: State) -> Sample:
    keys = [user_key(i) for i in plan.reads]
    sample = timed(store.get, chunked(keys), plan.sizes.cap)
    state.expect(store.get(keys[0]) == value(plan.reads[0]), f"get: wrong value for {keys[0]}")
    return sample


def _has(store: Store, plan: Plan, state: State) -> Sample:
    keys = [user_key(i) for i in plan.probes]
    sample = timed(store.has, chunked(keys), plan.sizes.cap)
    state.expect(store.has(keys[-1]) is True, f"has: {keys[-1]} not found")
    return sample


def _get_missing(store: Store, plan: Plan, state: State) -> Sample:
    sample = timed(store.get, chunked(plan.missing), plan.sizes.cap)
    state.expect(store.get(plan.missing[0]) is None, "get missing: found a missing key")
    return sample


def _overwrite(store: Store, plan: Plan, state: State) -> Sample:
    sample = timed(store.set, chunked(plan.overwrites), plan.sizes.cap, spread=True)
    key, val = plan.overwrites[0]
    state.expect(store.get(key) == val, f"overwrite: {key} has its old value")
    return sample


def _delete(store: Store, plan: Plan, state: State) -> Sample:
    keys = [key for key, _ in plan.new[: state.new_written]]
    sample = timed(store.delete, chunked(keys), plan.sizes.cap)
    state.expect(not store.has(keys[0]), f"delete: {keys[0]} is still there")
    return sample


def _keys(store: Store, plan: Plan, state: State) -> Sample:
    sample = timed(store.keys, chunked(plan.prefixes, 1), plan.sizes.cap)
    found = store.keys(plan.prefixes[0])
    want = plan.sizes.keys // 100
    state.expect(
        len(found) == want and found == sorted(found),
        f"keys: {len(found)} keys (want {want}, sorted)",
    )
    return sample


def _clear(store: Store, plan: Plan, state: State) -> Sample:
    removed: list[int] = []

    def clear(prefix: str) -> None:
        removed.append(store.clear(prefix))

    sample = timed(clear, [[plan.clear_prefix]], plan.sizes.cap)
    want = plan.sizes.keys // 10
    state.expect(removed == [want], f"clear: removed {removed} (want {want})")
    state.expect(store.keys(plan.clear_prefix) == [], "clear: keys left under the prefix")
    return sample


def _set_many(store: Store, plan: Plan, state: State) -> Sample:
    sample = timed(store.set_many, chunked(plan.batches, 1), plan.sizes.cap, weight=BATCH)
    last = plan.batches[sample.ops // BATCH - 1]
    key = next(reversed(last))
    state.expect(store.get(key) == last[key], f"set_many: {key} does not read back")
    return sample


def _cold_open(store: Store, plan: Plan, state: State) -> Sample:
    """Open, one get, close; the store under test is closed first (lmdb refuses two opens)."""
    reopen = state.reopen
    assert reopen is not None
    store.close()
    key = user_key(plan.kept)
    seen: list[Any] = []

    def cycle(_: int) -> None:
        again = reopen()
        seen.append(again.get(key))
        again.close()

    sample = timed(cycle, chunked(range(plan.sizes.opens), 1), plan.sizes.cap)
    state.expect(seen[-1] == value(plan.kept), "cold open: the first get read a wrong value")
    return sample


PHASES: tuple[Phase, ...] = (
    Phase("set", "set (new key)", "ops/s", _set_new),
    Phase("get", "get (random key)", "ops/s", _get),
    Phase("has", "has (random key)", "ops/s", _has),
    Phase("get_missing", "get (missing key)", "ops/s", _get_missing),
    Phase("overwrite", "set (existing key)", "ops/s", _overwrite),
    Phase("delete", "delete", "ops/s", _delete),
    Phase("keys", "keys(prefix), 1% of the keys", "calls/s", _keys),
    Phase("clear", "clear(prefix), 10% of the keys", "calls/s", _clear),
    Phase("set_many", f"set_many, {BATCH:,} keys per call", "keys/s", _set_many),
    Phase("cold_open", "cold open + first get", "opens/s", _cold_open, True),
)


def rotated(names: Sequence[str], repetition: int) -> list[str]:
    """``names`` starting at a different store each repetition (round-robin)."""
    shift = repetition % len(names)
    return [*names[shift:], *names[:shift]]


def folder_name(store: str) -> str:
    """A folder name for a store's files."""
    return "".join(c if c.isalnum() else "-" for c in store)


def compare(
    names: Sequence[str], sizes: Sizes, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every phase on every store, interleaved: per repetition, per phase, each store in turn.

    Each repetition loads fresh stores with ``sizes.keys`` keys (untimed),
    notes their bytes per key on disk, then runs the phases. Returns
    ``{"phases": {phase: {store: [sample, ...]}}, "disk_bytes_per_key": {store:
    [...]}, "problems": [...]}``.
    """
    phases: dict[str, dict[str, list[dict[str, float] | None]]] = {
        phase.id: {n: [] for n in names if n in PERSISTENT or not phase.persistent_only}
        for phase in PHASES
    }
    disk: dict[str, list[float]] = {n: [] for n in names if n in PERSISTENT}
    problems: list[str] = []
    for repetition in range(sizes.repetitions):
        order = rotated(names, repetition)
        plan = Plan(sizes, seed=repetition)
        where = folder / f"repetition-{repetition + 1}"
        opened: dict[str, Store] = {}
        states: dict[str, State] = {}
        log(f"repetition {repetition + 1}/{sizes.repetitions}: loading {sizes.keys:,} keys")
        for name in order:
            path = where / folder_name(name)
            states[name] = State()
            store = open_store(name, path)
            load(store, sizes.keys)
            if name in PERSISTENT:
                store.close()
                disk[name].append(disk_bytes(path) / sizes.keys)
                states[name].reopen = functools.partial(open_store, name, path)
                store = open_store(name, path)
            store.get(user_key(plan.kept))  # first-use costs belong to the cold-open phase
            opened[name] = store
        for phase in PHASES:
            log(f"repetition {repetition + 1}/{sizes.repetitions}: {phase.label}")
            for name in order:
                if name not in phases[phase.id]:
                    continue
                if name not in opened:  # it failed earlier in this repetition
                    phases[phase.id][name].append(None)
                    continue
                try:
                    sample = phase.run(opened[name], plan, states[name])
                except Exception as exc:  # a store that breaks is reported, not fatal
                    states[name].problems.append(f"{phase.id}: {type(exc).__name__}: {exc}")
                    opened.pop(name).close()
                    sample = None
                phases[phase.id][name].append(None if sample is None else asdict(sample))
        for name in order:
            if name in opened and name not in PERSISTENT:
                opened[name].close()
            problems += [f"{name}, repetition {repetition + 1}: {p}" for p in states[name].problems]
        shutil.rmtree(where, ignore_errors=True)
    return {"phases": phases, "disk_bytes_per_key": disk, "problems": problems}
