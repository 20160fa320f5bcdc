"""The billing run: every subscription period that ended at or before ``until`` becomes an invoice.

The run bills its subscriptions in chunks, one transaction per chunk (invoice/batch.py), and what
a chunk cannot bill one invoice per transaction (:func:`finalize_next`). In every transaction: the
subscription rows are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers
with ``BEGIN IMMEDIATE``) and their bookmarks ``billed_until`` re-read, so two runs (two workers,
or a retry) never bill the same period; the lines are computed with the invoices' ``as_of``
cutoff; the invoice numbers are taken from the counter row, advanced and locked in the same
transaction (:func:`next_numbers`), so numbers are gapless (a rolled-back transaction gives its
numbers back); the invoices, their lines, the new bookmarks and the ``invoice.finalized`` outbox
messages are committed together (:func:`write_invoices`). A crash leaves either all of it or none
of it. The unique constraint on (subscription, period_start) is the last line of defence.
Prepaid credits pay the invoice in the same transaction (``credit.apply``); an invoice left with
nothing to pay is ``paid`` at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tollway.credit.apply import apply_credits, with_usable_credit
from tollway.db import database_now
from tollway.invoice.adjust import CORRECTION, REGULAR, adjustment_lines
from tollway.invoice.batch import CHUNK, Chunk, due_conditions, prepare
from tollway.invoice.compute import BillLine, PeriodContext, period_lines
from tollway.invoice.correct import candidates as correction_candidates
from tollway.invoice.correct import correction_due
from tollway.invoice.snapshot import RunSources
from tollway.invoice.snapshot import take as snapshot_take
from tollway.kit.money import Currency, money_context, round_money, to_minor_units
from tollway.kit.periods import Period
from tollway.models import Customer, Invoice, InvoiceLine, InvoiceSequence, Plan, Subscription
from tollway.notification.outbox import emit_many
from tollway.settings.schemas import ProviderSettings
from tollway.settings.service import get_provider_settings
from tollway.subscription.terms import Terms

log = logging.getLogger("tollway.billing")

SEQUENCE = "invoice"
NUMBER_PREFIX = "INV-"


@dataclass
class RunResult:
    until: datetime
    created: list[str] = field(default_factory=list)
    subscriptions: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(subscription id, error) of subscriptions that could not be billed; the others were."""


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def totals(lines: list[BillLine], tax_rate: Decimal, currency: Currency) -> Totals:
    """Subtotal = sum of the rounded lines; tax = subtotal x rate, rounded half up; total = both."""
    with money_context():
        subtotal = sum((line.amount for line in lines), Decimal(0))
        tax = round_money(subtotal * tax_rate / 100, currency)
        return Totals(subtotal, tax, subtotal + tax)


def payment_terms_days(plan_terms: int | None, provider: ProviderSettings) -> int:
    """The plan's own terms, or the settings' when the plan has none (null)."""
    return provider.invoice.payment_terms_days if plan_terms is None else int(plan_terms)


def next_numbers(session: Session, count: int = 1) -> list[str]:
    """Advance the gapless counter by ``count`` inside the caller's transaction and return the
    numbers taken, in order: one ``UPDATE … RETURNING``, whose row lock is held until the caller
    commits or rolls back (a rolled-back transaction gives its numbers back)."""
    table = cast(Table, InvoiceSequence.__table__)
    stmt = (
        update(table)
        .where(table.c.name == SEQUENCE)
        .values(last_value=table.c.last_value + count)
        .returning(table.c.last_value)
    )
    last = int(session.execute(stmt).scalar_one())
    return [f"{NUMBER_PREFIX}{value:06d}" for value in range(last - count + 1, last + 1)]


def _candidates(factory: sessionmaker[Session], until: datetime) -> list[str]:
    with factory() as session:
        stmt = select(Subscription.id).where(*due_conditions(until)).order_by(Subscription.id)
        return list(session.scalars(stmt))


