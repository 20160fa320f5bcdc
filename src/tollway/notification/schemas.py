from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tollway.kit.fields import Identifier
from tollway.notification.events import EVENT_TYPES
from tollway.notification.urls import check_url_syntax


def _event_types(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    for i, value in enumerate(values):
        if value not in EVENT_TYPES:
            raise ValueError(f"event_types[{i}]: unknown event type '{value}' (known: {', '.join(EVENT_TYPES)})")
    return sorted(set(values), key=values.index)


WebhookUrl = Annotated[str, AfterValidator(check_url_syntax)]
EventTypes = Annotated[list[str] | None, AfterValidator(_event_types)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    url: WebhookUrl
    event_types: EventTypes = Field(default=None, description="omitted or null = every event type")
    description: str | None = Field(default=None, max_length=1000)


class WebhookEndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    event_types: EventTypes = None
    description: str | None = Field(default=None, max_length=1000)
    status: Literal["enabled", "disabled"] | None = Field(
        default=None, description="`enabled` re-enables an endpoint disabled after repeated failures"
    )


class WebhookEndpoint(BaseModel):
    id: str
    url: str
    event_types: list[str] | None
    description: str | None
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="whsec_<base64>: shown on create and on rotate-secret only")


class WebhookDelivery(BaseModel):
    id: str
    endpoint: str
    message_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
