"""Credits pay an invoice at finalization: one entry point, :func:`apply_credits`, called by
``invoice.finalize.write_invoices`` inside the invoice's transaction, after the invoice row exists.

The customer's usable grants in the invoice's currency are locked (``SELECT … FOR UPDATE``,
in id order so that concurrent transactions queue instead of deadlocking; SQLite serializes
writers with ``BEGIN IMMEDIATE``). Under that lock their ``remaining`` is re-read, so two billing
runs finalizing invoices of one customer at the same time never spend the same credit twice: the
second waits for the first to commit and sees what is left. Each grant used gets an ``applied``
ledger entry naming the invoice, in the same transaction as its new ``remaining``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.orm import Session

from tollway.credit.allocation import GrantState, allocate
from tollway.models import CreditGrant, CreditLedgerEntry


def _usable(at: datetime) -> list[ColumnElement[bool]]:
    """Conditions of a grant that can pay at ``at``: something left, not voided, in effect."""
    return [
        CreditGrant.remaining_minor > 0,
        CreditGrant.voided_at.is_(None),
        CreditGrant.effective_at <= at,
        or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > at),
    ]


def with_usable_credit(session: Session, customer_ids: Collection[str], at: datetime) -> set[tuple[str, str]]:
    """(customer, currency) pairs among ``customer_ids`` with a grant usable at ``at``: one read
    for a billing run's chunk of invoices, so that only their invoices go on to lock grants
    (:func:`apply_credits`). A grant committed after this read is left for the next invoice, as
    one committed just after the lock would be."""
    if not customer_ids:
        return set()
    stmt = (
        select(CreditGrant.customer_id, CreditGrant.currency)
        .where(CreditGrant.customer_id.in_(sorted(customer_ids)), *_usable(at))
        .distinct()
    )
    return {(customer, currency) for customer, currency in session.execute(stmt)}


def lock_usable_grants(session: Session, customer_id: str, currency: str, at: datetime) -> list[GrantState]:
    """The customer's grants that can pay at ``at`` in ``currency``, locked until commit."""
    stmt = (
        select(
            CreditGrant.id,
            CreditGrant.currency,
            CreditGrant.remaining_minor,
            CreditGrant.priority,
            CreditGrant.effective_at,
            CreditGrant.expires_at,
        )
        .where(
            CreditGrant.customer_id == customer_id,
            CreditGrant.currency == currency,
            *_usable(at),
        )
        .order_by(CreditGrant.id)
        .with_for_update()
    )
    return [GrantState(*row) for row in session.execute(stmt)]


def apply_credits(
    session: Session, *, invoice_id: str, customer_id: str, currency: str, total_minor: int, now: datetime
) -> list[tuple[str, int]]:
    """Pay up to ``total_minor`` of the invoice from the customer's grants usable at ``now``.

    Returns ``(grant id, minor units)`` per grant used, in application order (empty when the
    total is zero or negative, or there is no usable credit). The caller records the sum on the
    invoice; the caller commits."""
    if total_minor <= 0:
        return []
    grants = lock_usable_grants(session, customer_id, currency, now)
    taken = allocate(grants, total_minor, at=now, currency=currency)
    for grant_id, amount in taken:
        session.execute(
            update(CreditGrant)
            .where(CreditGrant.id == grant_id)
            .values(remaining_minor=CreditGrant.remaining_minor - amount, updated_at=now)
        )
    if taken:
        session.execute(
            insert(CreditLedgerEntry),
            [
                {
                    "customer_id": customer_id,
                    "grant_id": grant_id,
                    "kind": "applied",
                    "currency": currency,
                    "amount_minor": -amount,
                    "invoice_id": invoice_id,
                    "at": now,
                    "created_at": now,
                }
                for grant_id, amount in taken
            ],
        )
    return taken
