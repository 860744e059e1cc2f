"""One soak process: threads mixing every operation on their own keys, with TTLs.

Run by ``test_soak.py`` as ``python -m tests.reliability.soak_worker SPEC``
(a JSON :class:`Spec`). The threads share one store. Each owns the keys
``p{process}t{thread}:k{NN}``, so what it last did to a key decides the key's
state: nothing else writes it.

Every write is journalled on stdout as one line before it starts
(``B thread seq op``) and one when it was acknowledged (``A thread seq``).
Lines are written with a single ``os.write`` each, so a process killed at any
moment leaves whole lines, and the parent can replay exactly what was
acknowledged (and which one write may or may not have happened).

Every read is checked at once against the thread's own record, with each
short TTL's expiry known to lie between the times before and after its write;
a mismatch or any exception is reported as ``E thread message``. At the end
each thread prints ``S thread {counts}``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

import hubkv

#: A key's state in a thread's record: (value, earliest expiry, latest expiry);
#: the expiries are None for a key without TTL. Missing keys are absent.
Entry = tuple[Any, float | None, float | None]
#: Slack for clocks (the driver's, a server's) and rounding of TTLs.
CLOCK_SLACK = 0.05


@dataclass
class Spec:
    """What one soak process does."""

    driver: str
    options: dict[str, Any]
    process: int
    threads: int
    seconds: float
    max_ops: int
    keys: int
    #: TTL for keys that expire during the run; None where the driver can't (Cloudflare).
    short_ttl: float | None
    long_ttl: float
    seed: int


def key_of(process: int, thread: int, index: int) -> str:
    return f"p{process}t{thread}:k{index:02d}"


def thread_prefix(process: int, thread: int) -> str:
    return f"p{process}t{thread}:"


class Journal:
    """Whole lines to stdout, one ``os.write`` each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, *parts: object) -> None:
        line = (" ".join(str(part) for part in parts) + "\n").encode()
        with self._lock:
            os.write(1, line)


