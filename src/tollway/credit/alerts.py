"""``credits.low_balance`` and ``credits.depleted``: fired through the outbox once per crossing.

For a customer with a ``low_balance_threshold`` (prepaid or not), ``credits.low_balance`` fires
when the ongoing balance falls to the threshold or below; for a customer that has had credit (a
grant), ``credits.depleted`` fires when the ongoing balance reaches zero or less. Each re-arms
when the balance goes back above. A crossing is a change from above to at-or-below between two
observations: the first observation only records where the balance is (a customer created
already below its threshold has not fallen to it). Observations happen when a grant is created
or voided (in that request's transaction) and in the worker's credit step
(:func:`check_all`), which catches usage and invoices moving the ongoing balance.

The customer's state row is locked while a crossing is decided, so concurrent checks (two
workers) fire it once. Payload: the webhook's ``data``
``{"customer","currency","balance","ongoing_balance","threshold"}``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from tollway.credit.ledger import settle_expired
from tollway.credit.service import balance, upcoming_total
from tollway.customer.service import get_customer
from tollway.db import is_postgres, session_scope
from tollway.invoice.errors import UnbillableUsage
from tollway.kit.fields import format_decimal
from tollway.kit.money import money_context, money_str, parse_currency
from tollway.models import CreditAlertState, CreditGrant, Customer
from tollway.notification.outbox import emit

log = logging.getLogger("tollway.credits")

LOW_BALANCE = "credits.low_balance"
DEPLETED = "credits.depleted"


def _lock_state(session: Session, customer_id: str) -> tuple[CreditAlertState, bool]:
    """The customer's state row, locked; and whether it existed before this call."""
    row = session.scalars(
        select(CreditAlertState)
        .where(CreditAlertState.customer_id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is not None:
        return row, True
    insert = pg_insert if is_postgres(session) else sqlite_insert
    session.execute(
        insert(CreditAlertState)
        .values(customer_id=customer_id, low_fired=False, depleted_fired=False)
        .on_conflict_do_nothing(index_elements=["customer_id"])
    )
    row = session.scalars(
        select(CreditAlertState)
        .where(CreditAlertState.customer_id == customer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return row, False


def check_balance(session: Session, customer_id: str, *, now: datetime) -> list[str]:
    """Observe the customer's ongoing balance at ``now``; emit what it crossed. Returns the topics
    emitted. The caller commits."""
    customer = get_customer(session, customer_id)
    settle_expired(session, customer_id, now=now)  # expiries reach the ledger at least this often
    threshold = customer.low_balance_threshold
    had_credit = session.scalar(select(exists().where(CreditGrant.customer_id == customer_id)))
    if threshold is None and not had_credit:
        return []
    cur = parse_currency(customer.currency)
    bal = balance(session, customer_id, now)
    try:
        total = upcoming_total(session, customer_id, now)
    except UnbillableUsage:  # usage past what can be priced: no balance to observe (never a 5xx)
        log.warning("credit balance of %s not checked: its upcoming invoice cannot be priced", customer_id)
        return []
    with money_context():
        ongoing = bal - total
    low = threshold is not None and ongoing <= Decimal(threshold)
    depleted = bool(had_credit) and ongoing <= 0
    state, seen = _lock_state(session, customer_id)
    fired = []
    if seen and low and not state.low_fired:
        fired.append(LOW_BALANCE)
    if seen and depleted and not state.depleted_fired:
        fired.append(DEPLETED)
    state.low_fired, state.depleted_fired = low, depleted
    state.updated_at = now
    data: dict[str, Any] = {
        "customer": customer_id,
        "currency": cur.code,
        "balance": money_str(bal, cur),
        "ongoing_balance": money_str(ongoing, cur),
        "threshold": format_decimal(Decimal(threshold)) if threshold is not None else None,
    }
    for topic in fired:
        emit(session, topic, data, key=customer_id)
    session.flush()
    return fired


def check_all(factory: sessionmaker[Session], *, now: datetime) -> int:
    """The worker's credit step: observe every customer with a threshold or a grant, one
    transaction each. Returns how many notifications were emitted."""
    with factory() as session:
        has_grant = exists().where(CreditGrant.customer_id == Customer.id)
        ids = list(
            session.scalars(
                select(Customer.id)
                .where(or_(Customer.low_balance_threshold.is_not(None), has_grant))
                .order_by(Customer.id)
            )
        )
    emitted = 0
    for customer_id in ids:
        try:
            with session_scope(factory) as session:
                emitted += len(check_balance(session, customer_id, now=now))
        except Exception:
            log.exception("cannot check the credit balance of %s", customer_id)
    return emitted
