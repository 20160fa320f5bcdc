from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tollway.kit.fields import CurrencyCode, DecimalStr, EmailAddress, Identifier, NonNegativeDecimalStr, TimezoneName
from tollway.payment.schemas import PaymentCollection


def _tax_rate(value: Decimal) -> Decimal:
    if not (Decimal(0) <= value <= Decimal(100)):
        raise ValueError("must be a percentage between 0 and 100")
    return value


TaxRate = Annotated[DecimalStr, AfterValidator(_tax_rate)]
BillingType = Literal["postpaid", "prepaid"]


class CustomerBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    email: EmailAddress | None = None
    currency: CurrencyCode = "USD"
    timezone: TimezoneName = "UTC"
    category: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    address: str | None = Field(
        default=None, max_length=2000, description="printed on invoices; lines separated by \\n"
    )
    tax_id: str | None = Field(default=None, max_length=100, description="the customer's VAT or tax number")
    tax_rate: TaxRate = Decimal(0)
    billing_type: BillingType = Field(
        default="postpaid", description="prepaid: the limits check refuses at an ongoing balance <= 0"
    )
    low_balance_threshold: NonNegativeDecimalStr | None = Field(
        default=None, description="credits.low_balance fires when the ongoing balance falls to it"
    )
    payment_collection: PaymentCollection = Field(
        default="charge_automatically", description="how the payment provider collects this customer's invoices"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class CustomerCreate(CustomerBase):
    id: Identifier


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    email: EmailAddress | None = None
    currency: CurrencyCode | None = None
    timezone: TimezoneName | None = None
    category: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=2000)
    tax_id: str | None = Field(default=None, max_length=100)
    tax_rate: TaxRate | None = None
    billing_type: BillingType | None = None
    low_balance_threshold: NonNegativeDecimalStr | None = None
    payment_collection: PaymentCollection | None = None
    metadata: dict[str, Any] | None = None


class Customer(CustomerBase):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: str
    email: str | None = None  # as stored (addresses are checked on the way in)
    created_at: datetime
    updated_at: datetime