class Worker:
    """One thread: random operations on its own keys, checked against its record."""

    def __init__(self, spec: Spec, thread: int, store: hubkv.KV, journal: Journal) -> None:
        self.spec = spec
        self.thread = thread
        self.store = store
        self.journal = journal
        self.random = random.Random(spec.seed * 1000 + thread)
        self.prefix = thread_prefix(spec.process, thread)
        self.keys = [key_of(spec.process, thread, i) for i in range(spec.keys)]
        self.record: dict[str, Entry] = {}
        self.counts: Counter[str] = Counter()
        self.seq = 0

    # -- what the record says ---------------------------------------------------

    def state(self, key: str, start: float, end: float) -> str:
        """ "live", "gone" or "either" for a read that ran between ``start`` and ``end``."""
        entry = self.record.get(key)
        if entry is None:
            return "gone"
        _, earliest, latest = entry
        if earliest is None or latest is None:
            return "live"
        if latest + CLOCK_SLACK <= start:
            return "gone"
        if earliest - CLOCK_SLACK > end:
            return "live"
        return "either"

    def fail(self, message: str) -> None:
        self.counts["errors"] += 1
        self.journal.write("E", self.thread, json.dumps(message))

    # -- writes -----------------------------------------------------------------

    def pick_ttl(self) -> float | None:
        choices: list[float | None] = [None, self.spec.long_ttl]
        if self.spec.short_ttl is not None:
            choices.append(self.spec.short_ttl)
        return self.random.choice(choices)

    def write(self, op: dict[str, Any]) -> None:
        self.seq += 1
        self.journal.write("B", self.thread, self.seq, json.dumps(op))
        start = time.time()
        kind = op["op"]
        if kind == "set":
            ((key, value),) = op["items"].items()
            self.store.set(key, value, ttl=op["ttl"])
        elif kind == "set_many":
            self.store.set_many(op["items"], ttl=op["ttl"])
        elif kind == "delete":
            self.store.delete(op["keys"][0])
        elif kind == "delete_many":
            self.store.delete_many(op["keys"])
        elif kind == "clear":
            # Checked like a read: the count is of the keys live when it ran.
            removed = self.store.clear(op["prefix"])
            self.check_count(op["prefix"], removed, start, time.time())
        end = time.time()
        self.journal.write("A", self.thread, self.seq)
        apply(self.record, op, start, end)
        self.counts[kind] += 1

    def random_write(self) -> None:
        r = self.random
        value = {
            "p": self.spec.process,
            "t": self.thread,
            "n": self.seq,
            "pad": "x" * r.randrange(64),
        }
        kind = r.choice(["set", "set", "set", "set_many", "delete", "delete_many", "clear"])
        if kind == "set":
            op = {"op": kind, "items": {r.choice(self.keys): value}, "ttl": self.pick_ttl()}
        elif kind == "set_many":
            items = {key: {**value, "k": key} for key in r.sample(self.keys, r.randint(2, 4))}
            op = {"op": kind, "items": items, "ttl": self.pick_ttl()}
        elif kind in ("delete", "delete_many"):
            op = {"op": kind, "keys": r.sample(self.keys, 1 if kind == "delete" else 3)}
        else:  # a sub-prefix: k1 takes k1, k10..k19
            op = {"op": kind, "prefix": self.prefix + "k" + str(r.randrange(1, 4))}
        self.write(op)

    # -- reads, checked ---------------------------------------------------------

    def check_count(self, prefix: str, found: int, start: float, end: float) -> None:
        states = Counter(
            self.state(key, start, end) for key in self.record if key.startswith(prefix)
        )
        if not states["live"] <= found <= states["live"] + states["either"]:
            self.fail(f"clear/keys({prefix!r}) counted {found}, expected {dict(states)}")

    def random_read(self) -> None:
        r = self.random
        kind = r.choice(["get", "get", "has", "ttl", "keys", "iter_keys", "get_many"])
        key = r.choice(self.keys)
        start = time.time()
        if kind == "get":
            got = self.store.get(key)
            self.check_value(key, got, start, time.time())
        elif kind == "has":
            present = self.store.has(key)
            self.check_presence(key, present, start, time.time())
        elif kind == "ttl":
            try:
                remaining: float | None = self.store.ttl(key)
                present = True
            except KeyError:
                remaining, present = None, False
            self.check_presence(key, present, start, time.time())
            entry = self.record.get(key)
            if present and entry is not None and (entry[1] is None) != (remaining is None):
                self.fail(f"ttl({key!r}) = {remaining!r} but the record says {entry[1:]}")
        elif kind in ("keys", "iter_keys"):
            listed = (
                self.store.keys(self.prefix)
                if kind == "keys"
                else sorted(self.store.iter_keys(self.prefix))
            )
            end = time.time()
            for other in self.keys:
                self.check_presence(other, other in listed, start, end)
            if listed != sorted(listed) or any(not k.startswith(self.prefix) for k in listed):
                self.fail(f"{kind}({self.prefix!r}) returned {listed!r}")
        else:
            wanted = r.sample(self.keys, 4)
            found = self.store.get_many(wanted)
            end = time.time()
            for other in wanted:
                self.check_value(other, found.get(other), start, end)
        self.counts[kind] += 1

    def check_presence(self, key: str, present: bool, start: float, end: float) -> None:
        state = self.state(key, start, end)
        if state != "either" and present != (state == "live"):
            self.fail(f"{key!r} present={present}, the record says {state}: {self.record.get(key)}")

    def check_value(self, key: str, got: Any, start: float, end: float) -> None:
        self.check_presence(key, got is not None, start, end)
        entry = self.record.get(key)
        if got is not None and (entry is None or got != entry[0]):
            self.fail(f"{key!r} read {got!r}, the record says {entry!r}")

    # -- the loop ---------------------------------------------------------------

    def run(self, deadline: float) -> None:
        try:
            while time.time() < deadline and self.seq < self.spec.max_ops:
                if self.random.random() < 0.5:
                    self.random_write()
                else:
                    self.random_read()
        except Exception:  # noqa: BLE001 - every failure is reported to the parent
            self.fail(traceback.format_exc())
        self.journal.write("S", self.thread, json.dumps(dict(self.counts)))


def apply(record: dict[str, Entry], op: dict[str, Any], start: float, end: float) -> None:
    """Update ``record`` with the write ``op``, begun at ``start`` and acknowledged at ``end``."""
    kind = op["op"]
    if kind in ("set", "set_many"):
        ttl = op["ttl"]
        for key, value in op["items"].items():
            record[key] = (value, None, None) if ttl is None else (value, start + ttl, end + ttl)
    elif kind in ("delete", "delete_many"):
        for key in op["keys"]:
            record.pop(key, None)
    elif kind == "clear":
        for key in [key for key in record if key.startswith(op["prefix"])]:
            del record[key]


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(argv[0]))
    store = hubkv.KV(spec.driver, **spec.options)
    journal = Journal()
    deadline = time.time() + spec.seconds
    workers = [Worker(spec, thread, store, journal) for thread in range(spec.threads)]
    threads = [threading.Thread(target=worker.run, args=(deadline,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