def finalize_next(
    session: Session,
    subscription_id: str,
    *,
    until: datetime,
    as_of: datetime,
    now: datetime,
    contexts: dict[str, PeriodContext] | None = None,
    sources: RunSources | None = None,
) -> tuple[Invoice | None, bool]:
    """Finalize the subscription's next unbilled period if it ended by ``until``; the caller commits.

    Returns the invoice (or ``None``) and whether a further period is due as well. The subscription
    row is locked; when another worker holds it (PostgreSQL ``SKIP LOCKED``) that worker is billing
    this subscription right now, and this call returns ``(None, False)`` to move on."""
    stmt = (
        select(Subscription, Customer)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(Subscription.id == subscription_id)
        .with_for_update(of=Subscription, skip_locked=True)
    )
    row = session.execute(stmt).first()
    if row is None:
        return None, False
    sub, customer = row
    cached = contexts.get(sub.plan_code) if contexts is not None else None
    plan = cached.terms.plan if cached is not None else session.get(Plan, sub.plan_code)
    assert plan is not None
    terms = Terms.of(sub, plan)
    found = terms.next_unbilled()
    if found is None:
        return None, False
    period, full = found
    if period.end > until:
        return None, False
    ctx = PeriodContext.load(session, terms, contexts)
    lines = period_lines(session, ctx, period, full, as_of=as_of)
    lines += adjustment_lines(session, sub, as_of=as_of)
    invoice = write_invoice(session, ctx, customer, period, lines, as_of=as_of, now=now, sources=sources)
    following = terms.period(period.index + 1)
    return invoice, following is not None and following[0].end <= until


@dataclass(frozen=True)
class Draft:
    """An invoice to write: the subscription's context, its customer, the period and the lines."""

    ctx: PeriodContext
    customer: Customer
    period: Period
    lines: list[BillLine]


def write_invoice(
    session: Session,
    ctx: PeriodContext,
    customer: Customer,
    period: Period,
    lines: list[BillLine],
    *,
    as_of: datetime,
    now: datetime,
    sources: RunSources | None = None,
    kind: str = REGULAR,
) -> Invoice:
    """:func:`write_invoices` of one invoice."""
    [invoice] = write_invoices(
        session, [Draft(ctx, customer, period, lines)], as_of=as_of, now=now, sources=sources, kind=kind
    )
    return invoice


def write_invoices(
    session: Session,
    drafts: Sequence[Draft],
    *,
    as_of: datetime,
    now: datetime,
    sources: RunSources | None = None,
    kind: str = REGULAR,
) -> list[Invoice]:
    """Insert the invoices, their lines, the subscriptions' new bookmarks and the outbox messages
    (plain INSERT/UPDATE statements, one per table for all ``drafts``: this is the billing run's
    hot path). Returns the invoice rows (not attached to the session). ``sources`` (one per run)
    saves reading the settings and the meter names for every invoice. A ``correction`` invoice
    leaves ``billed_until`` alone: its period starts where the subscription's last invoice ended
    (see invoice/correct.py)."""
    if not drafts:
        return []
    provider = sources.settings if sources is not None else get_provider_settings(session)
    sources = sources or RunSources(provider)
    invoices = [_invoice_row(session, d, as_of=as_of, now=now, sources=sources, kind=kind) for d in drafts]
    # The bookmarks move first and the numbers are taken last, so the counter row (the one lock
    # every invoice transaction shares) is held only for the inserts and the commit.
    if kind == REGULAR:
        table = cast(Table, Subscription.__table__)
        session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(billed_until=bindparam("b_until")),
            [{"b_id": d.ctx.terms.subscription.id, "b_until": d.period.end} for d in drafts],
        )
    with_credit = with_usable_credit(session, {inv.customer_id for inv in invoices if inv.total_minor > 0}, now)
    for invoice, number in zip(invoices, next_numbers(session, len(invoices)), strict=True):
        invoice.number = number
    table = cast(Table, Invoice.__table__)
    session.execute(insert(table), [{c.key: getattr(inv, c.key) for c in table.columns} for inv in invoices])
    rows = [
        {
            "invoice_id": invoice.id,
            "position": i,
            "kind": line.kind,
            "charge": line.charge,
            "meter": line.meter,
            "description": line.description[:1000],
            "quantity": line.quantity,
            "amount_minor": to_minor_units(line.amount, d.ctx.currency),
            "details": line.details,
            "adjusts_invoice_id": line.adjusts_invoice_id,
        }
        for invoice, d in zip(invoices, drafts, strict=True)
        for i, line in enumerate(d.lines)
    ]
    if rows:
        session.execute(insert(cast(Table, InvoiceLine.__table__)), rows)
    # Credits in customer order, so that concurrent runs lock grants in one order (no deadlock).
    for invoice in sorted(invoices, key=lambda inv: (inv.customer_id, inv.id)):
        if (invoice.customer_id, invoice.currency) in with_credit:
            _pay_with_credits(session, invoice, now=now)
    from tollway.invoice.service import invoice_data  # service builds on this module

    messages: list[tuple[str, dict[str, Any], str | None]] = []
    by_invoice: dict[str, list[InvoiceLine]] = {}
    for row in rows:
        by_invoice.setdefault(str(row["invoice_id"]), []).append(InvoiceLine(**row))
    for invoice in invoices:
        event = invoice_data(session, invoice, by_invoice.get(invoice.id, []), new=True)
        messages.append(("invoice.finalized", event, invoice.id))
        if invoice.status == "paid":  # nothing left to pay: paid at once
            messages.append(("invoice.paid", event, invoice.id))
    emit_many(session, messages)
    return invoices


