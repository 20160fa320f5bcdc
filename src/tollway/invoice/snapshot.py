"""What an invoice document prints, frozen when the invoice is finalized.

The seller block and the payment wording come from the provider settings, the buyer block from the
customer, the plan, charge and meter names from the catalog, and the time zone from the
subscription. They are copied into ``invoices.snapshot`` in the finalizing transaction, so a later
rename of the customer or edit of the settings changes the next invoices, never an issued one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.models import Customer, Meter, Plan, Subscription
from tollway.models import Invoice as InvoiceRow
from tollway.settings.schemas import CompanySettings, ProviderSettings
from tollway.settings.service import get_provider_settings


class Buyer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    email: str | None = None
    address: str | None = None
    tax_id: str | None = None


class InvoiceSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seller: CompanySettings
    buyer: Buyer
    plan_name: str | None = None
    charge_names: dict[str, str] = Field(default_factory=dict, description="charge code -> the charge's name")
    meter_names: dict[str, str] = Field(default_factory=dict, description="meter key -> the meter's name")
    payment_terms_days: int = 0
    payment_instructions: str | None = None
    footer: str | None = None
    timezone: str = "UTC"


@dataclass
class RunSources:
    """What a billing run reads once instead of once per invoice: the provider settings as the run
    began, and meter names per set of meter keys (a meter that a published plan uses cannot be
    changed, so its name is fixed while it is billed)."""

    settings: ProviderSettings
    meter_names: dict[frozenset[str], dict[str, str]] = field(default_factory=dict)


def _meter_names(session: Session, keys: frozenset[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = session.execute(select(Meter.key, Meter.name).where(Meter.key.in_(sorted(keys))))
    return {key: name for key, name in rows if name}


def take(
    session: Session,
    *,
    customer: Customer,
    plan: Plan,
    timezone: str,
    meters: Iterable[str | None],
    payment_terms_days: int,
    sources: RunSources | None = None,
) -> InvoiceSnapshot:
    settings = sources.settings if sources is not None else get_provider_settings(session)
    keys = frozenset(key for key in meters if key)
    if sources is None:
        names = _meter_names(session, keys)
    elif keys in sources.meter_names:
        names = sources.meter_names[keys]
    else:
        names = sources.meter_names[keys] = _meter_names(session, keys)
    return InvoiceSnapshot(
        seller=settings.company,
        buyer=Buyer(
            name=customer.name or customer.id, email=customer.email, address=customer.address, tax_id=customer.tax_id
        ),
        plan_name=plan.name,
        charge_names={str(c["code"]): str(c["name"]) for c in plan.charges or [] if c.get("name")},
        meter_names=names,
        payment_terms_days=payment_terms_days,
        payment_instructions=settings.invoice.payment_instructions,
        footer=settings.invoice.footer,
        timezone=timezone,
    )


def snapshot_of(session: Session, invoice: InvoiceRow, meters: Iterable[str | None]) -> InvoiceSnapshot:
    """The invoice's frozen snapshot; for an invoice finalized before snapshots existed, one taken
    now from the current customer, plan and settings (the best that can be done)."""
    if invoice.snapshot:
        return InvoiceSnapshot.model_validate(invoice.snapshot)
    customer = session.get(Customer, invoice.customer_id)
    plan = session.get(Plan, invoice.plan_code)
    sub = session.get(Subscription, invoice.subscription_id)
    assert customer is not None and plan is not None
    terms = max((invoice.due_at - invoice.issued_at).days, 0)
    return take(
        session,
        customer=customer,
        plan=plan,
        timezone=sub.timezone if sub is not None else "UTC",
        meters=meters,
        payment_terms_days=terms,
    )
