"""Cloudflare's Workers KV REST API in Cloudflare's own runtime, for tests (and a pytest plugin).

:class:`CloudflareKV` runs ``tests/standins/cloudflare/launch.mjs``: the
``miniflare`` npm package (pinned in ``package-lock.json``; it ships
``workerd``, the runtime Cloudflare deploys Workers on) serving
``cloudflare/worker.js`` on a free 127.0.0.1 port. The Worker answers
Cloudflare's REST routes on top of real KV bindings, so values, expirations,
prefix listings and size limits are the runtime's own. It needs Node.js and
``npm ci`` at the repository root (``scripts/test.sh`` runs it); a missing
runtime fails the tests that use it, it never skips them.

Fixtures:

- ``cloudflare_kv`` (session): the running server;
- ``cloudflare_namespace`` (function): a fresh, empty namespace id, deleted
  after the test.

Test-only controls: :meth:`CloudflareKV.advance_clock` moves a namespace's KV
clock forward (Cloudflare's shortest TTL is 60 s; nobody sleeps that long),
:meth:`CloudflareKV.arm_fault` makes the next requests on a namespace slow,
or fail with a status (429 with ``Retry-After``, 5xx, ...), or report bulk keys
as unsuccessful.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

__all__ = ["CloudflareKV", "cloudflare_kv", "cloudflare_namespace"]

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "cloudflare" / "launch.mjs"
START_TIMEOUT = 30.0


class CloudflareKV:
    """The Worker in workerd; :meth:`start` launches it, :meth:`stop` ends it."""

    def __init__(self, pool: int = 32) -> None:
        self.account_id = secrets.token_hex(16)
        self.api_token = secrets.token_urlsafe(30)
        self.pool = pool
        self.origin = ""
        self._storage = ""
        self._process: subprocess.Popen[str] | None = None
        self._session = requests.Session()
        self._session.trust_env = False

    @property
    def base_url(self) -> str:
        """What the driver and the SDK take as ``base_url``."""
        return f"{self.origin}/client/v4"

    @property
    def namespaces_url(self) -> str:
        return f"{self.base_url}/accounts/{self.account_id}/storage/kv/namespaces"

    def options(self, namespace_id: str) -> dict[str, Any]:
        """Driver options for ``namespace_id`` on this server."""
        return {
            "namespace_id": namespace_id,
            "account_id": self.account_id,
            "api_token": self.api_token,
            "base_url": self.base_url,
        }

    def start(self) -> CloudflareKV:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError(
                "Node.js is not installed: the Cloudflare KV tests run Cloudflare's workerd "
                "through miniflare; install nodejs and run `npm ci` (scripts/test.sh does)"
            )
        if not (ROOT / "node_modules" / "miniflare").is_dir():
            raise RuntimeError(
                f"miniflare is not installed under {ROOT}: run `npm ci` there (scripts/test.sh does)"
            )
        # On tmpfs when there is one: every KV write is a file, and disk syncs
        # make bulk writes ~5x slower (1,200 keys: 1.7 s instead of 8 s).
        shm = Path("/dev/shm")
        self._storage = tempfile.mkdtemp(
            prefix="hubkv-cloudflare-",
            dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None,
        )
        self._process = subprocess.Popen(
            [
                node,
                str(LAUNCHER),
                f"--token={self.api_token}",  # one argument: a token may start with "-"
                "--account",
                self.account_id,
                "--pool",
                str(self.pool),
                "--storage",
                self._storage,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(
                f"workerd (miniflare) did not start within {START_TIMEOUT:g}s; "
                "see its stderr above, and run `npm ci`"
            )
        self.origin = json.loads(line[0])["url"]
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the launcher stops when its stdin closes
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._session.close()
        shutil.rmtree(self._storage, ignore_errors=True)

    # -- namespaces and test controls ----------------------------------------

    def create_namespace(self, title: str = "") -> str:
        """A new, empty namespace (Cloudflare's ``POST .../namespaces``); its id."""
        reply = self._session.post(
            self.namespaces_url,
            json={"title": title or secrets.token_hex(8)},
            headers=self._auth(),
            timeout=10,
        )
        reply.raise_for_status()
        return str(reply.json()["result"]["id"])

    def delete_namespace(self, namespace_id: str) -> None:
        """Delete the namespace and its keys."""
        reply = self._session.delete(
            f"{self.namespaces_url}/{namespace_id}", headers=self._auth(), timeout=60
        )
        reply.raise_for_status()

    def advance_clock(self, namespace_id: str, seconds: float) -> None:
        """Move the runtime's KV clock of ``namespace_id`` forward by ``seconds``."""
        self._test_route(f"namespaces/{namespace_id}/clock", {"advance": seconds})

    def arm_fault(self, namespace_id: str, **fault: Any) -> None:
        """The next ``times`` (default 1) requests on ``namespace_id`` misbehave.

        ``status`` (with ``retry_after``), ``delay_ms``, ``unsuccessful`` (bulk
        writes and deletes report that many keys unsuccessful, unwritten).
        """
        self._test_route(f"namespaces/{namespace_id}/faults", fault)

    def stats(self) -> dict[str, Any]:
        """The binding pool's state and the number of requests served."""
        reply = self._session.get(f"{self.origin}/__test/stats", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def _test_route(self, path: str, body: dict[str, Any]) -> None:
        reply = self._session.post(f"{self.origin}/__test/{path}", json=body, timeout=10)
        if not reply.ok:
            raise RuntimeError(f"test route {path} failed: HTTP {reply.status_code} {reply.text}")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


@pytest.fixture(scope="session")
def cloudflare_kv() -> Iterator[CloudflareKV]:
    """Cloudflare's runtime serving the KV REST API on 127.0.0.1, for the session."""
    try:
        server = CloudflareKV().start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def cloudflare_namespace(cloudflare_kv: CloudflareKV) -> Iterator[str]:
    """A fresh, empty namespace id on the session's server, deleted after the test."""
    namespace_id = cloudflare_kv.create_namespace()
    yield namespace_id
    cloudflare_kv.delete_namespace(namespace_id)
