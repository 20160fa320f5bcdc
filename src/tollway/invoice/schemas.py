"""Pydantic I/O for invoices (the contract's invoice shape) and the billing run."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tollway.kit.fields import Timestamp
from tollway.payment.schemas import Payment

InvoiceStatus = Literal["draft", "finalized", "paid", "void"]
LineKind = Literal[
    "usage", "setup_fee", "recurring_fee", "early_termination_fee", "bundle", "revenue_share", "adjustment"
]


class InvoiceLine(BaseModel):
    kind: LineKind
    charge: str | None
    meter: str | None
    description: str
    quantity: str
    amount: str
    details: dict[str, Any]


class Invoice(BaseModel):
    id: str | None
    number: str | None
    customer: str
    subscription: str | None
    currency: str | None
    status: InvoiceStatus
    period_start: datetime | None
    period_end: datetime | None
    issued_at: datetime | None
    due_at: datetime | None
    lines: list[InvoiceLine]
    subtotal: str | None
    tax: str | None
    total: str | None
    # Beyond the contract:
    plan: str | None = None
    tax_rate: str | None = None
    as_of: datetime | None = None
    paid_at: datetime | None = None
    voided_at: datetime | None = None
    seller: dict[str, Any] | None = Field(
        default=None, description="the seller block as issued (the settings' company at finalization)"
    )
    buyer: dict[str, Any] | None = Field(
        default=None, description="the buyer block as issued: the customer's name, e-mail, address, tax id then"
    )
    payment: Payment | None = Field(default=None, description="collection at the payment provider, once sent")


class UpcomingInvoice(Invoice):
    """The live invoice of the period containing ``at``. With one active subscription it is that
    subscription's invoice; with several, ``lines`` holds all their lines (each line's
    ``details.subscription`` names its subscription), totals are summed when all are in one
    currency, and ``invoices`` lists each subscription's own invoice."""

    at: datetime
    invoices: list[Invoice] = Field(default_factory=list)


class BillingRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: Timestamp | None = Field(default=None, description="RFC 3339; default: now")


class BillingRunResult(BaseModel):
    until: datetime
    subscriptions_checked: int
    invoices_created: int
    invoices: list[str]
    failed: list[dict[str, str]] = Field(
        default_factory=list, description="subscriptions that could not be billed, with the reason"
    )
