"""``Idempotency-Key`` for POST requests: a retry with the same key and body returns the first
response; the same key with another body is a 409.

A pure ASGI middleware, so it is one mechanism for every create endpoint. It runs after the
admission gate (``auth.gate``): a refused request never reaches it (nothing is stored for it),
and the body it buffers was already bounded by the route's limit. Keys are scoped to the
admitted principal's ``subject`` and to the method and path. Only requests that carry the
header pay for it.

One request per key runs the handler: it first *claims* the key (inserts a pending record,
committed), runs, stores the response and only then sends it. Concurrent requests with the same
key and body wait for the stored response and replay it, so every caller gets the creation's
answer. Responses with status >= 500 are not stored (the record is released and a retry runs
again). Records expire after :data:`RECORD_TTL` (the worker purges them); a pending record whose
request died with its process is taken over after :data:`ABANDONED_AFTER`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.auth.gate import PRINCIPAL_KEY
from tollway.errors import FieldError, problem_response
from tollway.kit.time import utcnow
from tollway.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
RECORD_TTL = timedelta(hours=24)
"""A key can be retried for this long after its first use."""
ABANDONED_AFTER = timedelta(minutes=10)
"""A pending record this old belongs to a request that died: the next request takes it over."""
WAIT_SECONDS = 60.0
"""How long a concurrent request with the same key waits for the first one's response."""
PENDING = 0  # the status of a claimed record whose response is not stored yet


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return None


class _Claimed:
    pass


CLAIMED = _Claimed()
RETRY = "retry"
MISMATCH = "mismatch"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, sessionmaker_getter: Callable[[], sessionmaker[Session]]) -> None:
        self.app = app
        self.sessionmaker_getter = sessionmaker_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" and scope["method"] == "POST" else None
        principal = scope.get(PRINCIPAL_KEY)
        if key is None or principal is None:
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

        chunks: list[bytes] = []
        while True:  # bounded: the gate already read (and limited) this body
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope_hash = hashlib.sha256(
            b"\0".join([principal.subject.encode(), scope["method"].encode(), scope["path"].encode(), key.encode()])
        ).hexdigest()
        request_hash = hashlib.sha256(body + b"\0" + (scope.get("query_string") or b"")).hexdigest()
        factory = self.sessionmaker_getter()

        deadline = time.monotonic() + WAIT_SECONDS
        pause = 0.02
        while True:
            outcome = await run_in_threadpool(_claim, factory, scope_hash, request_hash, utcnow())
            if outcome is CLAIMED:
                break
            if outcome == MISMATCH:
                await problem_response(
                    409,
                    "Conflict",
                    "this Idempotency-Key was already used with a different request body",
                    code="idempotency_key_reused",
                )(scope, receive, send)
                return
            if isinstance(outcome, IdempotencyRecord):
                await _replay(outcome, send)
                return
            if outcome != RETRY:  # pending: another request with this key is running
                if time.monotonic() > deadline:
                    await problem_response(
                        409,
                        "Conflict",
                        "a request with this Idempotency-Key is still in progress; retry later",
                        code="idempotency_key_in_progress",
                    )(scope, receive, send)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.25)

        await self._run_and_store(scope, body, receive, send, factory, scope_hash)

    async def _run_and_store(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, factory: sessionmaker[Session], scope_hash: str
    ) -> None:
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.app(scope, replay_receive, hold)
        except BaseException:
            await run_in_threadpool(_release, factory, scope_hash)
            raise
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 0
        if 0 < status < 500:
            content_type = (
                next((v.decode("latin-1") for k, v in start.get("headers", []) if k.lower() == b"content-type"), None)
                if start
                else None
            )
            content = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            await run_in_threadpool(_store, factory, scope_hash, status, content_type, content)
        else:
            await run_in_threadpool(_release, factory, scope_hash)
        for message in held:  # sent only once the record holds the answer every retry will get
            await send(message)


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"idempotent-replayed", b"true")]
    if record.content_type:
        headers.append((b"content-type", record.content_type.encode("latin-1")))
    headers.append((b"content-length", str(len(record.body)).encode()))
    await send({"type": "http.response.start", "status": record.status, "headers": headers})
    await send({"type": "http.response.body", "body": record.body})


def _claim(factory: sessionmaker[Session], scope_hash: str, request_hash: str, now: datetime) -> Any:
    """CLAIMED, MISMATCH, RETRY (lost a race: ask again), PENDING or the stored record."""
    with factory() as session:
        record = session.get(IdempotencyRecord, scope_hash)
        if record is not None:
            stale = record.created_at < now - (ABANDONED_AFTER if record.status == PENDING else RECORD_TTL)
            if not stale:
                if record.request_hash != request_hash:
                    return MISMATCH
                return PENDING if record.status == PENDING else record
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.scope_hash == scope_hash, IdempotencyRecord.created_at == record.created_at
                )
            )
        session.add(
            IdempotencyRecord(
                scope_hash=scope_hash, request_hash=request_hash, status=PENDING, body=b"", created_at=now
            )
        )
        try:
            session.commit()
        except IntegrityError:  # a concurrent request claimed it first
            session.rollback()
            return RETRY
        return CLAIMED


def _store(factory: sessionmaker[Session], scope_hash: str, status: int, content_type: str | None, body: bytes) -> None:
    with factory() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.scope_hash == scope_hash, IdempotencyRecord.status == PENDING)
            .values(status=status, content_type=content_type, body=body)
        )
        session.commit()


def _release(factory: sessionmaker[Session], scope_hash: str) -> None:
    with factory() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope_hash == scope_hash, IdempotencyRecord.status == PENDING
            )
        )
        session.commit()


def purge_expired(session: Session, now: datetime) -> int:
    """Delete records past their lifetime (the worker calls this); returns how many."""
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - RECORD_TTL))
    return int(getattr(result, "rowcount", 0) or 0)
