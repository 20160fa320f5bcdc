"""``Idempotency-Key`` for POST requests: a retry with the same key and body returns the first
response; the same key with another body is a 409.

A pure ASGI middleware, so it is one mechanism for every create endpoint. Keys are scoped to the
API key that sent them and to the method and path. Only requests that carry the header pay for it.
Responses with status >= 500 are not stored (the retry runs again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.errors import FieldError, problem_response
from tollway.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, sessionmaker_getter: Callable[[], sessionmaker[Session]]) -> None:
        self.app = app
        self.sessionmaker_getter = sessionmaker_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = _header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            problem = f"must be 1 to {MAX_KEY_LENGTH} characters"
            resp = problem_response(
                422,
                "Unprocessable Entity",
                f"Idempotency-Key: {problem}",
                code="validation_failed",
                errors=[FieldError("Idempotency-Key", problem)],
            )
            await resp(scope, receive, send)
            return

        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)

        auth = _header(scope, b"authorization") or ""
        scope_hash = hashlib.sha256(
            b"\0".join(
                [
                    hashlib.sha256(auth.encode()).digest(),
                    scope["method"].encode(),
                    scope["path"].encode(),
                    key.encode(),
                ]
            )
        ).hexdigest()
        request_hash = hashlib.sha256(body + b"\0" + (scope.get("query_string") or b"")).hexdigest()

        factory = self.sessionmaker_getter()
        from fastapi.concurrency import run_in_threadpool

        existing = await run_in_threadpool(self._load, factory, scope_hash)
        if existing is not None:
            if existing.request_hash != request_hash:
                resp = problem_response(
                    409,
                    "Conflict",
                    "this Idempotency-Key was already used with a different request body",
                    code="idempotency_key_reused",
                )
                await resp(scope, receive, send)
                return
            headers: list[tuple[bytes, bytes]] = [(b"idempotent-replayed", b"true")]
            if existing.content_type:
                headers.append((b"content-type", existing.content_type.encode("latin-1")))
            headers.append((b"content-length", str(len(existing.body)).encode()))
            await send({"type": "http.response.start", "status": existing.status, "headers": headers})
            await send({"type": "http.response.body", "body": existing.body})
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        content_type: str | None = None
        chunks: list[bytes] = []

        async def capture_send(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        content_type = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_receive, capture_send)
        if 0 < status < 500:
            await run_in_threadpool(
                self._save, factory, scope_hash, request_hash, status, content_type, b"".join(chunks)
            )

    @staticmethod
    def _load(factory: sessionmaker[Session], scope_hash: str) -> Any:
        with factory() as session:
            return session.get(IdempotencyRecord, scope_hash)

    @staticmethod
    def _save(
        factory: sessionmaker[Session],
        scope_hash: str,
        request_hash: str,
        status: int,
        ctype: str | None,
        body: bytes,
    ) -> None:
        with factory() as session:
            session.add(
                IdempotencyRecord(
                    scope_hash=scope_hash,
                    request_hash=request_hash,
                    status=status,
                    content_type=ctype,
                    body=body,
                    headers=orjson.dumps({}).decode(),
                )
            )
            try:
                session.commit()
            except IntegrityError:  # a concurrent retry stored its response first
                session.rollback()
