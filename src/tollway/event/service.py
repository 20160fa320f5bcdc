from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tollway.db import get_or_404
from tollway.errors import NotFound
from tollway.event.schemas import EventOut
from tollway.kit.time import add_clamped
from tollway.meter import rollup
from tollway.models import Event


class EventNotFound(NotFound):
    code = "event_not_found"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event '{event_id}' does not exist")


def get_event(session: Session, event_id: str) -> Event:
    return get_or_404(session, Event, event_id, EventNotFound)


def void_event(session: Session, event_id: str, *, now: datetime) -> Event:
    """Stop an event from counting. It is kept, marked void, for audit. Voiding twice is a no-op."""
    event = get_event(session, event_id)
    if event.voided_at is None:
        event.voided_at = now
        session.flush()
        # The hour's rollups of every meter on this event type lose the event.
        for meter in rollup.load_meters(session, {event.type}):
            rollup.rebuild(
                session,
                meter,
                customer=event.customer,
                start=event.timestamp,
                end=add_clamped(event.timestamp, timedelta(hours=1)),
            )
    return event


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
