"""Credits benchmark against PostgreSQL: what credit application adds to finalizing an invoice,
and what ``ongoing_balance`` (the limits check's prepaid read) costs next to the upcoming invoice.

    .venv/bin/python bench/credits.py                       # 2 x 1,000 customers
    .venv/bin/python bench/credits.py --customers 200       # quicker

Setup (not timed): a scratch database migrated to head; one plan with a 49.00 recurring fee and
a per-call charge; ``2 x --customers`` customers subscribed from 1 January 2026, each with 20
events in January; the customers of set B each have three credit grants (priorities 0, 5, 10;
one expiring) that together cover part of the invoice, those of set A none.

Measured, in the same run so that the ratio does not depend on the machine's load:
(a) finalizing one customer's January invoice (``finalize_next`` + commit, one transaction),
    alternating blocks of 50 customers of A and of B; per-invoice p50 of each set and B / A;
(b) ``ongoing_balance(session, customer, at)`` against ``upcoming_invoice`` alone, on set B.
Checked: every B invoice used credits, and each B customer's ledger sums to its balance.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database, summary

DB_NAME = "tw_bench_credits"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
PLAN = {
    "code": "bench",
    "name": "Bench",
    "currency": "USD",
    "fees": {"recurring": {"amount": "49.00", "in_advance": True, "prorate": False}},
    "charges": [{"code": "calls", "meter": "calls", "model": "flat", "unit_price": "0.10"}],
}


def setup(url: str, customers: int) -> None:
    from tollway.catalog.schemas import PlanCreate
    from tollway.catalog.service import create_plan, publish_plan
    from tollway.credit.schemas import CreditGrantCreate
    from tollway.credit.service import create_grant
    from tollway.customer.schemas import CustomerCreate
    from tollway.customer.service import create_customer
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.event.ingest import IncomingEvent
    from tollway.event.store import SqlEventStore
    from tollway.meter.schemas import MeterCreate
    from tollway.meter.service import create_meter
    from tollway.migrations.runner import upgrade
    from tollway.subscription.schemas import SubscriptionCreate
    from tollway.subscription.service import create_subscription

    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        create_meter(
            session, MeterCreate.model_validate({"key": "calls", "event_type": "api_call", "aggregation": "count"})
        )
        create_plan(session, PlanCreate.model_validate(PLAN))
        publish_plan(session, "bench", at=datetime(2025, 12, 1, tzinfo=UTC))
    ids = [f"{s}-{c:05d}" for s in "ab" for c in range(customers)]
    with session_scope(factory) as session:
        for cid in ids:
            create_customer(session, CustomerCreate(id=cid))
            session.flush()
            create_subscription(
                session, SubscriptionCreate(id=f"sub-{cid}", customer=cid, plan="bench", start=JAN), now=JAN
            )
            if cid.startswith("b"):
                for i, (amount, priority, expires) in enumerate(
                    (("5.00", 0, datetime(2030, 1, 1, tzinfo=UTC)), ("10.00", 5, None), ("20.00", 10, None))
                ):
                    body = CreditGrantCreate(
                        id=f"g-{cid}-{i}",
                        amount=Decimal(amount),
                        priority=priority,
                        effective_at=JAN,
                        expires_at=expires,
                    )
                    create_grant(session, cid, body, now=JAN)
    store = SqlEventStore(engine)
    events = [
        IncomingEvent(
            id=f"{cid}-{j}", customer=cid, type="api_call", timestamp=JAN + timedelta(days=5, minutes=j), properties={}
        )
        for cid in ids
        for j in range(20)
    ]
    for k in range(0, len(events), 1000):
        store.store(events[k : k + 1000], datetime.now(UTC))
    engine.dispose()


def finalize_times(url: str, customers: int) -> tuple[list[float], list[float]]:
    from tollway.db import make_engine, make_sessionmaker
    from tollway.invoice.finalize import finalize_next

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    times: dict[str, list[float]] = {"a": [], "b": []}
    block = 50
    for start in range(0, customers, block):
        for s in "ab":
            for c in range(start, min(start + block, customers)):
                now = datetime.now(UTC)
                t0 = time.perf_counter()
                with factory() as session:
                    invoice, _ = finalize_next(session, f"sub-{s}-{c:05d}", until=FEB, as_of=now, now=now)
                    session.commit()
                times[s].append((time.perf_counter() - t0) * 1000)
                assert invoice is not None
                assert (invoice.credits_applied_minor > 0) == (s == "b")
    engine.dispose()
    return times["a"], times["b"]


def balance_times(url: str, customers: int, calls: int) -> tuple[list[float], list[float]]:
    from tollway.credit.service import ongoing_balance
    from tollway.db import make_engine, make_sessionmaker
    from tollway.invoice.service import upcoming_invoice

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    at = datetime(2026, 2, 15, tzinfo=UTC)
    ongoing: list[float] = []
    upcoming: list[float] = []
    for i in range(calls):
        cid = f"b-{i % customers:05d}"
        for fn, out in ((ongoing_balance, ongoing), (upcoming_invoice, upcoming)):
            with factory() as session:
                t0 = time.perf_counter()
                fn(session, cid, at=at) if fn is upcoming_invoice else fn(session, cid, at)  # type: ignore[operator]
                out.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return ongoing, upcoming


def check(url: str, customers: int) -> None:
    from sqlalchemy import func, select

    from tollway.credit.service import balance
    from tollway.db import make_engine, make_sessionmaker
    from tollway.models import CreditLedgerEntry

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        now = datetime.now(UTC)
        for c in range(0, customers, max(1, customers // 50)):
            cid = f"b-{c:05d}"
            total = session.scalar(
                select(func.sum(CreditLedgerEntry.amount_minor)).where(CreditLedgerEntry.customer_id == cid)
            )
            assert Decimal(total) / 100 == balance(session, cid, now), cid
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000, help="customers per set (A: no credit, B: credit)")
    parser.add_argument("--balance-calls", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    url = fresh_database(DB_NAME)
    try:
        t0 = time.perf_counter()
        setup(url, args.customers)
        print(f"setup: {time.perf_counter() - t0:.1f} s", flush=True)
        a, b = finalize_times(url, args.customers)
        print(f"finalize, no credit (A), ms:   {summary(a)}")
        print(f"finalize, with credit (B), ms: {summary(b)}")
        print(f"ratio B / A (p50): {statistics.median(b) / statistics.median(a):.2f}")
        ongoing, upcoming = balance_times(url, args.customers, args.balance_calls)
        print(f"ongoing_balance, ms:  {summary(ongoing)}")
        print(f"upcoming_invoice, ms: {summary(upcoming)}")
        ratio = statistics.median(ongoing) / statistics.median(upcoming)
        print(f"ratio ongoing_balance / upcoming_invoice (p50): {ratio:.2f}")
        check(url, args.customers)
        print("checked: B invoices used credit, A invoices none; sampled ledgers sum to the balance")
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
