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


class InvoiceCredit(BaseModel):
    """Prepaid credit of one grant applied to the invoice at finalization."""

    grant: str
    amount: str


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
    credits_applied: str | None = None
    credits: list[InvoiceCredit] = Field(default_factory=list)
    amount_due: str | None = Field(default=None, description="total - credits_applied")
    # Beyond the contract:
    kind: Literal["regular", "correction"] = Field(
        default="regular",
        description="regular: one subscription period; correction: adjustment lines only, issued after the "
        "subscription ended (the period is the time after its last invoice in which the late or voided events arrived)",
    )
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


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Timestamp = Field(alias="from", description="RFC 3339: invoices whose period starts at or after this")
    to: Timestamp = Field(description="RFC 3339: ... and before this")


class SimulatedInvoice(BaseModel):
    customer: str
    subscription: str
    invoice: str
    invoice_number: str
    current_plan: str
    period_start: datetime
    period_end: datetime
    invoiced: str
    simulated: str
    difference: str


class SimulationSkipped(BaseModel):
    invoice: str
    customer: str
    reason: str


class Simulation(BaseModel):
    """A plan priced on the usage of every invoice whose period starts in ``[from, to)``, beside
    what was invoiced (before tax, adjustment lines excluded)."""

    model_config = ConfigDict(populate_by_name=True)

    plan: str
    currency: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    invoices: int
    customers: int
    invoiced: str
    simulated: str
    difference: str
    winners: list[SimulatedInvoice] = Field(description="would pay less on the plan, biggest saving first")
    losers: list[SimulatedInvoice] = Field(description="would pay more on the plan, biggest increase first")
    rows: list[SimulatedInvoice]
    skipped: list[SimulationSkipped]