def _invoice_row(
    session: Session, draft: Draft, *, as_of: datetime, now: datetime, sources: RunSources, kind: str
) -> Invoice:
    """The invoice row of ``draft``, its number not taken yet (not attached to the session)."""
    ctx, customer, period, lines = draft.ctx, draft.customer, draft.period, draft.lines
    sub = ctx.terms.subscription
    cur = ctx.currency
    terms_days = payment_terms_days(ctx.terms.plan.payment_terms_days, sources.settings)
    tax_rate = Decimal(customer.tax_rate or 0)
    t = totals(lines, tax_rate, cur)
    total_minor = to_minor_units(t.total, cur)
    snapshot = snapshot_take(
        session,
        customer=customer,
        plan=ctx.terms.plan,
        timezone=sub.timezone,
        meters=[line.meter for line in lines],
        payment_terms_days=terms_days,
        sources=sources,
    )
    return Invoice(
        id=f"inv_{uuid.uuid4().hex[:24]}",
        customer_id=customer.id,
        subscription_id=sub.id,
        plan_code=sub.plan_code,
        currency=cur.code,
        status="paid" if total_minor == 0 else "finalized",
        kind=kind,
        period_start=period.start,
        period_end=period.end,
        issued_at=now,
        due_at=now + timedelta(days=terms_days),
        as_of=as_of,
        tax_rate=tax_rate,
        subtotal_minor=to_minor_units(t.subtotal, cur),
        tax_minor=to_minor_units(t.tax, cur),
        total_minor=total_minor,
        credits_applied_minor=0,
        amount_due_minor=total_minor,
        paid_at=now if total_minor == 0 else None,
        snapshot=snapshot.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )


def _pay_with_credits(session: Session, invoice: Invoice, *, now: datetime) -> None:
    """Apply the customer's credits to the inserted ``invoice`` and record them on its row."""
    credits = apply_credits(
        session,
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        total_minor=invoice.total_minor,
        now=now,
    )
    if not credits:
        return
    invoice.credits_applied_minor = sum(amount for _, amount in credits)
    invoice.amount_due_minor = invoice.total_minor - invoice.credits_applied_minor
    if invoice.amount_due_minor == 0:
        invoice.status, invoice.paid_at = "paid", now
    session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id)
        .values(
            credits_applied_minor=invoice.credits_applied_minor,
            amount_due_minor=invoice.amount_due_minor,
            status=invoice.status,
            paid_at=invoice.paid_at,
        )
    )


def _invoice_transaction(
    factory: sessionmaker[Session],
    result: RunResult,
    subscription_id: str,
    contexts: dict[str, PeriodContext],
    step: Callable[[Session, datetime], tuple[Invoice | None, bool]],
) -> bool:
    """One invoice transaction of the run: ``step(session, moment)`` writes at most one invoice;
    commit it and report whether the subscription has a further invoice due."""
    session = factory()
    try:
        invoice, more = step(session, database_now(session))
        if invoice is None:
            session.rollback()
            return False
        number, invoice_id = invoice.number, invoice.id
        session.commit()
        result.created.append(invoice_id)
        log.info("finalized invoice %s for %s", number, subscription_id)
        return more
    except IntegrityError:
        # Another run finalized this period between our read and our write.
        session.rollback()
        return False
    except Exception as exc:
        # One subscription that cannot be billed must not stop the others: report it, and
        # the next run tries it again.
        session.rollback()
        contexts.clear()  # the rollback expired the plan rows cached from this session
        log.exception("cannot bill subscription %s", subscription_id)
        result.failed.append((subscription_id, str(exc)))
        return False
    finally:
        session.close()


