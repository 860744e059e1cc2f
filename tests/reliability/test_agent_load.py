"""The agent capability keeps its scope under load (the scope rules themselves
are tested in ``tests/agent``): threads drive writable capabilities of
different tenants on one fs-lite store with a mix of ordinary and hostile
calls; nothing outside a tenant's prefix is read, listed, written or cleared,
and a call limit shared by threads is never exceeded.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import hubkv
from hubkv.agent import KVCapability

TENANTS = 4
SECRET = "SECRET-never-shown-to-another-tenant"
HOSTILE_KEYS = [
    "../1:notes",
    "..",
    "/tenant:1:notes",
    "tenant:1:notes",
    "\\..\\1:notes",
    "．．/1:notes",  # fullwidth dots
    "a/../../1:notes",
    "notes\x00",
    "\u202e1:notes",
    "",
    "*",
    "%",
]


def _calls(rng: random.Random, tenant: int) -> list[tuple[str, dict[str, Any]]]:
    key = rng.choice(["notes", "a", "b:c", "d/e", rng.choice(HOSTILE_KEYS)])
    value = {"tenant": tenant, "n": rng.randrange(1000)}
    return [
        ("kv_set", {"key": key, "value": value}),
        ("kv_get", {"key": key}),
        ("kv_has", {"key": key}),
        ("kv_get_many", {"keys": [key, "notes", rng.choice(HOSTILE_KEYS)]}),
        ("kv_list_keys", {"prefix": rng.choice(["", "b", "..", "../"])}),
        ("kv_delete", {"key": rng.choice([key, rng.choice(HOSTILE_KEYS)])}),
        ("kv_clear", {"prefix": rng.choice(["..", "../", "/", "..\\", "．．/"])}),
    ]


def test_capabilities_keep_their_scope_under_load(tmp_path: Path, figures: Counter[str]) -> None:
    store = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    # Keys next to the scopes, in none of them: "tenant:1:" must not reach
    # "tenant:1" (no separator), "tenant:10:" or another tenant's keys.
    sentinels: dict[str, Any] = {f"tenant:{t}": {"s": SECRET} for t in range(TENANTS)}
    sentinels |= {"outside": {"s": SECRET}, "tenant:10:notes": {"s": SECRET}}
    sentinels |= {"tenant:9:notes": {"s": SECRET}, "tenant:notes": {"s": SECRET}}
    store.set_many(sentinels)
    leaks: list[str] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def work(tenant: int, seed: int) -> None:
        capability = KVCapability(store, f"tenant:{tenant}:", writable=True, allow_clear=True)
        rng = random.Random(seed)
        for _ in range(60):
            for name, arguments in _calls(rng, tenant):
                answer = capability.call(name, arguments)
                text = json.dumps(answer)
                with lock:
                    outcomes["ok" if answer["ok"] else answer["error"]["type"]] += 1
                    if SECRET in text:
                        leaks.append(f"tenant {tenant} {name} {arguments}: {text}")

    threads = [
        threading.Thread(target=work, args=(tenant, seed))
        for seed, tenant in enumerate(list(range(TENANTS)) * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert leaks == []
    # Written keys stayed in their writer's scope...
    for key, value in store.get_many(store.keys()).items():
        if key not in sentinels:
            assert key.startswith(f"tenant:{value['tenant']}:"), (key, value)
    for tenant in range(TENANTS):
        capability = KVCapability(store, f"tenant:{tenant}:", writable=True, allow_clear=True)
        assert capability.call("kv_clear", {"prefix": ""})["ok"]
    # ... and each tenant's clear removed its scope only: what is left is
    # exactly the sentinels, unchanged, which no capability could reach.
    assert store.get_many(store.keys()) == sentinels
    assert outcomes["ok"] > 0 and outcomes["invalid_key"] > 0
    figures["agent under load: calls"] += sum(outcomes.values())
    figures["agent under load: hostile calls refused"] += outcomes["invalid_key"]


def test_a_call_limit_shared_by_threads_is_never_exceeded(tmp_path: Path) -> None:
    store = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"))
    store.set("scope:k", 1)
    capability = KVCapability(store, "scope:", max_calls=100)
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            answer = capability.call("kv_get", {"key": "k"})
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served = [answer for answer in answers if answer["ok"]]
    assert len(served) == 100
    assert all(answer["value"] == 1 for answer in served)
    refused = [answer["error"]["type"] for answer in answers if not answer["ok"]]
    assert refused == ["limit_exceeded"] * 200
    assert capability.remaining_calls == 0
