"""The outbox: domain events written in the same transaction as the change they report, and
delivered afterwards by the worker to registered handlers (webhooks, email, provider sync...).

- :func:`emit` adds a message to the caller's session (it commits with the change, or not at all).
- :func:`register` adds a delivery handler for a topic (or ``"*"`` for every topic).
- :func:`drain` claims due messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
  share the work; SQLite serializes writers), runs the handlers, marks each delivered, or on
  failure records the error and schedules a retry with exponential backoff. Rows are never
  deleted: a message that keeps failing stays, visible, and keeps being retried (at most hourly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from tollway.db import is_postgres
from tollway.kit.time import utcnow
from tollway.models import OutboxMessage

log = logging.getLogger("tollway.outbox")

Handler = Callable[[OutboxMessage], None]
HANDLERS: dict[str, list[Handler]] = {}

MAX_BACKOFF = timedelta(hours=1)
BASE_BACKOFF = timedelta(seconds=5)


def register(topic: str, handler: Handler) -> Handler:
    """Deliver messages of ``topic`` (or every topic with ``"*"``) to ``handler``."""
    handlers = HANDLERS.setdefault(topic, [])
    if handler not in handlers:
        handlers.append(handler)
    return handler


def unregister(topic: str, handler: Handler) -> None:
    if handler in HANDLERS.get(topic, []):
        HANDLERS[topic].remove(handler)


def emit(session: Session, topic: str, payload: dict[str, Any], *, key: str | None = None) -> OutboxMessage:
    """Queue a domain event in the caller's transaction."""
    now = utcnow()
    message = OutboxMessage(topic=topic, key=key, payload=payload, created_at=now, available_at=now, attempts=0)
    session.add(message)
    return message


def emit_now(session: Session, topic: str, payload: dict[str, Any], *, key: str | None = None) -> None:
    """:func:`emit` as a plain INSERT executed at once, for hot paths that write without the ORM."""
    now = utcnow()
    session.execute(
        insert(OutboxMessage).values(
            topic=topic, key=key, payload=payload, created_at=now, available_at=now, attempts=0
        )
    )


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at one hour."""
    delay: timedelta = BASE_BACKOFF * int(2 ** min(max(attempts - 1, 0), 20))
    return min(delay, MAX_BACKOFF)


def _deliver(message: OutboxMessage) -> None:
    for handler in [*HANDLERS.get(message.topic, []), *HANDLERS.get("*", [])]:
        handler(message)


def drain(factory: sessionmaker[Session], *, now: datetime | None = None, batch: int = 100) -> tuple[int, int]:
    """Deliver one batch of due messages. Returns (delivered, failed)."""
    now = now or utcnow()
    delivered = failed = 0
    with factory() as session:
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= now)
            .order_by(OutboxMessage.id)
            .limit(batch)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        messages = list(session.scalars(stmt))
        for message in messages:
            try:
                _deliver(message)
            except Exception as exc:  # any handler failure is retried later
                message.attempts += 1
                message.last_error = f"{type(exc).__name__}: {exc}"[:4000]
                message.available_at = now + backoff(message.attempts)
                failed += 1
                log.warning(
                    "outbox message %s (%s) failed, attempt %s: %s", message.id, message.topic, message.attempts, exc
                )
            else:
                message.attempts += 1
                message.delivered_at = now
                message.last_error = None
                delivered += 1
        session.commit()
    return delivered, failed
