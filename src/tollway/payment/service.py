"""Payment links (Tollway entity <-> provider object) and the payment state of invoices.

Takes the session first and never commits. The provider is never called from here: queued work
(``sync`` = ``push`` or ``void``) is done by :mod:`tollway.payment.sync` from the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollway.models import Invoice, PaymentLink
from tollway.payment import schemas

CUSTOMER = "customer"
INVOICE = "invoice"


def amount_due_minor(invoice: Invoice) -> int:
    """What the customer still owes: ``amount_due`` once credits exist, else the total."""
    due = getattr(invoice, "amount_due_minor", None)
    return int(invoice.total_minor if due is None else due)


def credits_applied_minor(invoice: Invoice) -> int:
    return int(getattr(invoice, "credits_applied_minor", None) or 0)


def get_link(session: Session, provider: str, entity: str, tollway_id: str) -> PaymentLink | None:
    return session.scalars(
        select(PaymentLink).where(
            PaymentLink.provider == provider, PaymentLink.entity == entity, PaymentLink.tollway_id == tollway_id
        )
    ).first()


def find_by_external(session: Session, provider: str, entity: str, external_id: str) -> PaymentLink | None:
    return session.scalars(
        select(PaymentLink).where(
            PaymentLink.provider == provider, PaymentLink.entity == entity, PaymentLink.external_id == external_id
        )
    ).first()


def invoice_payment(session: Session, invoice_id: str) -> schemas.Payment | None:
    """The ``payment`` object of an invoice (None when it was never sent to a provider)."""
    link = session.scalars(
        select(PaymentLink)
        .where(PaymentLink.entity == INVOICE, PaymentLink.tollway_id == invoice_id)
        .order_by(PaymentLink.id)
    ).first()
    if link is None:
        return None
    return schemas.Payment(
        provider=link.provider,
        external_id=link.external_id,
        status=(link.status or "pending"),  # type: ignore[arg-type]
        url=link.url,
    )


def _insert(session: Session, link: PaymentLink) -> PaymentLink:
    """Insert, or return the row a concurrent transaction inserted first."""
    try:
        with session.begin_nested():
            session.add(link)
    except IntegrityError:
        found = get_link(session, link.provider, link.entity, link.tollway_id)
        assert found is not None
        return found
    return link


def record_customer(session: Session, provider: str, customer_id: str, external_id: str, now: datetime) -> str:
    link = get_link(session, provider, CUSTOMER, customer_id)
    if link is None:
        link = _insert(
            session,
            PaymentLink(
                provider=provider,
                entity=CUSTOMER,
                tollway_id=customer_id,
                external_id=external_id,
                sync="done",
                attempts=0,
                created_at=now,
                updated_at=now,
            ),
        )
    if link.external_id is None:
        link.external_id = external_id
    return str(link.external_id)


def queue_push(session: Session, provider: str, invoice: Invoice, now: datetime) -> PaymentLink | None:
    """Owe the provider this invoice (once): only finalized invoices with something to collect."""
    if invoice.status != "finalized" or amount_due_minor(invoice) <= 0:
        return None
    link = get_link(session, provider, INVOICE, invoice.id)
    if link is not None:
        return link
    return _insert(
        session,
        PaymentLink(
            provider=provider,
            entity=INVOICE,
            tollway_id=invoice.id,
            status="pending",
            sync="push",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        ),
    )


def queue_void(session: Session, provider: str, invoice_id: str, now: datetime) -> PaymentLink | None:
    """Owe the provider the void of this invoice's provider invoice, if there is one."""
    link = get_link(session, provider, INVOICE, invoice_id)
    if link is None:
        return None
    if link.external_id is None:  # never created at the provider: nothing to void there
        session.delete(link)
        session.flush()
        return None
    if link.status in ("void", "paid"):  # voided there already (its webhook), or collected: nothing to do
        link.sync = "done"
        return link
    link.sync = "void"
    link.attempts = 0
    link.next_attempt_at = now
    link.last_error = None
    return link


def queue_paid(session: Session, provider: str, invoice_id: str, now: datetime) -> PaymentLink | None:
    """The invoice was paid outside the provider (``mark-paid``): owe the provider that news, so
    that it stops charging or reminding the customer."""
    link = get_link(session, provider, INVOICE, invoice_id)
    if link is None or link.status == "paid":  # never sent, or paid through the provider itself
        return link
    if link.external_id is None:  # not pushed yet: the push sees the invoice paid and sends nothing
        return link
    link.sync = "paid"
    link.attempts = 0
    link.next_attempt_at = now
    link.last_error = None
    return link


def queue_unpushed(session: Session, provider: str, *, since: datetime | None, now: datetime) -> list[int]:
    """Queue every finalized invoice with something to collect that was never sent (the backfill);
    returns the ids of the links owed a push, new or earlier."""
    stmt = (
        select(Invoice)
        .outerjoin(
            PaymentLink,
            (PaymentLink.entity == INVOICE)
            & (PaymentLink.provider == provider)
            & (PaymentLink.tollway_id == Invoice.id),
        )
        .where(Invoice.status == "finalized", PaymentLink.id.is_(None))
        .order_by(Invoice.issued_at, Invoice.id)
    )
    if since is not None:
        stmt = stmt.where(Invoice.issued_at >= since)
    for invoice in session.scalars(stmt):
        queue_push(session, provider, invoice, now)
    session.flush()
    pending = select(PaymentLink.id).where(
        PaymentLink.provider == provider, PaymentLink.entity == INVOICE, PaymentLink.sync != "done"
    )
    if since is not None:
        pending = pending.join(Invoice, Invoice.id == PaymentLink.tollway_id).where(Invoice.issued_at >= since)
    return list(session.scalars(pending.order_by(PaymentLink.id)))
