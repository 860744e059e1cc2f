"""The data, the phases, and the timed loops shared by every run.

Keys are ``users:{id:08d}:profile`` (the loaded data) and ``cache:{id:08d}``
(new keys); values are small JSON dicts. Ids are zero-padded so that a prefix
such as ``users:00042`` names exactly a block of 10, 1,000 or 10,000 keys.

A phase times one kind of operation: the same operations, in the same order,
for every store. The stores take turns chunk by chunk (see
:func:`run_interleaved`), so noise from the rest of the machine hits them
alike, and each stops after ``cap`` seconds of its own, so a slow store costs
bounded time; the rate is what was done divided by the time it took. After
the timed work an untimed check proves each store did it (values read back,
counts of keys), so a fast wrong answer shows up as a problem instead of a
good number.

>>> user_key(42), block_prefix(3, 1000)
('users:00000042:profile', 'users:00003')
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter, process_time
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
    "Job",
    "run_interleaved",
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
#: clear(prefix) calls per repetition, each on its own tenth of the keys.
CLEARS = 3
#: Operations in one turn of a store (see run_interleaved).
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
    seconds: float  # wall-clock time
    cpu_seconds: float = 0.0  # CPU time of this process (all its threads)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else math.inf


@dataclass
class Job:
    """The timed work of one store in one phase: ``op(item)`` (``op(*item)``
    if ``spread``) for every item of ``chunks``; each call counts ``weight``."""

    op: Callable[..., Any]
    chunks: Sequence[Sequence[Any]]
    weight: int = 1
    spread: bool = False


def run_interleaved(
    jobs: dict[str, Job], cap: float, turn: int = 0
) -> tuple[dict[str, Sample], dict[str, Exception]]:
    """Run the jobs of several stores chunk by chunk, in turn, timing each store's own chunks.

    Round ``i`` runs chunk ``i`` of every store, in a new random order each
    round, so a burst of noise on the machine lands on all of them alike, and
    each store follows every other equally often (the one before leaves the
    CPU caches cold or warm: a fixed or rotated order would favour some). A
    store stops after ``cap`` seconds of its own time, when its chunks run
    out, or when it raises (returned as its error, not as a sample). The
    garbage collector is off meanwhile (as :mod:`timeit` does).
    """
    totals = {name: [0, 0.0, 0.0] for name in jobs}  # ops, wall, cpu
    errors: dict[str, Exception] = {}
    active = list(jobs)
    shuffle = random.Random(turn).shuffle
    gc.collect()
    gc.disable()
    try:
        position = 0
        while active:
            order = list(active)
            shuffle(order)
            for name in order:
                job, total = jobs[name], totals[name]
                if position >= len(job.chunks) or total[1] > cap:
                    active.remove(name)
                    continue
                op, chunk = job.op, job.chunks[position]
                cpu, start = process_time(), perf_counter()
                try:
                    if job.spread:
                        for item in chunk:
                            op(*item)
                    else:
                        for item in chunk:
                            op(item)
                except Exception as exc:  # reported by the caller, the others go on
                    errors[name] = exc
                    active.remove(name)
                    continue
                total[1] += perf_counter() - start
                total[2] += process_time() - cpu
                total[0] += len(chunk) * job.weight
            position += 1
    finally:
        gc.enable()
    samples = {
        name: Sample(int(ops), wall, cpu)
        for name, (ops, wall, cpu) in totals.items()
        if name not in errors
    }
    return samples, errors


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
    clear_prefixes: list[str] = field(init=False)
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
        self.clear_prefixes = [
            block_prefix(block, n // 10) for block in rng.sample(range(1, 10), CLEARS)
        ]
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
    cleared: list[int] = field(default_factory=list)
    seen: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)


Check = Callable[[Store, "Plan", "State", Sample], None]


@dataclass(frozen=True)
class Phase:
    """One row of the results table: the job of each store, then an untimed check."""

    id: str
    label: str
    unit: str
    job: Callable[[Store, Plan, State], Job]
    check: Check
    persistent_only: bool = False


def _set_new(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.set, chunked(plan.new), spread=True)


def _set_new_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    state.new_written = sample.ops
    key, val = plan.new[sample.ops - 1]
    state.expect(store.get(key) == val, f"set: {key} does not read back")


def _get(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.get, chunked([user_key(i) for i in plan.reads]))


def _get_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    key = user_key(plan.reads[0])
    state.expect(store.get(key) == value(plan.reads[0]), f"get: wrong value for {key}")


def _has(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.has, chunked([user_key(i) for i in plan.probes]))


def _has_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    key = user_key(plan.probes[-1])
    state.expect(store.has(key) is True, f"has: {key} not found")


def _get_missing(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.get, chunked(plan.missing))


def _get_missing_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    state.expect(store.get(plan.missing[0]) is None, "get missing: found a missing key")


def _overwrite(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.set, chunked(plan.overwrites), spread=True)


def _overwrite_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    key, val = plan.overwrites[0]
    state.expect(store.get(key) == val, f"overwrite: {key} has its old value")


def _delete(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.delete, chunked([key for key, _ in plan.new[: state.new_written]]))


def _delete_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    key = plan.new[0][0]
    state.expect(not store.has(key), f"delete: {key} is still there")


def _keys(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.keys, chunked(plan.prefixes, 1))


def _keys_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    found = store.keys(plan.prefixes[0])
    want = plan.sizes.keys // 100
    state.expect(
        len(found) == want and found == sorted(found),
        f"keys: {len(found)} keys (want {want}, sorted)",
    )


def _clear(store: Store, plan: Plan, state: State) -> Job:
    def clear(prefix: str) -> None:
        state.cleared.append(store.clear(prefix))

    return Job(clear, [[prefix] for prefix in plan.clear_prefixes])


def _clear_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    want = [plan.sizes.keys // 10] * sample.ops
    state.expect(state.cleared == want, f"clear: removed {state.cleared} (want {want})")
    for prefix in plan.clear_prefixes[: sample.ops]:
        state.expect(store.keys(prefix) == [], f"clear: keys left under {prefix!r}")


def _set_many(store: Store, plan: Plan, state: State) -> Job:
    return Job(store.set_many, chunked(plan.batches, 1), weight=BATCH)


def _set_many_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    last = plan.batches[sample.ops // BATCH - 1]
    key = next(reversed(last))
    state.expect(store.get(key) == last[key], f"set_many: {key} does not read back")


def _cold_open(store: Store, plan: Plan, state: State) -> Job:
    """Open, one get, close; the store under test is closed first (lmdb refuses two opens)."""
    reopen = state.reopen
    assert reopen is not None
    store.close()
    key = user_key(plan.kept)

    def cycle(_: int) -> None:
        again = reopen()
        state.seen.append(again.get(key))
        again.close()

    return Job(cycle, chunked(range(plan.sizes.opens), 1))


def _cold_open_check(store: Store, plan: Plan, state: State, sample: Sample) -> None:
    state.expect(state.seen[-1] == value(plan.kept), "cold open: the first get read wrong")


PHASES: tuple[Phase, ...] = (
    Phase("set", "set (new key)", "ops/s", _set_new, _set_new_check),
    Phase("get", "get (random key)", "ops/s", _get, _get_check),
    Phase("has", "has (random key)", "ops/s", _has, _has_check),
    Phase("get_missing", "get (missing key)", "ops/s", _get_missing, _get_missing_check),
    Phase("overwrite", "set (existing key)", "ops/s", _overwrite, _overwrite_check),
    Phase("delete", "delete", "ops/s", _delete, _delete_check),
    Phase("keys", "keys(prefix), 1% of the keys", "calls/s", _keys, _keys_check),
    Phase("clear", "clear(prefix), 10% of the keys", "calls/s", _clear, _clear_check),
    Phase("set_many", f"set_many, {BATCH:,} keys per call", "keys/s", _set_many, _set_many_check),
    Phase("cold_open", "cold open + first get", "opens/s", _cold_open, _cold_open_check, True),
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
            jobs: dict[str, Job] = {}
            for name in order:
                if name not in phases[phase.id]:
                    continue
                if name in opened:
                    try:
                        if name in PERSISTENT and phase.id != "cold_open":
                            opened[name] = _settled(opened[name], states[name], plan)
                        jobs[name] = phase.job(opened[name], plan, states[name])
                    except Exception as exc:
                        _failed(opened, states, name, phase, exc)
            samples, errors = run_interleaved(jobs, sizes.cap, repetition)
            for name, exc in errors.items():
                _failed(opened, states, name, phase, exc)
            for name in phases[phase.id]:
                sample = samples.get(name)
                if sample is not None and name in opened:
                    try:
                        phase.check(opened[name], plan, states[name], sample)
                    except Exception as exc:
                        _failed(opened, states, name, phase, exc)
                        sample = None
                phases[phase.id][name].append(None if sample is None else asdict(sample))
        for name in order:
            if name in opened and name not in PERSISTENT:
                opened[name].close()
            problems += [f"{name}, repetition {repetition + 1}: {p}" for p in states[name].problems]
        shutil.rmtree(where, ignore_errors=True)
    return {"phases": phases, "disk_bytes_per_key": disk, "problems": problems}


def _settled(store: Store, state: State, plan: Plan) -> Store:
    """``store`` closed and opened again, warm (one get), before a phase.

    Closing checkpoints a write-ahead log, so no phase pays, by chance, for
    the checkpoint of an earlier phase's writes (a single clear(prefix) call
    would be timed with or without one, depending on the log's size).
    """
    assert state.reopen is not None
    store.close()
    store = state.reopen()
    store.get(user_key(plan.kept))
    return store


def _failed(
    opened: dict[str, Store], states: dict[str, State], name: str, phase: Phase, exc: Exception
) -> None:
    """A store that raised is reported and left out for the rest of the repetition."""
    states[name].problems.append(f"{phase.id}: {type(exc).__name__}: {exc}")
    store = opened.pop(name)
    with contextlib.suppress(Exception):
        store.close()
