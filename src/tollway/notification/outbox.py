"""The outbox: domain events written in the same transaction as the change they report, and
delivered afterwards by the worker to registered handlers (webhooks, email, provider sync...).

- :func:`emit` adds a message to the caller's session (it commits with the change, or not at all).
- :func:`register` adds a delivery handler for a topic (or ``"*"`` for every topic). Handlers are
  registered explicitly when a worker starts (``tollway.worker.register_handlers``), never as an
  import side effect.
- :func:`drain` claims due messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
  share the work; SQLite serializes writers) and runs each handler that has not yet processed the
  message. Handlers are independent: each runs in its own SAVEPOINT (its writes are undone if it
  raises), the names of those that succeeded are kept on the message (``handled``), and only the
  failed ones run again, after a backoff. A message is delivered when every handler has handled
  it. Rows are never deleted: a message that keeps failing stays, visible, and keeps being
  retried (at most hourly).

A handler receives the message, which is attached to the drain's session: a handler that writes
to the database uses ``sqlalchemy.orm.object_session(message)`` (its writes commit with the
message's progress). A handler that calls out of the process (HTTP, SMTP, Stripe) should rather
record its own work item and deliver it on its own schedule, as webhooks do
(``notification.delivery``): one slow receiver then never delays the others. Handlers must be
idempotent: a crash between a handler's effect and the commit runs it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tollway.db import is_postgres
from tollway.kit.time import utcnow
from tollway.models import OutboxMessage

log = logging.getLogger("tollway.outbox")

Handler = Callable[[OutboxMessage], None]
HANDLERS: dict[str, dict[str, Handler]] = {}
"""topic -> handler name -> handler."""

MAX_BACKOFF = timedelta(hours=1)
BASE_BACKOFF = timedelta(seconds=5)


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{getattr(handler, '__qualname__', type(handler).__qualname__)}"


def register(topic: str, handler: Handler, *, name: str | None = None) -> Handler:
    """Deliver messages of ``topic`` (or every topic with ``"*"``) to ``handler``. ``name`` (default:
    the handler's module and qualified name) records on each message that this handler has
    processed it, so keep it stable. Registering the same name again replaces the handler."""
    HANDLERS.setdefault(topic, {})[name or handler_name(handler)] = handler
    return handler


def unregister(topic: str, handler: Handler, *, name: str | None = None) -> None:
    HANDLERS.get(topic, {}).pop(name or handler_name(handler), None)


def handlers_for(topic: str) -> list[tuple[str, Handler]]:
    return [*HANDLERS.get(topic, {}).items(), *HANDLERS.get("*", {}).items()]


def emit(session: Session, topic: str, payload: dict[str, Any], *, key: str | None = None) -> OutboxMessage:
    """Queue a domain event in the caller's transaction."""
    now = utcnow()
    message = OutboxMessage(topic=topic, key=key, payload=payload, created_at=now, available_at=now, attempts=0)
    session.add(message)
    return message


def emit_now(session: Session, topic: str, payload: dict[str, Any], *, key: str | None = None) -> None:
    """:func:`emit` as a plain INSERT executed at once, for hot paths that write without the ORM."""
    emit_many(session, [(topic, payload, key)])


def emit_many(session: Session, messages: Sequence[tuple[str, dict[str, Any], str | None]]) -> None:
    """:func:`emit_now` of several ``(topic, payload, key)`` messages in one INSERT, in order."""
    if not messages:
        return
    now = utcnow()
    session.execute(
        insert(cast(Table, OutboxMessage.__table__)),
        [
            {"topic": topic, "key": key, "payload": payload, "created_at": now, "available_at": now, "attempts": 0}
            for topic, payload, key in messages
        ],
    )


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at one hour."""
    delay: timedelta = BASE_BACKOFF * int(2 ** min(max(attempts - 1, 0), 20))
    return min(delay, MAX_BACKOFF)


def _run_handlers(session: Session, message: OutboxMessage) -> list[str]:
    """Run the handlers that have not handled ``message`` yet, each in a SAVEPOINT. Returns the
    errors of those that failed (they run again later; the others do not)."""
    done = set(message.handled or [])
    errors: list[str] = []
    for name, handler in handlers_for(message.topic):
        if name in done:
            continue
        try:
            with session.begin_nested():
                handler(message)
        except Exception as exc:  # a handler failure is retried later, alone
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            log.warning("outbox message %s (%s): handler %s failed: %s", message.id, message.topic, name, exc)
        else:
            done.add(name)
    if done != set(message.handled or []):
        message.handled = sorted(done)
    return errors


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
            errors = _run_handlers(session, message)
            if errors:
                message.attempts += 1
                message.last_error = "; ".join(errors)[:4000]
                message.available_at = now + backoff(message.attempts)
                failed += 1
            else:
                message.attempts += 1
                message.delivered_at = now
                message.last_error = None
                delivered += 1
        session.commit()
    return delivered, failed
