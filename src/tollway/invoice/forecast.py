"""Upcoming-invoice totals kept fresh by the worker, for figures over every customer at once.

:func:`refresh` recomputes the upcoming invoice (:func:`tollway.invoice.service.upcoming_invoice`,
the same computation as the API's) of each customer that needs it and stores its total in
``upcoming_totals``. A customer needs it when events for it were ingested since the previous
refresh (found through the ``ingested_at`` index from the time the previous refresh started, less
an overlap of :data:`OVERLAP`), when its
stored period has ended, or when it has an active subscription and no row yet. Reads of the
table (:func:`expected`) are then one aggregate over at most one row per customer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tollway.db import database_now, session_scope
from tollway.errors import TollwayError
from tollway.invoice.service import upcoming_invoice
from tollway.kit.money import from_minor_units, parse_currency, to_minor_units
from tollway.models import Customer, Event, Subscription, UpcomingTotal

log = logging.getLogger("tollway.forecast")

OVERLAP = timedelta(seconds=60)
"""Events are looked at from this long before the previous refresh started (clock skew between
processes, transactions that committed late); recomputing a customer twice is harmless."""
CHUNK = 200


def due_customers(session: Session, *, now: datetime, overlap: timedelta = OVERLAP) -> list[str]:
    """Customers whose stored upcoming total may be out of date."""
    last = session.scalar(select(func.max(UpcomingTotal.events_seen_until)))
    found: set[str] = set()
    with_subscription = select(Subscription.customer_id).where(
        Subscription.start <= now, or_(Subscription.ends_at.is_(None), Subscription.ends_at > now)
    )
    if last is not None:
        found.update(session.scalars(select(Event.customer).where(Event.ingested_at > last - overlap).distinct()))
    found.update(session.scalars(select(UpcomingTotal.customer_id).where(UpcomingTotal.period_end <= now)))
    found.update(
        session.scalars(
            with_subscription.where(Subscription.customer_id.not_in(select(UpcomingTotal.customer_id))).distinct()
        )
    )
    if not found:
        return []
    known = set(session.scalars(select(Customer.id).where(Customer.id.in_(sorted(found)))))
    return sorted(known)


def refresh(factory: sessionmaker[Session], *, now: datetime, overlap: timedelta = OVERLAP) -> int:
    """Recompute the upcoming totals that need it; returns how many customers were computed."""
    with factory() as session:
        # What is ingested from now on has a later ingestion time (the database's clock on
        # PostgreSQL, as the store stamps it); one committed late is in the overlap.
        seen = database_now(session)
        customers = due_customers(session, now=now, overlap=overlap)
    for i in range(0, len(customers), CHUNK):
        with session_scope(factory) as session:
            rows = []
            for customer_id in customers[i : i + CHUNK]:
                try:
                    inv = upcoming_invoice(session, customer_id, at=now)
                except TollwayError as exc:  # unbillable usage: leave it out, the API reports it
                    log.warning("upcoming total of %s not computed: %s", customer_id, exc.message)
                    continue
                total = None
                if inv.currency is not None and inv.total is not None:
                    total = to_minor_units(Decimal(inv.total), parse_currency(inv.currency))
                rows.append(
                    {
                        "customer_id": customer_id,
                        "currency": inv.currency,
                        "total_minor": total,
                        "period_start": inv.period_start,
                        "period_end": inv.period_end,
                        "computed_at": now,
                        "events_seen_until": seen,
                    }
                )
            session.execute(
                delete(UpcomingTotal).where(UpcomingTotal.customer_id.in_([r["customer_id"] for r in rows]))
            )
            if rows:
                session.execute(insert(UpcomingTotal), rows)
    return len(customers)


@dataclass(frozen=True)
class Expected:
    currency: str
    amount: Decimal
    customers: int


def expected(session: Session, *, now: datetime) -> list[Expected]:
    """Per currency: the stored upcoming totals of periods still open at ``now``."""
    sums: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    rows = session.execute(
        select(UpcomingTotal.currency, func.sum(UpcomingTotal.total_minor), func.count())
        .where(UpcomingTotal.total_minor.is_not(None), UpcomingTotal.period_end > now)
        .group_by(UpcomingTotal.currency)
    )
    for currency, minor, count in rows:
        if currency is not None:
            sums[currency] = (int(minor or 0), int(count))
    return [
        Expected(code, from_minor_units(minor, parse_currency(code)), count)
        for code, (minor, count) in sorted(sums.items())
    ]
