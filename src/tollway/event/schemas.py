from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


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


class EventIn(BaseModel):
    """One usage event (documentation of the request body; ``event.ingest`` validates it)."""

    id: str = Field(description="unique per event: the idempotency key (a repeated id is a duplicate)")
    customer: str = Field(description="the customer's id (it may not exist yet)")
    type: str = Field(description="the event type meters select on")
    timestamp: datetime | None = Field(default=None, description="RFC 3339; default: the server's time")
    properties: dict[str, Any] = Field(default_factory=dict)


class CloudEventIn(BaseModel):
    """A CloudEvents 1.0 event in structured mode."""

    specversion: str = Field(description='"1.0"')
    id: str
    source: str
    type: str
    subject: str = Field(description="the customer's id")
    time: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="the event's properties")


_EXAMPLE = {
    "id": "evt_1",
    "customer": "acme",
    "type": "api_call",
    "timestamp": "2026-01-05T10:00:00Z",
    "properties": {"endpoint": "/v1/forecast", "status": 200, "bytes": 5120},
}
_CE_EXAMPLE = {
    "specversion": "1.0",
    "id": "evt_2",
    "source": "gateway",
    "type": "api_call",
    "subject": "acme",
    "time": "2026-01-05T10:00:00Z",
    "data": {"endpoint": "/v1/forecast", "status": 200},
}


def ingest_request_body(max_events: int) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /v1/events`` (the route reads its body itself)."""
    event, cloud_event = EventIn.model_json_schema(), CloudEventIn.model_json_schema()
    batch = {
        "title": "EventBatch",
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "maxItems": max_events, "items": event}},
    }
    return {
        "required": True,
        "description": f"One event or a batch of at most {max_events} events, at most 1 MiB after "
        "decompression (`Content-Encoding: gzip` accepted).",
        "content": {
            "application/json": {
                "schema": {"oneOf": [event, batch]},
                "examples": {
                    "single": {"value": _EXAMPLE},
                    "batch": {"value": {"events": [_EXAMPLE, {**_EXAMPLE, "id": "evt_3"}]}},
                },
            },
            "application/cloudevents+json": {"schema": cloud_event, "example": _CE_EXAMPLE},
            "application/cloudevents-batch+json": {
                "schema": {"type": "array", "maxItems": max_events, "items": cloud_event},
                "example": [_CE_EXAMPLE],
            },
        },
    }
