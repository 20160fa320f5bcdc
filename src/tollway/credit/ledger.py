"""The ledger: every change of a grant's ``remaining`` is written here as a signed entry, in the
same transaction, under the grant's row lock. Entries are never updated or deleted, so for a
customer ``sum(amount) over entries with at <= T`` is the balance at T (the ``at`` of an entry is
when it takes effect: a grant's ``effective_at``, an expiry's ``expires_at``).

Used by the credit service and by invoices (the upcoming invoice's preview, a voided invoice's
credits given back); the finalization's own entry point is ``credit.apply``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tollway.credit.allocation import GrantState, allocate
from tollway.models import CreditGrant, CreditLedgerEntry, Invoice


def post(
    session: Session, grant: CreditGrant, kind: str, amount_minor: int, *, at: datetime, invoice_id: str | None = None
) -> CreditLedgerEntry:
    """Add ``amount_minor`` (signed) to the grant's remaining and write the entry for it.
    The caller holds the grant's row lock."""
    grant.remaining_minor += amount_minor
    entry = CreditLedgerEntry(
        customer_id=grant.customer_id,
        grant_id=grant.id,
        kind=kind,
        currency=grant.currency,
        amount_minor=amount_minor,
        invoice_id=invoice_id,
        at=at,
    )
    session.add(entry)
    return entry


def lock_grants(session: Session, *conditions: ColumnElement[bool]) -> list[CreditGrant]:
    """The grants matching ``conditions``, locked until commit (in id order, so concurrent
    transactions queue instead of deadlocking), re-read from the database."""
    stmt = (
        select(CreditGrant)
        .where(*conditions)
        .order_by(CreditGrant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def settle_expired(session: Session, customer_id: str, *, now: datetime) -> int:
    """Write the ``expired`` entry of every grant of the customer that expired by ``now`` with
    something left (``at`` = its expiry). Idempotent: the lock re-reads ``remaining``."""
    grants = lock_grants(
        session,
        CreditGrant.customer_id == customer_id,
        CreditGrant.expires_at <= now,
        CreditGrant.remaining_minor > 0,
        CreditGrant.voided_at.is_(None),
    )
    for grant in grants:
        assert grant.expires_at is not None
        first = grant.expired_at is None
        post(session, grant, "expired", -grant.remaining_minor, at=grant.expires_at if first else now)
        grant.expired_at = grant.expired_at or now
    if grants:
        session.flush()
    return len(grants)


def grant_states(session: Session, customer_id: str) -> list[GrantState]:
    rows = session.scalars(select(CreditGrant).where(CreditGrant.customer_id == customer_id))
    return [state_of(g) for g in rows]


def state_of(grant: CreditGrant) -> GrantState:
    return GrantState(
        id=grant.id,
        currency=grant.currency,
        remaining_minor=grant.remaining_minor,
        priority=grant.priority,
        effective_at=grant.effective_at,
        expires_at=grant.expires_at,
        voided=grant.voided_at is not None,
    )


def preview(grants: list[GrantState], amounts: list[tuple[str, int]], *, at: datetime) -> list[list[tuple[str, int]]]:
    """What credits invoices of ``(currency, minor units)`` (paid one after the other) would use
    at ``at``: one list of ``(grant id, minor units)`` per invoice. Changes nothing."""
    left = {g.id: g.remaining_minor for g in grants}
    out = []
    for currency, amount in amounts:
        states = [replace(g, remaining_minor=left[g.id]) for g in grants]
        taken = allocate(states, amount, at=at, currency=currency)
        for grant_id, minor in taken:
            left[grant_id] -= minor
        out.append(taken)
    return out


def invoice_credits(session: Session, invoice_id: str) -> list[tuple[str, int]]:
    """``(grant id, minor units)`` applied to the invoice at finalization, in application order."""
    stmt = (
        select(CreditLedgerEntry.grant_id, CreditLedgerEntry.amount_minor)
        .where(
            CreditLedgerEntry.invoice_id == invoice_id,
            CreditLedgerEntry.kind == "applied",
            CreditLedgerEntry.amount_minor < 0,
        )
        .order_by(CreditLedgerEntry.id)
    )
    return [(grant_id, -amount) for grant_id, amount in session.execute(stmt)]


def restore_invoice_credits(session: Session, invoice: Invoice, *, now: datetime) -> int:
    """Give a voided invoice's credits back to their grants (an ``applied`` entry with a positive
    amount naming the invoice). A grant voided or expired meanwhile takes them and at once loses
    them again (a ``voided`` or ``expired`` entry), so the balance only grows by what is still
    usable. Returns the minor units given back."""
    net: dict[str, int] = defaultdict(int)
    stmt = (
        select(CreditLedgerEntry.grant_id, func.sum(CreditLedgerEntry.amount_minor))
        .where(CreditLedgerEntry.invoice_id == invoice.id, CreditLedgerEntry.kind == "applied")
        .group_by(CreditLedgerEntry.grant_id)
    )
    for grant_id, total in session.execute(stmt):
        if total and -int(total) > 0:
            net[grant_id] = -int(total)
    if not net:
        return 0
    restored = 0
    for grant in lock_grants(session, CreditGrant.id.in_(sorted(net))):
        amount = net[grant.id]
        post(session, grant, "applied", amount, at=now, invoice_id=invoice.id)
        restored += amount
        if grant.voided_at is not None:
            post(session, grant, "voided", -amount, at=now)
        elif grant.expires_at is not None and grant.expires_at <= now:
            post(session, grant, "expired", -amount, at=now)
            grant.expired_at = grant.expired_at or now
    session.flush()
    return restored
