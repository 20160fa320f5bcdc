from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from tollway.db import get_or_404
from tollway.errors import NotFound, ValidationFailed
from tollway.event.schemas import EventOut, StoredEvent
from tollway.kit.pagination import decode_keyset, keyset
from tollway.kit.time import add_clamped
from tollway.meter import distinct, rollup
from tollway.models import Customer, Event


class EventNotFound(NotFound):
    code = "event_not_found"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event '{event_id}' does not exist")


def get_event(session: Session, event_id: str) -> Event:
    return get_or_404(session, Event, event_id, EventNotFound)


VoidHook = Callable[[Session, Event, datetime], None]


def void_event(session: Session, event_id: str, *, now: datetime, on_void: VoidHook | None = None) -> Event:
    """Stop an event from counting. It is kept, marked void, for audit. Voiding twice is a no-op.
    ``on_void`` runs in the same transaction when the event is newly voided (the limits take it
    off their counters)."""
    event = get_event(session, event_id)
    if event.voided_at is None:
        if on_void is not None:
            on_void(session, event, now)
        event.voided_at = now
        session.flush()
        # The hour's rollups of every meter on this event type lose the event, and so do the
        # distinct values of the billing periods it falls in (under the same exclusive lock).
        meters = rollup.load_meters(session, {event.type})
        if meters:
            rollup.lock_exclusive(session)
        for meter in meters:
            if rollup.has_rollup(meter):
                rollup.rebuild(
                    session,
                    meter,
                    customer=event.customer,
                    start=event.timestamp,
                    end=add_clamped(event.timestamp, timedelta(hours=1)),
                )
        distinct.take_off(session, event, meters)
    return event


def changed_after(cutoff: ColumnElement[datetime] | InstrumentedAttribute[datetime] | datetime) -> ColumnElement[bool]:
    """An event ingested, or voided, after ``cutoff``: one a computation with that ``as_of``
    did not see as it is now (late events and voids; ``invoice.adjust``, ``invoice.correct``)."""
    return or_(Event.ingested_at > cutoff, and_(Event.voided_at.is_not(None), Event.voided_at > cutoff))


def to_schema(event: Event) -> EventOut:
    return EventOut(
        id=event.id,
        customer=event.customer,
        type=event.type,
        timestamp=event.timestamp,
        ingested_at=event.ingested_at,
        properties=event.properties,
        voided_at=event.voided_at if event.voided_at else None,
    )


@dataclass(frozen=True)
class EventFilter:
    customer: str | None = None
    type: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Listed:
    event: Event
    customer_exists: bool

    @property
    def cursor(self) -> str:
        return keyset(self.event.timestamp.isoformat(), self.event.id)


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        moment, event_id = decode_keyset(cursor, 2)
        return datetime.fromisoformat(moment), event_id
    except ValueError as exc:
        raise ValidationFailed.field("after", "not a cursor issued by this API") from exc


def _page_query(where: list[ColumnElement[bool]], after: tuple[datetime, str] | None, limit: int) -> Select[Event]:
    """Newest first: timestamp descending, then id descending (byte order on every backend, an
    ``identifier`` column: a cursor means the same thing on SQLite and PostgreSQL and when pages
    are merged in Python)."""
    conditions = list(where)
    if after is not None:
        moment, last_id = after
        # The first term alone bounds the index range; the second breaks ties on the timestamp.
        conditions.append(Event.timestamp <= moment)
        conditions.append(or_(Event.timestamp < moment, Event.id < last_id))
    return select(Event).where(*conditions).order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit)


def event_types_of(session: Session, customer: str) -> list[str]:
    """The distinct event types of a customer's events, one index probe per type (a loose index
    scan of ``ix_events_customer_type_timestamp``), however many events it has."""
    rows = session.execute(
        text(
            "WITH RECURSIVE t(type) AS ("
            " SELECT min(type) FROM events WHERE customer = :c"
            " UNION ALL"
            " SELECT (SELECT min(type) FROM events WHERE customer = :c AND type > t.type) FROM t"
            " WHERE t.type IS NOT NULL"
            ") SELECT type FROM t WHERE type IS NOT NULL"
        ),
        {"c": customer},
    )
    return [row[0] for row in rows]


def list_events(session: Session, filters: EventFilter, *, limit: int, after: str | None) -> list[Listed]:
    """Up to ``limit`` stored events matching ``filters``, newest first, after the cursor.

    Served by the indexes: a customer and a type walk ``(customer, type, timestamp)`` backwards;
    a customer alone does that once per event type of the customer and merges the pages (a
    customer's events of all types are not in timestamp order in any index); otherwise
    ``(timestamp)`` is walked backwards from ``to`` or the cursor."""
    cursor = _after(after) if after else None
    where: list[ColumnElement[bool]] = []
    if filters.start is not None:
        where.append(Event.timestamp >= filters.start)
    if filters.end is not None:
        where.append(Event.timestamp < filters.end)
    if filters.customer is not None:
        where.append(Event.customer == filters.customer)
    if filters.type is not None:
        where.append(Event.type == filters.type)

    def fetch(conditions: list[ColumnElement[bool]]) -> list[Event]:
        return list(session.scalars(_page_query(conditions, cursor, limit)))

    if filters.customer is None or filters.type is not None:
        events = fetch(where)
    else:
        pages = [fetch([*where, Event.type == type_]) for type_ in event_types_of(session, filters.customer)]
        merged = heapq.merge(*pages, key=lambda event: (event.timestamp, event.id), reverse=True)
        events = [event for _, event in zip(range(limit), merged, strict=False)]
    # Whether each customer exists: one primary-key look-up per distinct customer of the page.
    names = sorted({event.customer for event in events})
    known = set(session.scalars(select(Customer.id).where(Customer.id.in_(names)))) if names else set()
    return [Listed(event, event.customer in known) for event in events]


def customer_exists(session: Session, customer: str) -> bool:
    return session.get(Customer, customer) is not None


def count_events_of(session: Session, customer: str, *, cap: int = 10_000) -> int:
    """How many events are stored for ``customer``, counted up to ``cap`` (an index-only scan)."""
    inner = select(Event.id).where(Event.customer == customer).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def to_stored(item: Listed) -> StoredEvent:
    return StoredEvent(**to_schema(item.event).model_dump(), customer_exists=item.customer_exists)
