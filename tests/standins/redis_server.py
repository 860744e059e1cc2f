"""pytest plugin: a real ``redis-server`` on a free 127.0.0.1 port, one per test session.

Started with ``--save "" --appendonly no`` (nothing written to disk). A missing
``redis-server`` binary fails the tests that need it: install the Debian
package ``redis-server`` (``scripts/test.sh`` does).

>>> def test_ping(redis_server):
...     assert redis_server.client().ping()
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "free_port", "redis_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A running redis-server process on 127.0.0.1."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    _clients: list[redis.Redis] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **options: object) -> redis.Redis:
        """A redis-py client for direct access (closed with the server)."""
        client = redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis_server(folder: Path, attempts: int = 3) -> RedisServer:
    """Start redis-server in ``folder`` and wait until it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed; install the Debian package redis-server "
            "(bash scripts/test.sh does it)",
            pytrace=False,
        )
    for _ in range(attempts):
        port = free_port()
        log = folder / f"redis-{port}.log"
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(folder),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = RedisServer(port, process, log)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as probe:
                    if probe.ping():
                        return server
            except redis.ConnectionError:
                time.sleep(0.02)
        server.stop()  # port taken meanwhile, or too slow: try another port
    log_text = log.read_text() if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not start:\n{log_text[-2000:]}", pytrace=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole session; tests namespace their keys."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
