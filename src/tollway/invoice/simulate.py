"""The pricing simulator: a plan (draft or published) priced on every customer's real usage of a
past period, beside what those customers were invoiced for it.

The unit of comparison is an issued invoice: every finalized or paid invoice whose period starts
in ``[start, end)`` is recomputed with the candidate plan over the same period, the same customer
and time zone, and the same usage cutoff (the invoice's ``as_of``), by the very function that
computed it (:func:`tollway.invoice.compute.period_lines`). Amounts are compared before tax and
without adjustment lines (those correct earlier periods). Invoices in another currency than the
plan's cannot be compared and are counted as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tollway.catalog.service import get_plan, plan_pricing
from tollway.errors import ValidationFailed
from tollway.invoice import schemas
from tollway.invoice.compute import PeriodContext, period_lines
from tollway.invoice.errors import UnbillableUsage
from tollway.kit.money import Currency, from_minor_units, money_str, parse_currency
from tollway.kit.periods import Period
from tollway.meter.definition import MeterDefinition
from tollway.models import Invoice, InvoiceLine, Meter, Plan, Subscription
from tollway.subscription.terms import Terms

ZERO = Decimal(0)
BILLED_STATUSES = ("finalized", "paid")


@dataclass(frozen=True)
class SimulatedInvoice:
    customer: str
    subscription: str
    invoice: str
    invoice_number: str
    current_plan: str
    period_start: datetime
    period_end: datetime
    invoiced: Decimal
    simulated: Decimal

    @property
    def difference(self) -> Decimal:
        return self.simulated - self.invoiced


@dataclass(frozen=True)
class Skipped:
    invoice: str
    customer: str
    reason: str


@dataclass
class Simulation:
    plan: str
    currency: Currency
    start: datetime
    end: datetime
    rows: list[SimulatedInvoice] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def invoiced(self) -> Decimal:
        return sum((r.invoiced for r in self.rows), ZERO)

    @property
    def simulated(self) -> Decimal:
        return sum((r.simulated for r in self.rows), ZERO)

    def winners(self, n: int = 5) -> list[SimulatedInvoice]:
        """Customers who would pay less on the plan, biggest saving first."""
        return sorted((r for r in self.rows if r.difference < 0), key=lambda r: (r.difference, r.customer))[:n]

    def losers(self, n: int = 5) -> list[SimulatedInvoice]:
        """Customers who would pay more on the plan, biggest increase first."""
        return sorted((r for r in self.rows if r.difference > 0), key=lambda r: (-r.difference, r.customer))[:n]


def _invoiced_amounts(session: Session, invoice_ids: Sequence[str]) -> dict[str, int]:
    """Per invoice: the minor units of its lines for its own period (adjustment lines excluded)."""
    out: dict[str, int] = dict.fromkeys(invoice_ids, 0)
    for chunk_start in range(0, len(invoice_ids), 500):
        chunk = invoice_ids[chunk_start : chunk_start + 500]
        rows = session.execute(
            select(InvoiceLine.invoice_id, func.coalesce(func.sum(InvoiceLine.amount_minor), 0))
            .where(InvoiceLine.invoice_id.in_(chunk), InvoiceLine.kind != "adjustment")
            .group_by(InvoiceLine.invoice_id)
        )
        for invoice_id, minor in rows:
            out[invoice_id] = int(minor)
    return out


def simulate_plan(session: Session, plan: Plan, *, start: datetime, end: datetime) -> Simulation:
    """Price ``plan`` on the usage of every invoice whose period starts in ``[start, end)``."""
    currency = parse_currency(plan.currency)
    pricing = plan_pricing(plan)
    keys = {c.meter for c in pricing.charges if c.meter}
    if pricing.revenue_share is not None:
        keys.add(pricing.revenue_share.meter)
    meters = {
        row.key: MeterDefinition.from_row(row)
        for row in session.scalars(select(Meter).where(Meter.key.in_(sorted(keys))))
    }
    result = Simulation(plan=plan.code, currency=currency, start=start, end=end)
    found = session.execute(
        select(Invoice, Subscription)
        .join(Subscription, Subscription.id == Invoice.subscription_id)
        .where(
            Invoice.period_start >= start,
            Invoice.period_start < end,
            Invoice.status.in_(BILLED_STATUSES),
        )
        .order_by(Invoice.customer_id, Invoice.period_start, Invoice.id)
    ).all()
    invoiced = _invoiced_amounts(session, [inv.id for inv, _ in found])
    plans: dict[str, Plan | None] = {}
    for invoice, sub in found:
        if invoice.currency != currency.code:
            reason = f"invoiced in {invoice.currency}, the plan is in {currency.code}"
            result.skipped.append(Skipped(invoice.id, invoice.customer_id, reason))
            continue
        if invoice.plan_code not in plans:
            plans[invoice.plan_code] = session.get(Plan, invoice.plan_code)
        billed_plan = plans[invoice.plan_code]
        # The invoice's period as its own plan's cycle numbered it (setup fee on period 0, the
        # full period for proration of a partial one).
        index = 0
        full = Period(0, invoice.period_start, invoice.period_end)
        if billed_plan is not None:
            billed_terms = Terms.of(sub, billed_plan)
            index = billed_terms.cycle.index_at(sub.start, invoice.period_start)
            full = billed_terms.cycle.period(sub.start, index)
        period = Period(index, invoice.period_start, invoice.period_end)
        ctx = PeriodContext(Terms.of(sub, plan), pricing, currency, meters)
        try:
            lines = period_lines(session, ctx, period, full, as_of=invoice.as_of)
        except UnbillableUsage as exc:
            result.skipped.append(Skipped(invoice.id, invoice.customer_id, exc.message))
            continue
        result.rows.append(
            SimulatedInvoice(
                customer=invoice.customer_id,
                subscription=sub.id,
                invoice=invoice.id,
                invoice_number=invoice.number,
                current_plan=invoice.plan_code,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                invoiced=from_minor_units(invoiced[invoice.id], currency),
                simulated=sum((line.amount for line in lines), ZERO),
            )
        )
    return result


def _row(r: SimulatedInvoice, cur: Currency) -> schemas.SimulatedInvoice:
    return schemas.SimulatedInvoice(
        customer=r.customer,
        subscription=r.subscription,
        invoice=r.invoice,
        invoice_number=r.invoice_number,
        current_plan=r.current_plan,
        period_start=r.period_start,
        period_end=r.period_end,
        invoiced=money_str(r.invoiced, cur),
        simulated=money_str(r.simulated, cur),
        difference=money_str(r.difference, cur),
    )


def simulation_schema(session: Session, plan_code: str, *, start: datetime, end: datetime) -> schemas.Simulation:
    """:func:`simulate_plan` for the API and the console (one shape for both)."""
    if end <= start:
        raise ValidationFailed.field("to", "must be after from")
    sim = simulate_plan(session, get_plan(session, plan_code), start=start, end=end)
    cur = sim.currency
    return schemas.Simulation(
        plan=sim.plan,
        currency=cur.code,
        from_=sim.start,
        to=sim.end,
        invoices=len(sim.rows),
        customers=len({r.customer for r in sim.rows}),
        invoiced=money_str(sim.invoiced, cur),
        simulated=money_str(sim.simulated, cur),
        difference=money_str(sim.simulated - sim.invoiced, cur),
        winners=[_row(r, cur) for r in sim.winners()],
        losers=[_row(r, cur) for r in sim.losers()],
        rows=[_row(r, cur) for r in sim.rows],
        skipped=[
            schemas.SimulationSkipped(invoice=s.invoice, customer=s.customer, reason=s.reason) for s in sim.skipped
        ],
    )
