from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    errors: list[dict[str, Any]]


class EventOut(BaseModel):
    id: str
    customer: str
    type: str
    timestamp: datetime
    ingested_at: datetime
    properties: dict[str, Any]
    voided_at: datetime | None


class StoredEvent(EventOut):
    customer_exists: bool
    """False for an event whose customer has not been created (yet): it is kept, and bills once a
    customer with this id exists and has a subscription."""


class UnknownCustomers(BaseModel):
    customers: list[str]
    """The customer ids of this page's events that name no existing customer."""
    events: int
    """How many of this page's events they account for."""


class EventPage(BaseModel):
    """``GET /v1/events``: stored events, newest first, with a hint of unknown customers."""

    data: list[StoredEvent]
    next: str | None
    unknown_customers: UnknownCustomers
    customer_exists: bool | None = None
    """With ``?customer=``: whether that customer exists (null without the filter)."""
