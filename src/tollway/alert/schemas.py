from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from tollway.kit.fields import DecimalStr, Identifier


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


Threshold = Annotated[DecimalStr, AfterValidator(_positive)]
Metric = Literal["usage", "spend"]
Channel = Literal["webhook", "email"]
DEFAULT_CHANNELS: tuple[Channel, ...] = ("webhook", "email")


class AlertCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    customer: Identifier | None = Field(default=None, description="null = every customer")
    metric: Metric
    meter: Identifier | None = Field(default=None, description="required for `usage`, not allowed for `spend`")
    thresholds: list[Threshold] = Field(min_length=1, max_length=20)
    channels: list[Channel] = Field(default_factory=lambda: list(DEFAULT_CHANNELS))

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, values: list[Decimal]) -> list[Decimal]:
        for i in range(1, len(values)):
            if values[i] <= values[i - 1]:
                raise ValueError(f"thresholds must be strictly increasing (thresholds[{i}])")
        return values

    @field_validator("channels")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return sorted(set(values), key=values.index)


class Alert(BaseModel):
    id: str
    customer: str | None
    metric: Metric
    meter: str | None
    thresholds: list[DecimalStr]
    channels: list[Channel]
    created_at: datetime


class AlertEvent(BaseModel):
    id: str
    source: Literal["plan_notification", "alert"]
    alert: str | None
    customer: str
    subscription: str
    meter: str | None
    metric: Metric
    threshold: str
    threshold_value: str
    value: str
    period_start: datetime
    period_end: datetime
    fired_at: datetime
