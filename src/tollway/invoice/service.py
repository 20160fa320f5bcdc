"""Invoices: read, list, the two transitions (paid, void), and the live upcoming invoice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tollway.credit.ledger import grant_states, invoice_credits, preview, restore_invoice_credits
from tollway.customer.service import get_customer
from tollway.db import get_or_404
from tollway.invoice import schemas
from tollway.invoice.adjust import adjustment_lines
from tollway.invoice.compute import BillLine, PeriodContext, period_lines
from tollway.invoice.document import Document
from tollway.invoice.document import build as build_document
from tollway.invoice.errors import InvoiceNotFound, InvoiceTransitionNotAllowed
from tollway.invoice.finalize import totals
from tollway.invoice.snapshot import snapshot_of
from tollway.kit.fields import format_decimal
from tollway.kit.money import Currency, from_minor_units, money_str, parse_currency, to_minor_units
from tollway.kit.pagination import paginate
from tollway.models import Invoice, InvoiceLine, Plan, Subscription
from tollway.notification.outbox import emit
from tollway.payment.service import invoice_payment
from tollway.subscription.terms import Terms


def get_invoice(session: Session, invoice_id: str, *, for_update: bool = False) -> Invoice:
    return get_or_404(session, Invoice, invoice_id, InvoiceNotFound, for_update=for_update)


def list_invoices(
    session: Session, *, customer: str | None, subscription: str | None, limit: int, after: str | None
) -> list[Invoice]:
    stmt = paginate(select(Invoice), Invoice.id, limit=limit, after=after)
    if customer is not None:
        stmt = stmt.where(Invoice.customer_id == customer)
    if subscription is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription)
    return list(session.scalars(stmt))


def invoice_lines(session: Session, invoice: Invoice) -> list[InvoiceLine]:
    return lines_by_invoice(session, [invoice])[invoice.id]


def lines_by_invoice(session: Session, invoices: Sequence[Invoice]) -> dict[str, list[InvoiceLine]]:
    """The lines of each of ``invoices`` in order, read in one query."""
    out: dict[str, list[InvoiceLine]] = {invoice.id: [] for invoice in invoices}
    if out:
        stmt = (
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id.in_(list(out)))
            .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
        )
        for line in session.scalars(stmt):
            out[line.invoice_id].append(line)
    return out


def invoice_data(
    session: Session, invoice: Invoice, read: Sequence[InvoiceLine] | None = None, *, new: bool = False
) -> dict[str, Any]:
    """The webhook ``data`` of ``invoice.*``: the invoice as ``GET /v1/invoices/{id}`` shows it
    (``read`` and ``new`` as for :func:`to_schema`)."""
    data: dict[str, Any] = to_schema(session, invoice, read, new=new).model_dump(mode="json")
    return data


def mark_paid(session: Session, invoice_id: str, *, now: datetime) -> Invoice:
    invoice = get_invoice(session, invoice_id, for_update=True)
    if invoice.status != "finalized":
        raise InvoiceTransitionNotAllowed(invoice_id, invoice.status, "marked paid")
    invoice.status = "paid"
    invoice.paid_at = now
    session.flush()
    emit(session, "invoice.paid", invoice_data(session, invoice), key=invoice.id)
    return invoice


def void_invoice(session: Session, invoice_id: str, *, now: datetime) -> Invoice:
    """Finalized → void; so is an invoice ``paid`` at finalization with nothing due (paid by
    credits, or a zero total): nothing was collected. Its credits go back to their grants."""
    invoice = get_invoice(session, invoice_id, for_update=True)
    paid_by_credits = invoice.status == "paid" and invoice.amount_due_minor == 0
    if invoice.status != "finalized" and not paid_by_credits:
        raise InvoiceTransitionNotAllowed(invoice_id, invoice.status, "voided")
    invoice.status = "void"
    invoice.voided_at = now
    restore_invoice_credits(session, invoice, now=now)
    session.flush()
    emit(session, "invoice.voided", invoice_data(session, invoice), key=invoice.id)
    return invoice


def to_schemas(session: Session, invoices: Sequence[Invoice]) -> list[schemas.Invoice]:
    """:func:`to_schema` of each invoice, with the lines of all of them read in one query."""
    lines = lines_by_invoice(session, invoices)
    return [to_schema(session, invoice, lines[invoice.id]) for invoice in invoices]


def to_schema(
    session: Session, invoice: Invoice, read: Sequence[InvoiceLine] | None = None, *, new: bool = False
) -> schemas.Invoice:
    """The invoice as the API returns it (its lines read unless already ``read``). ``new``: it is
    being finalized in this transaction, so nothing can have sent it to a payment provider yet."""
    cur = parse_currency(invoice.currency)
    lines = [
        schemas.InvoiceLine(
            kind=line.kind,  # type: ignore[arg-type]
            charge=line.charge,
            meter=line.meter,
            description=line.description,
            quantity=format_decimal(Decimal(line.quantity)),
            amount=money_str(from_minor_units(line.amount_minor, cur), cur),
            details=dict(line.details or {}),
        )
        for line in (invoice_lines(session, invoice) if read is None else read)
    ]
    return schemas.Invoice(
        id=invoice.id,
        number=invoice.number,
        customer=invoice.customer_id,
        subscription=invoice.subscription_id,
        currency=cur.code,
        status=invoice.status,  # type: ignore[arg-type]
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issued_at=invoice.issued_at,
        due_at=invoice.due_at,
        lines=lines,
        subtotal=money_str(from_minor_units(invoice.subtotal_minor, cur), cur),
        tax=money_str(from_minor_units(invoice.tax_minor, cur), cur),
        total=money_str(from_minor_units(invoice.total_minor, cur), cur),
        credits_applied=money_str(from_minor_units(invoice.credits_applied_minor, cur), cur),
        credits=[
            schemas.InvoiceCredit(grant=grant, amount=money_str(from_minor_units(minor, cur), cur))
            for grant, minor in (invoice_credits(session, invoice.id) if invoice.credits_applied_minor else [])
        ],
        amount_due=money_str(from_minor_units(invoice.amount_due_minor, cur), cur),
        kind=invoice.kind,  # type: ignore[arg-type]
        plan=invoice.plan_code,
        tax_rate=format_decimal(Decimal(invoice.tax_rate)),
        as_of=invoice.as_of,
        paid_at=invoice.paid_at,
        voided_at=invoice.voided_at,
        seller=snapshot.get("seller") if (snapshot := invoice.snapshot) else None,
        buyer=snapshot.get("buyer") if snapshot else None,
        payment=None if new else invoice_payment(session, invoice.id),
    )


def invoice_document(session: Session, invoice_id: str) -> Document:
    """The finalized invoice as the document its PDF and HTML show, from its frozen snapshot."""
    row = get_invoice(session, invoice_id)
    invoice = to_schema(session, row)
    return build_document(invoice, snapshot_of(session, row, [line.meter for line in invoice.lines]))


def _draft(
    customer_id: str,
    sub: Subscription | None,
    cur: Currency | None,
    lines: list[BillLine],
    tax_rate: Decimal,
    start: datetime | None,
    end: datetime | None,
) -> schemas.Invoice:
    subtotal = tax = total = None
    out_lines: list[schemas.InvoiceLine] = []
    if cur is not None:
        t = totals(lines, tax_rate, cur)
        subtotal, tax, total = money_str(t.subtotal, cur), money_str(t.tax, cur), money_str(t.total, cur)
        out_lines = [schemas.InvoiceLine.model_validate(line.to_dict(cur)) for line in lines]
    return schemas.Invoice(
        id=None,
        number=None,
        customer=customer_id,
        subscription=sub.id if sub else None,
        currency=cur.code if cur else None,
        status="draft",
        period_start=start,
        period_end=end,
        issued_at=None,
        due_at=None,
        lines=out_lines,
        subtotal=subtotal,
        tax=tax,
        total=total,
        plan=sub.plan_code if sub else None,
        tax_rate=format_decimal(tax_rate),
    )


def _minor_of(amount: str, cur: Currency) -> int:
    return to_minor_units(Decimal(amount), cur)


def _minor(invoice: schemas.Invoice) -> int:
    if invoice.currency is None or invoice.total is None:
        return 0
    return _minor_of(invoice.total, parse_currency(invoice.currency))


def _with_credits(invoice: schemas.Invoice, taken: list[tuple[str, int]]) -> schemas.Invoice:
    """The draft with the credits it would use (``taken``: grant id, minor units) and what is left due."""
    if invoice.currency is None or invoice.total is None:
        return invoice
    cur = parse_currency(invoice.currency)
    applied = sum(minor for _, minor in taken)
    return invoice.model_copy(
        update={
            "credits_applied": money_str(from_minor_units(applied, cur), cur),
            "credits": [
                schemas.InvoiceCredit(grant=g, amount=money_str(from_minor_units(m, cur), cur)) for g, m in taken
            ],
            "amount_due": money_str(from_minor_units(_minor(invoice) - applied, cur), cur),
        }
    )


def upcoming_invoice(session: Session, customer_id: str, *, at: datetime) -> schemas.UpcomingInvoice:
    """The invoice of the period containing ``at`` for every subscription active then, computed
    live from the usage ingested so far (no cutoff), with pending corrections to finalized periods."""
    customer = get_customer(session, customer_id)
    tax_rate = Decimal(customer.tax_rate or 0)
    subs = list(
        session.scalars(
            select(Subscription)
            .where(
                Subscription.customer_id == customer_id,
                Subscription.start <= at,
                or_(Subscription.ends_at.is_(None), Subscription.ends_at > at),
            )
            .order_by(Subscription.start, Subscription.id)
        )
    )
    parts: list[tuple[Subscription, PeriodContext, list[BillLine], datetime, datetime]] = []
    for sub in subs:
        plan = session.get(Plan, sub.plan_code)
        assert plan is not None
        terms = Terms.of(sub, plan)
        found = terms.period_at(at)
        if found is None:
            continue
        period, full = found
        ctx = PeriodContext.load(session, terms)
        lines = period_lines(session, ctx, period, full, as_of=None)
        lines += adjustment_lines(session, sub, as_of=None, skip_period_start=period.start)
        parts.append((sub, ctx, lines, period.start, period.end))
    invoices = [_draft(customer_id, s, c.currency, ls, tax_rate, a, b) for s, c, ls, a, b in parts]
    grants = grant_states(session, customer_id)
    due = [(inv.currency or "", _minor(inv)) for inv in invoices]
    invoices = [_with_credits(inv, taken) for inv, taken in zip(invoices, preview(grants, due, at=at), strict=True)]
    if len(parts) == 1:
        return schemas.UpcomingInvoice(**invoices[0].model_dump(), at=at, invoices=invoices)
    currencies = {c.currency.code for _, c, _, _, _ in parts}
    cur: Currency | None = parse_currency(customer.currency) if not parts else None
    combined: list[BillLine] = []
    if len(currencies) == 1:
        cur = parts[0][1].currency
        for sub, _, lines, a, b in parts:
            for line in lines:
                extra = {"subscription": sub.id, "period_start": a.isoformat(), "period_end": b.isoformat()}
                combined.append(BillLine(**{**line.__dict__, "details": {**line.details, **extra}}))
    start = min((a for _, _, _, a, _ in parts), default=None)
    end = max((b for _, _, _, _, b in parts), default=None)
    body = _draft(customer_id, None, cur, combined, tax_rate, start, end)
    merged: dict[str, int] = {}
    if cur is not None:
        for inv in invoices:
            for credit in inv.credits:
                merged[credit.grant] = merged.get(credit.grant, 0) + _minor_of(credit.amount, cur)
    body = _with_credits(body, list(merged.items()))
    return schemas.UpcomingInvoice(**body.model_dump(), at=at, invoices=invoices)
