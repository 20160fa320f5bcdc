"""Pydantic I/O of the portal: sessions and the plans a customer may choose."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollway.catalog.schemas import PlanPreview
from tollway.kit.fields import Identifier

Permission = Literal["read", "subscribe"]


class PortalSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: int = Field(default=3600, ge=60, le=86400, description="seconds the token stays valid (60-86400)")
    return_url: str | None = Field(
        default=None, max_length=2000, description="http(s) URL the page links back to (the provider's app)"
    )
    permissions: list[Permission] = Field(
        default_factory=lambda: list[Permission](["read"]),
        min_length=1,
        description="read; plus subscribe for self-service",
    )

    @field_validator("return_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("permissions")
    @classmethod
    def _with_read(cls, value: list[str]) -> list[str]:
        return sorted(set(value) | {"read"})


class PortalSession(BaseModel):
    id: str
    customer: str
    token: str = Field(description="pt_…; shown once, stored only hashed")
    url: str = Field(description="the portal page, the token in the URL fragment (never sent to a server)")
    permissions: list[str]
    return_url: str | None
    expires_at: datetime


class PortalSessionsRevoked(BaseModel):
    customer: str
    revoked: int


class PortalPlan(BaseModel):
    """A plan the customer may choose: its terms as the customer sees them (never its audience),
    its prices in words, and what the customer's usage so far this period would cost on it."""

    code: str
    name: str | None
    description: str | None
    currency: str
    interval: str
    interval_count: int
    contract_months: int | None
    free_period_days: int
    prices: list[str] = Field(description="each fee and charge in words")
    limits: list[dict[str, Any]]
    current: bool = Field(description="the customer's active subscription is on this plan")
    preview: PlanPreview | None = Field(description="this period's usage so far, priced on this plan")


class PortalSubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Identifier


class PortalChangePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Identifier
