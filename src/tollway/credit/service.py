"""Prepaid credits: create and void grants, the customer's credits view, the ledger, and
:func:`ongoing_balance` (what the limits check reads for prepaid customers). Takes the session
first; never commits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.credit import schemas
from tollway.credit.allocation import usable_balance
from tollway.credit.errors import CreditGrantAlreadyVoided, CreditGrantConflict, CreditGrantNotFound
from tollway.credit.ledger import grant_states, lock_grants, post, settle_expired
from tollway.customer.service import get_customer
from tollway.db import get_or_404
from tollway.errors import ValidationFailed
from tollway.invoice.service import upcoming_invoice
from tollway.kit.money import Currency, from_minor_units, money_context, money_str, parse_currency
from tollway.kit.pagination import decode_cursor
from tollway.models import CreditGrant, CreditLedgerEntry


def _minor_units(amount: Decimal, cur: Currency, field: str) -> int:
    """The amount in minor units; more decimals than the currency has is refused, not rounded."""
    with money_context():
        scaled = amount.scaleb(cur.exponent)
        if scaled != scaled.to_integral_value():
            raise ValidationFailed.field(field, f"has more decimals than {cur.code} has ({cur.exponent})")
        if abs(scaled) >= 2**62:
            raise ValidationFailed.field(field, "is too large")
        return int(scaled)


def _differences(grant: CreditGrant, data: schemas.CreditGrantCreate, customer_id: str, amount_minor: int) -> list[str]:
    wanted = {
        "customer": customer_id,
        "amount": amount_minor,
        "category": data.category,
        "priority": data.priority,
        "expires_at": data.expires_at,
        "description": data.description,
    }
    have = {
        "customer": grant.customer_id,
        "amount": grant.amount_minor,
        "category": grant.category,
        "priority": grant.priority,
        "expires_at": grant.expires_at,
        "description": grant.description,
    }
    if data.effective_at is not None:  # omitted means "now" at first creation: any retry matches
        wanted["effective_at"], have["effective_at"] = data.effective_at, grant.effective_at
    if data.currency is not None:
        wanted["currency"], have["currency"] = data.currency, grant.currency
    return [name for name in wanted if wanted[name] != have[name]]


def create_grant(
    session: Session, customer_id: str, data: schemas.CreditGrantCreate, *, now: datetime
) -> tuple[CreditGrant, bool]:
    """The new grant and True, or the existing grant with this id and False when the body is the
    same (a retry); another body is a 409 naming the fields that differ."""
    customer = get_customer(session, customer_id)
    cur = parse_currency(customer.currency)
    if data.currency is not None and data.currency != cur.code:
        raise ValidationFailed.field("currency", f"must be the customer's currency ({cur.code})")
    amount_minor = _minor_units(data.amount, cur, "amount")
    existing = session.get(CreditGrant, data.id)
    if existing is not None:
        differences = _differences(existing, data, customer_id, amount_minor)
        if differences:
            raise CreditGrantConflict(data.id, differences)
        return existing, False
    effective_at = data.effective_at or now
    if data.expires_at is not None and data.expires_at <= effective_at:
        raise ValidationFailed.field("expires_at", "must be after effective_at")
    grant = CreditGrant(
        id=data.id,
        customer_id=customer_id,
        currency=cur.code,
        amount_minor=amount_minor,
        remaining_minor=0,
        category=data.category,
        priority=data.priority,
        effective_at=effective_at,
        expires_at=data.expires_at,
        description=data.description,
        created_at=now,
        updated_at=now,
    )
    session.add(grant)
    session.flush()
    post(session, grant, "grant", amount_minor, at=effective_at)
    session.flush()
    return grant, True


def get_grant(session: Session, grant_id: str) -> CreditGrant:
    return get_or_404(session, CreditGrant, grant_id, CreditGrantNotFound)


def void_grant(session: Session, grant_id: str, *, now: datetime) -> CreditGrant:
    """Void what is left of the grant (a ``voided`` entry); voiding twice is a 409."""
    locked = lock_grants(session, CreditGrant.id == grant_id)
    if not locked:
        raise CreditGrantNotFound(grant_id)
    grant = locked[0]
    if grant.voided_at is not None:
        raise CreditGrantAlreadyVoided(grant_id)
    settle_expired(session, grant.customer_id, now=now)
    # A grant voided before it takes effect: the void takes effect with it, so that replaying the
    # ledger up to any instant never counts the void without the grant.
    post(session, grant, "voided", -grant.remaining_minor, at=max(now, grant.effective_at))
    grant.voided_at = now
    grant.updated_at = now
    session.flush()
    return grant


def status_of(grant: CreditGrant, at: datetime) -> schemas.GrantStatus:
    if grant.voided_at is not None:
        return "voided"
    if grant.expired_at is not None or (grant.expires_at is not None and grant.expires_at <= at):
        return "expired"
    if grant.remaining_minor <= 0:
        return "depleted"
    return "active"


def to_schema(grant: CreditGrant, at: datetime) -> schemas.CreditGrant:
    cur = parse_currency(grant.currency)
    return schemas.CreditGrant(
        id=grant.id,
        customer=grant.customer_id,
        currency=cur.code,
        amount=money_str(from_minor_units(grant.amount_minor, cur), cur),
        remaining=money_str(from_minor_units(grant.remaining_minor, cur), cur),
        category=grant.category,  # type: ignore[arg-type]
        priority=grant.priority,
        effective_at=grant.effective_at,
        expires_at=grant.expires_at,
        description=grant.description,
        status=status_of(grant, at),
        voided_at=grant.voided_at,
        created_at=grant.created_at,
    )


def balance(session: Session, customer_id: str, at: datetime) -> Decimal:
    """What the customer's usable grants (in its currency, at ``at``) can still pay."""
    customer = get_customer(session, customer_id)
    cur = parse_currency(customer.currency)
    return from_minor_units(usable_balance(grant_states(session, customer_id), at=at, currency=cur.code), cur)


