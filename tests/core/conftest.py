"""Fixtures of the core tests: raw ASGI calls that observe whether the body was read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class AsgiResult:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_reads: int = 0  # receive() calls that handed out body bytes


def asgi_call(
    app: Any, method: str, path: str, *, headers: dict[str, str], chunks: list[bytes], content_length: bool = True
) -> AsgiResult:
    """Send a request straight to the ASGI app, counting how many body chunks it pulled."""
    result = AsgiResult()
    pending = list(chunks)
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if content_length:
        raw_headers.append((b"content-length", str(sum(len(c) for c in chunks)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        if not pending:
            await asyncio.sleep(3600)
        result.body_reads += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return result


@pytest.fixture
def call():  # type: ignore[no-untyped-def]
    return asgi_call
