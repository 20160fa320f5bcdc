"""Pydantic I/O for the catalog: products, bundles, plans and the plan preview.

The pricing parts of a plan (``fees``, ``charges``, ``revenue_share``) are taken as JSON objects
and validated by the pricing package (``tollway.pricing``), which names problems by their JSON
path (``charges[0].tiers[1].up_to``); everything else is typed here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tollway.kit.fields import CurrencyCode, DecimalStr, Identifier, Timestamp

PlanInterval = Literal["day", "week", "month", "year"]
BillingAnchor = Literal["calendar", "anniversary"]
Visibility = Literal["public", "private"]
AudienceType = Literal["all", "categories", "companies", "customers"]
PlanStatus = Literal["draft", "published"]
LimitAction = Literal["block", "notify"]


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


PositiveDecimalStr = Annotated[DecimalStr, AfterValidator(_positive)]


def _fraction(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(1):
        raise ValueError("must be between 0 and 1")
    return value


PeriodFraction = Annotated[DecimalStr, AfterValidator(_fraction)]
Label = Annotated[str, Field(min_length=1, max_length=200)]

_CHARGE_EXAMPLE = {
    "code": "calls",
    "meter": "api_calls",
    "product": "weather",
    "model": "package",
    "package_size": "1000",
    "package_price": "5.00",
    "free_units": "5000",
}


# ---------------------------------------------------------------------------------- products


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)


class _Code(BaseModel):
    code: Identifier


class ProductCreate(ProductUpdate, _Code):
    pass


class Product(ProductCreate):
    created_at: datetime
    updated_at: datetime


# ----------------------------------------------------------------------------------- bundles


def _distinct(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"'{value}' is listed twice (products[{i}])")
        seen.add(value)
    return values


class BundleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)
    products: Annotated[list[Identifier], AfterValidator(_distinct)] | None = Field(default=None, max_length=500)


class BundleCreate(BundleUpdate):
    code: Identifier
    products: Annotated[list[Identifier], AfterValidator(_distinct)] = Field(default_factory=list, max_length=500)


class Bundle(BaseModel):
    code: str
    name: str | None
    description: str | None
    products: list[str]
    created_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------------------------- plans


class Audience(BaseModel):
    """Who may subscribe: everyone, or customers whose category, company or id is listed."""

    model_config = ConfigDict(extra="forbid")

    type: AudienceType = "all"
    values: list[Label] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _values_fit_type(self) -> Audience:
        if self.type == "all" and self.values:
            raise ValueError("an audience of type 'all' takes no values")
        if self.type != "all" and not self.values:
            raise ValueError(f"an audience of type '{self.type}' needs at least one value")
        self.values = list(dict.fromkeys(self.values))
        return self


class Notifications(BaseModel):
    """Usage alerts at percentages of a target (notify, never block)."""

    model_config = ConfigDict(extra="forbid")

    meter: Identifier
    target: PositiveDecimalStr
    thresholds: list[PositiveDecimalStr] = Field(min_length=1, max_length=20)

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, values: list[Decimal]) -> list[Decimal]:
        for i in range(1, len(values)):
            if values[i] <= values[i - 1]:
                raise ValueError(f"thresholds must be in ascending order (thresholds[{i}])")
        return values


class Limit(BaseModel):
    """A usage ceiling per period: ``block`` refuses usage past ``max``; ``notify`` only alerts."""

    model_config = ConfigDict(extra="forbid")

    meter: Identifier
    max: PositiveDecimalStr
    action: LimitAction = "block"


FeesDoc = dict[str, Any]
ChargeDoc = dict[str, Any]
RevenueShareDoc = dict[str, Any]


class PlanTerms(BaseModel):
    """Every field of a plan a caller writes (``code`` aside)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)
    currency: CurrencyCode
    bundle: Identifier | None = None
    interval: PlanInterval = "month"
    interval_count: int = Field(default=1, ge=1, le=1000)
    billing_anchor: BillingAnchor = "calendar"
    visibility: Visibility = "public"
    audience: Audience = Field(default_factory=Audience)
    payment_terms_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="days from an invoice's issue to its due date; null = the settings' invoice.payment_terms_days",
    )
    contract_months: int | None = Field(default=None, ge=0, le=1200)
    free_period_days: int = Field(default=0, ge=0, le=36500)
    fees: FeesDoc | None = Field(
        default=None,
        description='{"setup", "early_termination", "recurring": {"amount", "in_advance", "prorate"}}; '
        "amounts as decimal strings",
        examples=[{"setup": "99.00", "recurring": {"amount": "49.00", "in_advance": True, "prorate": True}}],
    )
    charges: list[ChargeDoc] = Field(
        default_factory=list,
        max_length=200,
        description="usage charges: code (unique in the plan), meter, optional product, model "
        "(flat, package, graduated, volume, stairstep, percentage, bundle) and its parameters",
        examples=[[_CHARGE_EXAMPLE]],
    )
    revenue_share: RevenueShareDoc | None = Field(
        default=None,
        description='{"meter", "model": "fixed", "percent"} or {"meter", "model": "flexible", "bands": [...]}',
    )
    notifications: Notifications | None = None
    limits: list[Limit] = Field(default_factory=list, max_length=100)
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None


class PlanCreate(PlanTerms, _Code):
    pass


class PlanUpdate(BaseModel):
    """Fields to change; each given field replaces the stored one (documents are not merged)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)
    currency: CurrencyCode | None = None
    bundle: Identifier | None = None
    interval: PlanInterval | None = None
    interval_count: int | None = Field(default=None, ge=1, le=1000)
    billing_anchor: BillingAnchor | None = None
    visibility: Visibility | None = None
    audience: Audience | None = None
    payment_terms_days: int | None = Field(default=None, ge=0, le=3650)
    contract_months: int | None = Field(default=None, ge=0, le=1200)
    free_period_days: int | None = Field(default=None, ge=0, le=36500)
    fees: FeesDoc | None = None
    charges: list[ChargeDoc] | None = Field(default=None, max_length=200)
    revenue_share: RevenueShareDoc | None = None
    notifications: Notifications | None = None
    limits: list[Limit] | None = Field(default=None, max_length=100)
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None


class Plan(PlanCreate):
    status: PlanStatus
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


# ----------------------------------------------------------------------------------- preview


class PlanPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantities: dict[str, Any] = Field(
        default_factory=dict,
        description="charge code -> period quantity (decimal string); for a dimension charge an object "
        "dimension value -> quantity; the revenue share's meter key -> the period's revenue",
        examples=[{"calls": "12345"}],
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="charge code -> per-event values, for percentage charges with a fixed fee, minimum or maximum",
    )
    period_fraction: PeriodFraction = Field(
        default=Decimal(1), description="the share of the period used (0 to 1); prorates the recurring fee"
    )
    include_setup_fee: bool = False
    include_recurring_fee: bool = True
    include_early_termination_fee: bool = False


class PreviewLine(BaseModel):
    kind: str
    charge: str | None
    meter: str | None
    description: str
    quantity: str
    amount: str
    details: dict[str, Any]


class PlanPreview(BaseModel):
    plan: str
    currency: str
    lines: list[PreviewLine]
    subtotal: str
    total: str