def upcoming_total(session: Session, customer_id: str, at: datetime) -> Decimal:
    """The upcoming invoice total of the period containing ``at``, in the customer's currency
    (subscriptions billed in another currency are not counted: credits cannot pay them)."""
    customer = get_customer(session, customer_id)
    cur = parse_currency(customer.currency)
    upcoming = upcoming_invoice(session, customer_id, at=at)
    parts = upcoming.invoices or [upcoming]
    return sum((Decimal(p.total) for p in parts if p.total is not None and p.currency == cur.code), Decimal(0))


def ongoing_balance(session: Session, customer_id: str, at: datetime) -> Decimal:
    """Balance minus the upcoming invoice total of the period containing ``at``; may be negative.
    A stable name: the limits check calls it for ``prepaid`` customers (refused when <= 0)."""
    with money_context():
        return balance(session, customer_id, at) - upcoming_total(session, customer_id, at)


def credits_view(session: Session, customer_id: str, *, at: datetime, now: datetime) -> schemas.Credits:
    customer = get_customer(session, customer_id)
    cur = parse_currency(customer.currency)
    settle_expired(session, customer_id, now=now)
    rows = list(
        session.scalars(select(CreditGrant).where(CreditGrant.customer_id == customer_id).order_by(CreditGrant.id))
    )
    bal = balance(session, customer_id, at)
    total = upcoming_total(session, customer_id, at)
    with money_context():
        ongoing = bal - total
    return schemas.Credits(
        customer=customer_id,
        currency=cur.code,
        at=at,
        balance=money_str(bal, cur),
        ongoing_balance=money_str(ongoing, cur),
        upcoming_total=money_str(total, cur),
        grants=[to_schema(g, at) for g in rows],
    )


def list_ledger(
    session: Session, customer_id: str, *, now: datetime, limit: int, after: str | None
) -> list[CreditLedgerEntry]:
    """The customer's ledger in the order it was written (expiries up to ``now`` written first)."""
    get_customer(session, customer_id)
    settle_expired(session, customer_id, now=now)
    stmt = (
        select(CreditLedgerEntry)
        .where(CreditLedgerEntry.customer_id == customer_id)
        .order_by(CreditLedgerEntry.id)
        .limit(limit + 1)
    )
    if after:
        try:
            last = int(decode_cursor(after))
        except ValueError as exc:
            raise ValidationFailed.field("after", "not a cursor issued by this API") from exc
        stmt = stmt.where(CreditLedgerEntry.id > last)
    return list(session.scalars(stmt))


def entry_to_schema(entry: CreditLedgerEntry) -> schemas.LedgerEntry:
    cur = parse_currency(entry.currency)
    return schemas.LedgerEntry(
        id=entry.id,
        kind=entry.kind,  # type: ignore[arg-type]
        amount=money_str(from_minor_units(entry.amount_minor, cur), cur),
        currency=cur.code,
        grant=entry.grant_id,
        invoice=entry.invoice_id,
        at=entry.at,
        created_at=entry.created_at,
    )
