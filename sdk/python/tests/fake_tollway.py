"""A fake Tollway ingest server on a real socket, and helpers for the tests.

The fake speaks the part of the contract the SDK uses (shared/docs/api-v1.md,
"Events"): ``POST /v1/events`` with ``{"events":[...]}``, optionally gzip, answered
202 ``{"accepted","duplicates","errors":[{"index","id","message"}]}``, events
deduplicated by ``id``. Tests can script other answers (429 with Retry-After,
5xx, 4xx, a dropped connection) and read back every request as received.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    raw: bytes  # as sent on the wire
    body: bytes  # decompressed
    events: list[dict[str, Any]]
    status: int = 0


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: the normal 202 answer
    drop: bool = False  # close the connection without answering
    store: bool = False  # store the events (as a 202 would) but answer `status`
    delay: float = 0.0


class FakeTollway:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.script: deque[Reply] = deque()
        self.reject: Callable[[dict[str, Any]], str | None] = lambda event: None
        self.default_delay = 0.0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request, in arrival order (retries included)."""
        with self.lock:
            return [e for r in self.requests for e in r.events]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Received]:
        wait_until(lambda: len(self.requests) >= n, timeout)
        return list(self.requests)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        body = gzip.decompress(raw) if handler.headers.get("Content-Encoding") == "gzip" else raw
        doc = json.loads(body)
        events = doc["events"] if isinstance(doc, dict) and "events" in doc else [doc]
        with self.lock:
            reply = self.script.popleft() if self.script else Reply()
        received = Received(time.monotonic(), {k.lower(): v for k, v in handler.headers.items()}, raw, body, events)
        with self.lock:
            self.requests.append(received)
        if reply.delay or self.default_delay:
            time.sleep(reply.delay or self.default_delay)
        if reply.drop:
            handler.close_connection = True
            return
        answer = self._store(events) if reply.status == 202 or reply.store else None
        payload = reply.body if reply.body is not None else answer
        if payload is None:
            payload = {"type": "about:blank", "title": "scripted", "status": reply.status}
        data = json.dumps(payload).encode()
        received.status = reply.status
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _store(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        accepted = duplicates = 0
        errors = []
        with self.lock:
            for index, event in enumerate(events):
                message = self.reject(event)
                if message:
                    errors.append({"index": index, "id": event.get("id"), "message": message})
                elif event["id"] in self.stored:
                    duplicates += 1
                else:
                    self.stored[event["id"]] = event
                    accepted += 1
        return {"accepted": accepted, "duplicates": duplicates, "errors": errors}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