def _chunk_transaction(
    factory: sessionmaker[Session],
    result: RunResult,
    ids: Sequence[str],
    contexts: dict[str, PeriodContext],
    sources: RunSources,
    until: datetime,
    now: datetime | None,
    as_of_lag: timedelta,
) -> list[str]:
    """One chunk of the run in one transaction (invoice/batch.py); returns the subscriptions left
    to bill one invoice per transaction: all of ``ids`` if the chunk could not be committed."""
    session = factory()
    try:
        moment = now or database_now(session)
        chunk: Chunk = prepare(session, ids, until=min(until, moment), as_of=moment - as_of_lag, contexts=contexts)
        drafts = [Draft(due.ctx, due.customer, due.period, due.lines) for due in chunk.due]
        invoices = write_invoices(session, drafts, as_of=moment - as_of_lag, now=moment, sources=sources)
        session.commit()
    except Exception:
        # A concurrent run's invoice (IntegrityError), a deadlock, anything: nothing of the chunk
        # was written; its subscriptions are billed one by one, which reports what fails.
        session.rollback()
        contexts.clear()  # the rollback expired the plan rows cached from this session
        log.warning("billing chunk of %d subscriptions from %s failed; billing them one by one", len(ids), ids[0],
                    exc_info=True)  # fmt: skip
        return list(ids)
    finally:
        session.close()
    for invoice in invoices:
        result.created.append(invoice.id)
        log.info("finalized invoice %s for %s", invoice.number, invoice.subscription_id)
    return chunk.alone + [due.ctx.terms.subscription.id for due in chunk.due if due.more]


def run_billing(
    factory: sessionmaker[Session],
    *,
    until: datetime,
    now: datetime | None = None,
    as_of_lag: timedelta = timedelta(0),
    chunk: int = CHUNK,
) -> RunResult:
    """Finalize every period that ended at or before ``until`` (capped at now: a period that has not
    ended yet is never finalized), then issue the correction invoices of subscriptions that ended
    and whose invoices late or voided events made stale (invoice/correct.py). Safe to run twice,
    or in several processes at once.

    ``as_of_lag`` sets each invoice's cutoff a little before the moment it is computed, so that an
    event whose ingestion transaction is still in flight is billed as a late event rather than
    missed.

    The subscriptions are billed ``chunk`` at a time, each chunk's invoices in one transaction
    (invoice/batch.py); a subscription the chunk cannot bill, one with a further period due, and
    every subscription of a chunk whose transaction failed are billed one invoice per transaction
    (:func:`finalize_next`) right after it."""
    result = RunResult(until=until)
    contexts: dict[str, PeriodContext] = {}
    with factory() as session:  # the settings as the run begins apply to all of its invoices
        sources = RunSources(get_provider_settings(session))

    def regular(subscription_id: str) -> Callable[[Session, datetime], tuple[Invoice | None, bool]]:
        def step(session: Session, clock: datetime) -> tuple[Invoice | None, bool]:
            moment = now or clock
            return finalize_next(
                session,
                subscription_id,
                until=min(until, moment),
                as_of=moment - as_of_lag,
                now=moment,
                contexts=contexts,
                sources=sources,
            )

        return step

    def correction(subscription_id: str) -> Callable[[Session, datetime], tuple[Invoice | None, bool]]:
        def step(session: Session, clock: datetime) -> tuple[Invoice | None, bool]:
            moment = now or clock
            due = correction_due(session, subscription_id, as_of=moment - as_of_lag, now=moment, contexts=contexts)
            if due is None:
                return None, False
            invoice = write_invoice(
                session,
                due.ctx,
                due.customer,
                due.period,
                due.lines,
                as_of=moment - as_of_lag,
                now=moment,
                sources=sources,
                kind=CORRECTION,
            )
            return invoice, False

        return step

    candidates = _candidates(factory, until)
    result.subscriptions = len(candidates)
    for first in range(0, len(candidates), chunk):
        ids = candidates[first : first + chunk]
        for subscription_id in _chunk_transaction(factory, result, ids, contexts, sources, until, now, as_of_lag):
            while _invoice_transaction(factory, result, subscription_id, contexts, regular(subscription_id)):
                pass
    with factory() as session:
        ended = correction_candidates(session)
    for subscription_id in ended:
        _invoice_transaction(factory, result, subscription_id, contexts, correction(subscription_id))
    return result
