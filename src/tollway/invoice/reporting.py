"""Revenue figures over every customer, read from the invoice tables (never from raw events):
what the console's overview shows.

- :func:`invoiced` — per currency, the totals of the invoices whose period starts in a window;
- :func:`monthly` — the same per calendar month (UTC), for a trend;
- :func:`top_customers` — the customers invoiced most in a window;
- :func:`receivables` — finalized (unpaid) invoices by due date, overdue first.
Void invoices never count; paid and finalized ones do.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tollway.kit.money import from_minor_units, parse_currency
from tollway.models import Customer, Invoice

COUNTED = ("finalized", "paid")


@dataclass(frozen=True)
class Amount:
    currency: str
    amount: Decimal
    invoices: int


def month_start(moment: datetime, *, months_back: int = 0) -> datetime:
    """The first instant (UTC) of the calendar month ``months_back`` before ``moment``'s."""
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def invoiced(session: Session, *, start: datetime, end: datetime) -> list[Amount]:
    rows = session.execute(
        select(Invoice.currency, func.sum(Invoice.total_minor), func.count())
        .where(Invoice.status.in_(COUNTED), Invoice.period_start >= start, Invoice.period_start < end)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    return [Amount(c, from_minor_units(int(m or 0), parse_currency(c)), int(n)) for c, m, n in rows]


@dataclass(frozen=True)
class MonthAmount:
    month: datetime
    currency: str
    amount: Decimal


def monthly(session: Session, *, now: datetime, months: int = 12) -> list[MonthAmount]:
    """Invoiced per calendar month (UTC) of the period start, the last ``months`` months up to
    and including the current one; months without invoices appear with zero for each currency."""
    first = month_start(now, months_back=months - 1)
    # Grouped by period start in SQL (a few distinct starts per month even with anniversary
    # billing), then bucketed into calendar months here: portable, and small to read.
    rows = session.execute(
        select(Invoice.period_start, Invoice.currency, func.sum(Invoice.total_minor))
        .where(Invoice.status.in_(COUNTED), Invoice.period_start >= first)
        .group_by(Invoice.period_start, Invoice.currency)
    )
    sums: dict[tuple[datetime, str], int] = defaultdict(int)
    currencies: set[str] = set()
    for start, currency, minor in rows:
        sums[(month_start(start), currency)] += int(minor or 0)
        currencies.add(currency)
    out: list[MonthAmount] = []
    for back in range(months - 1, -1, -1):
        month = month_start(now, months_back=back)
        for cur in sorted(currencies):
            out.append(MonthAmount(month, cur, from_minor_units(sums.get((month, cur), 0), parse_currency(cur))))
    return out


@dataclass(frozen=True)
class TopCustomer:
    customer: str
    name: str | None
    currency: str
    amount: Decimal


def top_customers(session: Session, *, start: datetime, end: datetime, limit: int = 10) -> list[TopCustomer]:
    total = func.sum(Invoice.total_minor).label("total")
    rows = session.execute(
        select(Invoice.customer_id, Customer.name, Invoice.currency, total)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.status.in_(COUNTED), Invoice.period_start >= start, Invoice.period_start < end)
        .group_by(Invoice.customer_id, Customer.name, Invoice.currency)
        .order_by(total.desc(), Invoice.customer_id)
        .limit(limit)
    )
    return [TopCustomer(c, n, cur, from_minor_units(int(m), parse_currency(cur))) for c, n, cur, m in rows]


@dataclass(frozen=True)
class Receivable:
    invoice: str
    number: str
    customer: str
    currency: str
    amount: Decimal
    due_at: datetime
    overdue: bool


def receivables(session: Session, *, now: datetime, limit: int = 20) -> tuple[list[Receivable], list[Amount]]:
    """The first ``limit`` unpaid invoices by due date, and the total due per currency. An invoice
    is overdue from the day (UTC) after its due date."""
    rows = session.execute(
        select(Invoice.id, Invoice.number, Invoice.customer_id, Invoice.currency, Invoice.total_minor, Invoice.due_at)
        .where(Invoice.status == "finalized", Invoice.total_minor > 0)
        .order_by(Invoice.due_at, Invoice.id)
        .limit(limit)
    )
    items = [
        Receivable(i, num, c, cur, from_minor_units(int(m), parse_currency(cur)), due, due.date() < now.date())
        for i, num, c, cur, m, due in rows
    ]
    totals = session.execute(
        select(Invoice.currency, func.sum(Invoice.total_minor), func.count())
        .where(Invoice.status == "finalized", Invoice.total_minor > 0)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    return items, [Amount(c, from_minor_units(int(m or 0), parse_currency(c)), int(n)) for c, m, n in totals]
