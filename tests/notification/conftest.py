"""A real HTTP receiver on loopback for webhook tests, and settings that allow delivering to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tollway.config import Settings

SECRET_KEY = "test-secret-key-0123456789abcdef-0123456789"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers ``statuses`` in turn (then 200), after ``delay`` seconds."""

    port: int
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= n, f"expected {n} requests, got {len(self.received)}"
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(port=free_port())
    r.start()
    yield r
    r.stop()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        run_worker_in_serve=False,
        secret_key=SECRET_KEY,
        webhook_allow_private_urls=True,
        webhook_timeout_seconds=2.0,
    )


def settle(client: httpx.Client, path: str, check: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
    """Wait until ``GET path`` shows a write the server already answered. Until the commit happens
    before the response (main's deps.get_session), a read right after a 2xx can miss the write
    on PostgreSQL; live tests that chain creations wait for each one to be visible."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = client.get(path)
        if r.status_code == 200 and check(r.json()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not become visible")
