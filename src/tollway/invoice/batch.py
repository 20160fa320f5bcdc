"""The billing run's chunks: the invoices of many subscriptions in one transaction, reads batched.

The run (:func:`tollway.invoice.finalize.run_billing`) takes its candidate subscriptions in
chunks of :data:`CHUNK`. For each chunk, in one transaction:

1. the chunk's subscriptions that are still due and that no other worker holds are locked in one
   statement with their customers (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes
   writers with ``BEGIN IMMEDIATE``), and each one's next period is found from its bookmark
   ``billed_until`` read under the lock, as :func:`~tollway.invoice.finalize.finalize_next` does;
2. the meter totals of every due period are read from the raw events as of the chunk's cutoff in
   one statement per plan and event type (:func:`tollway.meter.values.meter_totals_many`, the
   same conditions as the per-invoice read), and which customers have a stale invoice (late or
   voided events to carry as adjustments) in one more;
3. each period is priced by :func:`~tollway.invoice.compute.period_lines` with those totals, and
   the adjustments computed as for a single invoice where there can be any;
4. the caller writes the invoices (:func:`~tollway.invoice.finalize.write_invoices`, one statement
   per table, the gapless numbers taken last) and commits.

A subscription this cannot bill in the chunk (its pricing fails, or a second period is due as
well) is named in :attr:`Chunk.alone`: the run bills it in transactions of one invoice after the
chunk commits, so a failure is reported exactly as before and never stops the other invoices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tollway.invoice.adjust import adjustment_lines, with_stale_invoices
from tollway.invoice.compute import BillLine, KnownTotals, PeriodContext, period_lines
from tollway.kit.periods import Period
from tollway.meter.values import TOTALS_AGGREGATIONS, Window, meter_totals_many
from tollway.models import Customer, Plan, Subscription
from tollway.subscription.terms import Terms

CHUNK = 100
"""Subscriptions per chunk transaction (their rows stay locked until it commits)."""


def due_conditions(until: datetime) -> list[ColumnElement[bool]]:
    """Conditions of a subscription that may have a period to finalize by ``until``."""
    return [
        Subscription.start < until,
        or_(Subscription.billed_until.is_(None), Subscription.billed_until < until),
        or_(
            Subscription.ends_at.is_(None),
            Subscription.billed_until.is_(None),
            Subscription.billed_until < Subscription.ends_at,
        ),
    ]


@dataclass
class Due:
    """One invoice of the chunk, priced, waiting to be written."""

    ctx: PeriodContext
    customer: Customer
    period: Period
    lines: list[BillLine]
    more: bool
    """Whether the subscription's following period is due by the run's ``until`` as well."""


@dataclass
class Chunk:
    due: list[Due] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)
    """Subscriptions to bill one invoice per transaction once the chunk is committed."""


def prepare(
    session: Session,
    ids: Sequence[str],
    *,
    until: datetime,
    as_of: datetime,
    contexts: dict[str, PeriodContext],
) -> Chunk:
    """Lock the due subscriptions among ``ids`` and price each one's next period ending by
    ``until`` as of ``as_of`` (steps 1-3 above); the caller writes and commits."""
    stmt = (
        select(Subscription, Customer)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(Subscription.id.in_(list(ids)), *due_conditions(until))
        .order_by(Subscription.id)
        .with_for_update(of=Subscription, skip_locked=True)
    )
    chunk = Chunk()
    found: list[tuple[PeriodContext, Customer, Period, Period]] = []
    for sub, customer in session.execute(stmt):
        cached = contexts.get(sub.plan_code)
        plan = cached.terms.plan if cached is not None else session.get(Plan, sub.plan_code)
        assert plan is not None
        terms = Terms.of(sub, plan)
        nxt = terms.next_unbilled()
        if nxt is None or nxt[0].end > until:
            continue
        found.append((PeriodContext.load(session, terms, contexts), customer, *nxt))
    inherited = {ctx.terms.subscription.customer_id for ctx, *_ in found if ctx.terms.subscription.billed_until}
    stale = with_stale_invoices(session, inherited)
    known = _known_totals(session, [(ctx, period) for ctx, _, period, _ in found], as_of=as_of)
    for (ctx, customer, period, full), totals in zip(found, known, strict=True):
        sub = ctx.terms.subscription
        try:
            lines = period_lines(session, ctx, period, full, as_of=as_of, known=totals)
            if sub.previous is not None or sub.customer_id in stale:
                lines += adjustment_lines(session, sub, as_of=as_of)
        except SQLAlchemyError:
            raise  # the transaction is unusable: the caller bills the chunk one invoice at a time
        except Exception:  # billed alone after the chunk, where the failure is reported
            chunk.alone.append(sub.id)
            continue
        following = ctx.terms.period(period.index + 1)
        more = following is not None and following[0].end <= until
        chunk.due.append(Due(ctx, customer, period, lines, more))
    return chunk


def _known_totals(
    session: Session, periods: Sequence[tuple[PeriodContext, Period]], *, as_of: datetime
) -> list[KnownTotals | None]:
    """The period totals of each plan's meters (those :func:`meter_totals_many` computes), read
    for all the periods of one plan at once."""
    out: list[KnownTotals | None] = [None] * len(periods)
    by_plan: dict[str, list[int]] = {}
    for i, (ctx, _) in enumerate(periods):
        by_plan.setdefault(ctx.terms.plan.code, []).append(i)
    for indexes in by_plan.values():
        ctx = periods[indexes[0]][0]
        meters = [m for m in ctx.meters.values() if m.aggregation in TOTALS_AGGREGATIONS]
        if not meters:
            continue
        windows = [
            Window(periods[i][0].terms.subscription.customer_id, periods[i][1].start, periods[i][1].end)
            for i in indexes
        ]
        read = meter_totals_many(session, meters, windows, as_of=as_of)
        for i, window, totals in zip(indexes, windows, read, strict=True):
            out[i] = KnownTotals(window.start, window.end, totals)
    return out
