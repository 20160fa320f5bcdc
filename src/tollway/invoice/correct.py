"""Correction invoices: late or voided events of a subscription that has ended.

While a subscription runs, corrections to its finalized periods ride on its next invoice
(:mod:`tollway.invoice.adjust`). A subscription that ended (cancelled, no successor, every
period invoiced) has no next invoice, so the billing run issues a *correction invoice* for it:
``kind = "correction"``, adjustment lines only, computed by the same
:func:`~tollway.invoice.adjust.adjustment_lines` as every other correction (so the adjusted
total is exactly what each period would have been billed had every event been on time).

Its period runs from the end of the subscription's last invoice (its final period, or the
previous correction invoice) to the moment of the run: the time in which the late or voided
events arrived. Each line names the period and the invoice it corrects. So correction periods
tile the time after the end as regular periods tile the time before it, and the unique
constraint on (subscription, period_start) makes a second correction for the same state
impossible, as it does for regular invoices.

Exactly once: the subscription row is locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite) and the corrections are recomputed under the lock; once a correction is
committed the recomputation finds nothing left to correct, and the run writes no invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from tollway.event.service import changed_after
from tollway.invoice.adjust import adjustment_lines
from tollway.invoice.compute import BillLine, PeriodContext
from tollway.kit.periods import Period
from tollway.models import Customer, Event, Invoice, Plan, Subscription
from tollway.subscription.terms import Terms


@dataclass(frozen=True)
class Correction:
    """What a correction invoice carries, computed under the subscription's row lock."""

    ctx: PeriodContext
    customer: Customer
    period: Period
    lines: list[BillLine]


def _ended() -> list[ColumnElement[bool]]:
    """Conditions of a subscription that has ended and has no next invoice to carry corrections:
    an end, no successor (a plan change's successor carries them), and every period invoiced."""
    return [
        Subscription.ends_at.is_not(None),
        Subscription.changed_to.is_(None),
        Subscription.billed_until.is_not(None),
        Subscription.billed_until >= Subscription.ends_at,
    ]


def candidates(session: Session) -> list[str]:
    """Ended subscriptions whose customer has events of before the end ingested or voided after
    the subscription's latest invoice (regular or correction) was computed. A cheap filter: the
    recomputation under the lock decides (an event of a meter the plan does not price keeps a
    subscription a candidate and yields nothing)."""
    cursor = (
        select(func.max(Invoice.as_of))
        .where(Invoice.subscription_id == Subscription.id, Invoice.status != "void")
        .correlate(Subscription)
        .scalar_subquery()
    )
    late = exists().where(
        Event.customer == Subscription.customer_id,
        Event.timestamp < Subscription.ends_at,
        changed_after(cursor),
    )
    stmt = select(Subscription.id).where(*_ended(), late).order_by(Subscription.id)
    return list(session.scalars(stmt))


def correction_due(
    session: Session,
    subscription_id: str,
    *,
    as_of: datetime,
    now: datetime,
    contexts: dict[str, PeriodContext] | None = None,
) -> Correction | None:
    """The correction invoice ``subscription_id`` needs now, or ``None`` (not ended, nothing to
    correct, or another run holds the row and is doing it). Locks the row; the caller writes
    the invoice (:func:`tollway.invoice.finalize.write_invoice` with ``kind="correction"``) and
    commits."""
    stmt = (
        select(Subscription, Customer)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(Subscription.id == subscription_id, *_ended())
        .with_for_update(of=Subscription, skip_locked=True)
    )
    row = session.execute(stmt).first()
    if row is None:
        return None
    sub, customer = row
    lines = adjustment_lines(session, sub, as_of=as_of)
    if not lines:
        return None
    last_end = session.scalar(select(func.max(Invoice.period_end)).where(Invoice.subscription_id == sub.id))
    assert sub.billed_until is not None  # _ended()
    start = max(last_end, sub.billed_until) if last_end is not None else sub.billed_until
    if now <= start:
        return None  # a clock behind the last invoice: the next run issues it
    plan = session.get(Plan, sub.plan_code)
    assert plan is not None
    terms = Terms.of(sub, plan)
    ctx = PeriodContext.load(session, terms, contexts)
    period = Period(terms.cycle.index_at(sub.start, start), start, now)
    return Correction(ctx, customer, period, lines)
