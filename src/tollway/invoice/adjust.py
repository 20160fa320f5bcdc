"""Corrections to finalized periods: late events and voided events, by one mechanism.

A finalized invoice counted the events ingested by its ``as_of``. When an event of its period
arrives later, or an event it counted is voided, the period is priced again with the new cutoff
(same code as the invoice itself, :func:`tollway.invoice.compute.usage_lines`), and for each
usage key (a charge, or the revenue share) the difference between that and what was billed so
far (the invoice's lines plus earlier adjustments) becomes an ``adjustment`` line on the
subscription's next invoice. Amounts compare as rounded line amounts, so the adjusted total is
exactly what the period would have been billed had every event been on time.

A subscription that replaced another by a plan change carries its predecessor's corrections.
A subscription that ended (no next invoice) gets them on a correction invoice of their own
(:mod:`tollway.invoice.correct`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from tollway.event.service import changed_after
from tollway.invoice.compute import ZERO, BillLine, PeriodContext, key_totals, usage_lines
from tollway.kit.fields import format_decimal
from tollway.kit.money import from_minor_units
from tollway.kit.periods import Period
from tollway.models import Event, Invoice, InvoiceLine, Plan, Subscription
from tollway.subscription.terms import Terms

USAGE_KINDS = ("usage", "bundle", "revenue_share")
REGULAR = "regular"
CORRECTION = "correction"
MAX_CHAIN = 50


def _chain(session: Session, sub: Subscription) -> list[Subscription]:
    out = [sub]
    current = sub
    while current.previous and len(out) < MAX_CHAIN:
        prev = session.get(Subscription, current.previous)
        if prev is None:
            break
        out.append(prev)
        current = prev
    return out


def _stale() -> list[ColumnElement[bool]]:
    """Conditions of an invoice with events of its period ingested or voided after its cutoff."""
    late = exists().where(
        Event.customer == Invoice.customer_id,
        Event.timestamp >= Invoice.period_start,
        Event.timestamp < Invoice.period_end,
        changed_after(Invoice.as_of),
    )
    return [
        Invoice.status != "void",
        Invoice.kind == REGULAR,  # a correction invoice has no period of usage of its own
        late,
    ]


def stale_invoices(session: Session, subs: list[Subscription]) -> list[Invoice]:
    """Finalized (or paid) invoices of ``subs`` with events ingested or voided after their cutoff."""
    stmt = (
        select(Invoice)
        .where(Invoice.subscription_id.in_([s.id for s in subs]), *_stale())
        .order_by(Invoice.period_start, Invoice.id)
    )
    return list(session.scalars(stmt))


def with_stale_invoices(session: Session, customer_ids: Collection[str]) -> set[str]:
    """The customers among ``customer_ids`` with a stale invoice (:func:`stale_invoices`), in one
    read for a billing run's chunk: a subscription with no predecessor whose customer is not
    among them has no corrections to carry (its :func:`adjustment_lines` are empty)."""
    if not customer_ids:
        return set()
    stmt = select(Invoice.customer_id).where(Invoice.customer_id.in_(sorted(customer_ids)), *_stale()).distinct()
    return set(session.scalars(stmt))


def billed_totals(session: Session, invoice: Invoice) -> dict[str, tuple[Decimal, Decimal]]:
    """Per usage key: (amount billed so far, metered quantity billed so far) for ``invoice``'s
    period, counting its own lines and adjustments on invoices that are not void."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    own = session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind.in_(USAGE_KINDS))
    )
    for line in own:
        key = line.charge if line.charge is not None else f"revenue_share:{line.meter}"
        amount, metered = out.get(key, (ZERO, Decimal(str(line.details.get("metered_quantity", "0")))))
        out[key] = (amount + from_minor_units(line.amount_minor, invoice.currency), metered)
    corrections = session.scalars(
        select(InvoiceLine)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(InvoiceLine.adjusts_invoice_id == invoice.id, Invoice.status != "void")
    )
    for line in corrections:
        key = str(line.details.get("adjusts_key"))
        amount, metered = out.get(key, (ZERO, ZERO))
        out[key] = (amount + from_minor_units(line.amount_minor, invoice.currency), metered + line.quantity)
    return out


def _label(ctx: PeriodContext, key: str) -> tuple[str | None, str | None, str]:
    """(charge, meter, label) for a usage key."""
    if key.startswith("revenue_share:"):
        meter = key.split(":", 1)[1]
        return None, meter, "revenue share"
    for charge in ctx.pricing.charges:
        if charge.code == key:
            return charge.code, charge.meter, charge.label
    return key, None, key


def adjustment_lines(
    session: Session, sub: Subscription, *, as_of: datetime | None, skip_period_start: datetime | None = None
) -> list[BillLine]:
    """The corrections ``sub``'s next invoice carries (empty when nothing changed).

    ``skip_period_start`` leaves out the invoice of ``sub`` for that period (an upcoming invoice
    shown for a period already finalized prices that period live, corrections included)."""
    if sub.billed_until is None and sub.previous is None:
        return []  # nothing finalized yet, nothing inherited: nothing to correct
    chain = _chain(session, sub)
    lines: list[BillLine] = []
    by_id = {s.id: s for s in chain}
    for invoice in stale_invoices(session, chain):
        if invoice.subscription_id == sub.id and invoice.period_start == skip_period_start:
            continue
        owner = by_id[invoice.subscription_id]
        plan = session.get(Plan, owner.plan_code)
        assert plan is not None
        terms = Terms.of(owner, plan)
        ctx = PeriodContext.load(session, terms)
        k = terms.cycle.index_at(owner.start, invoice.period_start)
        period = Period(k, invoice.period_start, invoice.period_end)
        now_totals = key_totals(usage_lines(session, ctx, period, as_of=as_of))
        billed = billed_totals(session, invoice)
        for key in sorted(set(now_totals) | set(billed)):
            new_amount, new_qty = now_totals.get(key, (ZERO, ZERO))
            old_amount, old_qty = billed.get(key, (ZERO, ZERO))
            diff = new_amount - old_amount
            if diff == 0 and new_qty == old_qty:
                continue
            charge, meter, label = _label(ctx, key)
            details: dict[str, Any] = {
                "adjusts_invoice": invoice.number,
                "adjusts_invoice_id": invoice.id,
                "adjusts_key": key,
                "period_start": invoice.period_start.isoformat(),
                "period_end": invoice.period_end.isoformat(),
                "billed_amount": format_decimal(old_amount),
                "recomputed_amount": format_decimal(new_amount),
                "billed_quantity": format_decimal(old_qty),
                "recomputed_quantity": format_decimal(new_qty),
                "invoice_as_of": invoice.as_of.isoformat(),
            }
            if owner.id != sub.id:
                details["subscription"] = owner.id
            lines.append(
                BillLine(
                    kind="adjustment",
                    description=(
                        f"Adjustment to invoice {invoice.number} ({invoice.period_start.date().isoformat()} to "
                        f"{invoice.period_end.date().isoformat()}), {label}: late or voided events"
                    ),
                    quantity=new_qty - old_qty,
                    amount=diff,
                    charge=charge,
                    meter=meter,
                    details=details,
                    adjusts_invoice_id=invoice.id,
                )
            )
    return lines
