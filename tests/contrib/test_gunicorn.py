"""End to end: the Flask example under gunicorn with 4 worker processes on fs-lite.

A few thousand concurrent requests (plain ``http.client``: ``requests`` costs the
client more CPU than the server spends) mixing PUT and GET: none may fail, readers
never see a torn or foreign value, and every acknowledged write is readable
afterwards, over HTTP (from any worker) and straight from the SQLite file. The
load is bounded in count and time: each request has a timeout, and the whole
load must end within ``LOAD_DEADLINE`` (no request is sent after it). With
``-s`` it prints one line: requests, seconds, requests per second, failures.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import hubkv

from .conftest import EXAMPLES

WORKERS = 4
CLIENT_THREADS = 16
USERS = 1500  # one PUT each, then read back
REQUEST_TIMEOUT = 15.0
START_TIMEOUT = 30.0
#: Bound on the whole load phase: generous, the machine may be shared (it takes seconds).
LOAD_DEADLINE = 120.0


@dataclass
class Server:
    host: str
    port: int
    store_path: Path
    process: subprocess.Popen[str]
    log: list[str]


def request(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP request on a new connection (gunicorn's sync workers close each one)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    store_path = tmp_path / "store" / "kv.sqlite3"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUBKV_")}
    env.update(
        HUBKV_DRIVER="fs-lite",
        HUBKV_PATH=str(store_path),
        HOME=str(tmp_path),  # gunicorn's control socket goes under $HOME
        PYTHONPATH=os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")]),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--bind",
            "127.0.0.1:0",
            "--chdir",
            str(EXAMPLES / "flask_settings"),
            "--graceful-timeout",
            "5",
            "app:app",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    log: list[str] = []
    ready = threading.Event()
    assert process.stderr is not None
    stderr = process.stderr

    def read_log() -> None:
        for line in stderr:
            log.append(line)
            if sum("Booting worker" in entry for entry in log) >= WORKERS:
                ready.set()
        ready.set()  # the server died: stop waiting

    threading.Thread(target=read_log, daemon=True).start()
    try:
        ready.wait(START_TIMEOUT)
        listening = [re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line) for line in log]
        ports = [int(match.group(1)) for match in listening if match]
        assert process.poll() is None and ports, "gunicorn did not start:\n" + "".join(log)
        yield Server("127.0.0.1", ports[0], store_path, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_four_workers_serve_thousands_of_mixed_requests_without_losing_a_write(
    server: Server,
) -> None:
    boots = [line for line in server.log if "Booting worker" in line]
    assert len(boots) == WORKERS
    rng = random.Random(5)
    jobs: list[tuple[str, str, Any]] = []
    jobs += [("PUT", f"/users/u{n}/prefs", {"user": n, "theme": f"t{n % 7}"}) for n in range(USERS)]
    jobs += [("GET", f"/users/u{rng.randrange(USERS)}/prefs", None) for _ in range(1000)]
    jobs += [("PUT", "/settings", {"revision": n}) for n in range(300)]
    jobs += [("GET", "/settings", None) for _ in range(300)]
    rng.shuffle(jobs)

    def send(job: tuple[str, str, Any]) -> tuple[tuple[str, str, Any], int | str, Any]:
        method, path, body = job
        if time.perf_counter() > deadline:  # stop sending, so the phase ends soon after
            return job, "not sent: past the load deadline", None
        try:
            return job, *request(server, method, path, body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return job, f"{type(exc).__name__}: {exc}", None

    started = time.perf_counter()
    deadline = started + LOAD_DEADLINE
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        results = list(pool.map(send, jobs))
    elapsed = time.perf_counter() - started

    unsent = sum(str(status).startswith("not sent") for _, status, _ in results)
    failed = [(job, status) for job, status, _ in results if status != 200]
    sent = len(jobs) - unsent
    print(
        f"\ngunicorn {WORKERS} workers, {CLIENT_THREADS} client threads: {sent} requests "
        f"in {elapsed:.2f}s = {sent / elapsed:.0f} req/s, {len(failed) - unsent} failed"
        + (f", {unsent} not sent (past the deadline)" if unsent else "")
    )
    assert elapsed <= LOAD_DEADLINE, (
        f"the load took {elapsed:.2f}s, over its {LOAD_DEADLINE:g}s bound: "
        f"{unsent} of {len(jobs)} requests were not sent"
    )
    assert failed == [], failed[:10]

    # Replies: every PUT acknowledged, every GET saw nothing yet or an intact value.
    revisions = set()
    for (method, path, body), _, reply in results:
        if method == "PUT":
            assert reply == {"ok": True}
            if path == "/settings":
                revisions.add(body["revision"])
        elif path == "/settings":
            assert reply["settings"] is None or reply["settings"]["revision"] in range(300)
        else:
            user = int(path.split("/")[2][1:])
            assert reply["prefs"] in (None, {"user": user, "theme": f"t{user % 7}"})
    assert revisions == set(range(300))

    # Afterwards every acknowledged write is there: over HTTP, from any worker...
    def read(user: int) -> Any:
        return request(server, "GET", f"/users/u{user}/prefs")[1]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        read_back = list(pool.map(read, range(USERS)))
    assert read_back == [{"prefs": {"user": n, "theme": f"t{n % 7}"}} for n in range(USERS)]
    final = request(server, "GET", "/settings")[1]["settings"]
    assert final["revision"] in revisions

    # ... and in the SQLite file the workers shared.
    store = hubkv.KV("fs-lite", path=str(server.store_path))
    assert len(store.keys("users:")) == USERS
    assert store.get("users:u123:prefs") == {"user": 123, "theme": "t4"}
    assert store.get("settings") == final
    assert server.process.poll() is None
    assert not [line for line in server.log if "Traceback" in line or "[ERROR]" in line]
