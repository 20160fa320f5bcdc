"""Pydantic I/O of ``POST /v1/limits/check``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tollway.kit.fields import DecimalStr, Identifier, NonNegativeDecimalStr

Reason = Literal["limit_reached", "credits_exhausted", "no_subscription", "limits_unavailable"]


class LimitCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: Identifier
    meter: Identifier | None = Field(default=None, description="omitted: every limit of the customer")
    quantity: NonNegativeDecimalStr = Field(
        default=Decimal(1), description="the usage about to happen; allowed when used + quantity <= max"
    )


class LimitStatus(BaseModel):
    meter: str
    window: Literal["period", "day", "hour", "minute"]
    max: DecimalStr
    used: DecimalStr
    remaining: DecimalStr
    window_start: datetime
    resets_at: datetime
    action: Literal["block", "notify"]
    subscription: str


class LimitCheckResult(BaseModel):
    allowed: bool
    reason: Reason | None
    limits: list[LimitStatus]
