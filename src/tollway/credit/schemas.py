"""Pydantic I/O for prepaid credits (contract: docs/credits.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tollway.kit.fields import CurrencyCode, DecimalStr, Identifier, Timestamp

Category = Literal["paid", "promotional"]
GrantStatus = Literal["active", "depleted", "expired", "voided"]
LedgerKind = Literal["grant", "applied", "expired", "voided"]


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


PositiveAmount = Annotated[DecimalStr, AfterValidator(_positive)]


class CreditGrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    amount: PositiveAmount = Field(description="in the customer's currency, at most its minor unit")
    currency: CurrencyCode | None = Field(default=None, description="optional; must be the customer's currency")
    category: Category = "paid"
    priority: int = Field(default=0, ge=0, le=1_000_000, description="lower pays first")
    effective_at: Timestamp | None = Field(default=None, description="RFC 3339; default: now")
    expires_at: Timestamp | None = Field(default=None, description="RFC 3339, after effective_at; null: never")
    description: str | None = Field(default=None, max_length=1000)


class CreditGrant(BaseModel):
    id: str
    customer: str
    currency: str
    amount: str
    remaining: str
    category: Category
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    description: str | None
    status: GrantStatus
    voided_at: datetime | None = None
    created_at: datetime


class Credits(BaseModel):
    """The customer's credits at ``at``: ``balance`` = what usable grants can still pay;
    ``ongoing_balance`` = balance - the upcoming invoice total of the period containing ``at``."""

    customer: str
    currency: str
    at: datetime
    balance: str
    ongoing_balance: str
    upcoming_total: str
    grants: list[CreditGrant]


class LedgerEntry(BaseModel):
    id: int
    kind: LedgerKind
    amount: str = Field(description="signed: + adds to the balance, - takes from it")
    currency: str
    grant: str
    invoice: str | None
    at: datetime
    created_at: datetime
