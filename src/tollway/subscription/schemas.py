"""Pydantic I/O for subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tollway.catalog.schemas import PositiveDecimalStr
from tollway.kit.fields import Identifier, Timestamp

SubscriptionStatus = Literal["active", "canceled", "ended"]
CancelMode = Literal["immediate", "period_end"]


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notification_target: int | None = Field(default=None, ge=0, description="replaces the plan's notifications.target")
    limits: dict[Identifier, PositiveDecimalStr] | None = Field(
        default=None,
        max_length=100,
        description="meter key → max: replaces the max of the plan's 'period' limits on that meter",
        examples=[{"api_calls": "200000"}],
    )


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    customer: Identifier
    plan: Identifier
    start: Timestamp | None = Field(default=None, description="RFC 3339; default: now")
    overrides: Overrides = Field(default_factory=Overrides)


class SubscriptionCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Timestamp | None = Field(default=None, description="RFC 3339; default: now")
    mode: CancelMode = "immediate"


class SubscriptionChangePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Identifier
    at: Timestamp | None = Field(default=None, description="RFC 3339; default: now")
    id: Identifier | None = Field(default=None, description="id of the new subscription; default: '<id>.<n>'")
    charge_setup_fee: bool = Field(default=True, description="charge the new plan's setup fee, if it has one")


class Period(BaseModel):
    start: datetime
    end: datetime


class Subscription(BaseModel):
    id: str
    customer: str
    plan: str
    status: SubscriptionStatus
    start: datetime
    ends_at: datetime | None
    canceled_at: datetime | None
    cancel_mode: str | None
    timezone: str
    current_period: Period | None
    contract_ends_at: datetime | None
    previous: str | None
    changed_to: str | None
    overrides: Overrides
    billed_until: datetime | None
    created_at: datetime
    updated_at: datetime
