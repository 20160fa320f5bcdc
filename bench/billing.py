"""Billing benchmark against PostgreSQL: finalize every invoice, and the upcoming-invoice latency.

    .venv/bin/python bench/billing.py                                  # 10,000 customers, 10,000,000 events
    .venv/bin/python bench/billing.py --customers 1000 --events 1000000  # quicker

Setup (not timed as billing): a scratch database migrated to head; three meters on one event
type (calls: count; bytes: sum of ``bytes``; errors: count of ``status >= 500``); one published
plan with a charge on each (package, graduated, flat) and a recurring fee; ``--customers``
customers each subscribed from 1 January 2026; ``--events`` events spread evenly over January,
loaded with COPY straight into the events table (secondary indexes built after the load), then
the meters' hourly rollups rebuilt and ANALYZE run.

Measured:
(a) the latency of ``GET /v1/customers/{id}/upcoming-invoice?at=2026-01-31T12:00:00Z`` (the live
    January invoice, every event of the customer's month counted) through the ASGI app, p50 over
    ``--upcoming-calls`` calls on random customers;
(b) the wall time of the billing run that finalizes January for every subscription, with
    ``--processes`` worker processes running ``run_billing`` at once (they share the work through
    row locks, as ``tollway worker`` processes do); checked: one invoice per subscription, numbers
    1..N without gaps, and the totals of a sample recomputed by hand.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database, pg_url, summary

DB_NAME = "tw_bench_billing"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
PLAN = {
    "code": "bench",
    "name": "Bench",
    "currency": "USD",
    "payment_terms_days": 30,
    "fees": {"recurring": {"amount": "49.00", "in_advance": True, "prorate": True}},
    "charges": [
        {"code": "calls", "meter": "calls", "model": "package", "package_size": 100, "package_price": "1.00",
         "free_units": 200},
        {"code": "bytes", "meter": "bytes", "model": "graduated",
         "tiers": [{"up_to": 10000000, "unit_price": "0.000001"}, {"up_to": None, "unit_price": "0.0000005"}]},
        {"code": "errors", "meter": "errors", "model": "flat", "unit_price": "0.05"},
    ],
}  # fmt: skip


def setup(url: str, customers: int, events: int, seed: int) -> dict[str, tuple[int, int, int]]:
    """Create the catalog, customers, subscriptions and events; return the expected usage of each
    customer (calls, bytes, errors) for the hand check."""
    from tollway.catalog.schemas import PlanCreate
    from tollway.catalog.service import create_plan, publish_plan
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.meter.schemas import MeterCreate
    from tollway.meter.service import create_meter
    from tollway.migrations.runner import upgrade

    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        for body in (
            {"key": "calls", "event_type": "api_call", "aggregation": "count"},
            {"key": "bytes", "event_type": "api_call", "aggregation": "sum", "value_property": "bytes"},
            {"key": "errors", "event_type": "api_call", "aggregation": "count",
             "filters": [{"property": "status", "op": "gte", "value": 500}]},
        ):  # fmt: skip
            create_meter(session, MeterCreate.model_validate(body))
        create_plan(session, PlanCreate.model_validate(PLAN))
        publish_plan(session, "bench", at=datetime(2025, 12, 1, tzinfo=UTC))
    engine.dispose()

    rnd = random.Random(seed)
    per = events // customers
    span = 31 * 86400
    expected: dict[str, tuple[int, int, int]] = {}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY customers (id, name, currency, timezone, tax_rate, metadata, created_at, updated_at) FROM STDIN"
            ) as cp:
                for c in range(customers):
                    cp.write_row((f"cust-{c:05d}", f"Customer {c}", "USD", "UTC", "10", "{}", JAN, JAN))
            with cur.copy(
                "COPY subscriptions (id, customer_id, plan_code, start, timezone, charge_setup_fee, overrides, "
                "created_at, updated_at) FROM STDIN"
            ) as cp:
                for c in range(customers):
                    cp.write_row((f"sub-{c:05d}", f"cust-{c:05d}", "bench", JAN.replace(tzinfo=None), "UTC", True,
                                  "{}", JAN, JAN))  # fmt: skip
            cur.execute("DROP INDEX ix_events_customer_type_timestamp")
            cur.execute("DROP INDEX ix_events_ingested_at")
            t0 = time.perf_counter()
            with cur.copy("COPY events (id, customer, type, timestamp, ingested_at, properties) FROM STDIN") as cp:
                buf = io.StringIO()
                for c in range(customers):
                    cust = f"cust-{c:05d}"
                    calls = nbytes = errors = 0
                    for j in range(per):
                        s = j * span // per
                        d, r = divmod(s, 86400)
                        ts = f"2026-01-{d + 1:02d} {r // 3600:02d}:{r // 60 % 60:02d}:{r % 60:02d}"
                        b = rnd.randrange(100, 100000)
                        status = 503 if rnd.random() < 0.01 else 200
                        calls += 1
                        nbytes += b
                        errors += status >= 500
                        buf.write(f'{cust}-{j}\t{cust}\tapi_call\t{ts}\t{ts}\t{{"bytes": {b}, "status": {status}}}\n')
                    expected[cust] = (calls, nbytes, errors)
                    if buf.tell() > 8_000_000:
                        cp.write(buf.getvalue())
                        buf = io.StringIO()
                cp.write(buf.getvalue())
            print(f"  COPY of {per * customers:,} events: {time.perf_counter() - t0:.1f} s", flush=True)
            t0 = time.perf_counter()
            cur.execute("CREATE INDEX ix_events_customer_type_timestamp ON events (customer, type, timestamp)")
            cur.execute("CREATE INDEX ix_events_ingested_at ON events (ingested_at)")
            print(f"  indexes: {time.perf_counter() - t0:.1f} s", flush=True)
        conn.commit()
    try:
        from tollway.meter import rollup
    except ImportError:  # rollups are an optimisation of live reads; without them live reads scan events
        rollup = None  # type: ignore[assignment]
    if rollup is not None and hasattr(rollup, "rebuild_all"):
        t0 = time.perf_counter()
        engine = make_engine(url)
        with session_scope(make_sessionmaker(engine)) as session:
            rollup.rebuild_all(session)
        engine.dispose()
        print(f"  rollups rebuilt: {time.perf_counter() - t0:.1f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return expected


def regenerate_expected(customers: int, events: int, seed: int) -> dict[str, tuple[int, int, int]]:
    """The expected usage of each customer as :func:`setup` generated it (same seed, same order of
    draws), without writing anything: for ``--reuse``."""
    rnd = random.Random(seed)
    per = events // customers
    expected: dict[str, tuple[int, int, int]] = {}
    for c in range(customers):
        nbytes = errors = 0
        for _ in range(per):
            nbytes += rnd.randrange(100, 100000)
            errors += rnd.random() < 0.01
        expected[f"cust-{c:05d}"] = (per, nbytes, errors)
    return expected


def reset_billing(url: str) -> None:
    """Undo a billing run on a kept database: no invoices, no bookmarks, the counter at zero."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM credit_ledger WHERE invoice_id IS NOT NULL")
        conn.execute("DELETE FROM invoice_lines")
        conn.execute("DELETE FROM invoices")
        conn.execute("DELETE FROM outbox")
        conn.execute("UPDATE subscriptions SET billed_until = NULL")
        conn.execute("UPDATE invoice_sequences SET last_value = 0")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE invoices")
        conn.execute("VACUUM ANALYZE invoice_lines")
        conn.execute("VACUUM ANALYZE subscriptions")


def expected_total(calls: int, nbytes: int, errors: int) -> Decimal:
    """The January invoice by hand: 49.00 recurring; calls: 200 free, then $1 per started 100;
    bytes: 10,000,000 at $0.000001 then $0.0000005; errors at $0.05; tax 10% half up."""
    cent = Decimal("0.01")
    billable = max(calls - 200, 0)
    calls_amount = Decimal(-(-billable // 100))
    low = min(nbytes, 10_000_000)
    bytes_amount = (Decimal(low) * Decimal("0.000001") + Decimal(max(nbytes - low, 0)) * Decimal("0.0000005")).quantize(
        cent, ROUND_HALF_UP
    )
    errors_amount = (Decimal(errors) * Decimal("0.05")).quantize(cent, ROUND_HALF_UP)
    subtotal = Decimal("49.00") + calls_amount + bytes_amount + errors_amount
    return subtotal + (subtotal * Decimal("0.10")).quantize(cent, ROUND_HALF_UP)


def _run(url: str) -> tuple[int, int]:
    """One billing process: (invoices it created, SQL statements it sent)."""
    from sqlalchemy import event

    from tollway.db import make_engine, make_sessionmaker
    from tollway.invoice.finalize import run_billing

    engine = make_engine(url)
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        return len(run_billing(make_sessionmaker(engine), until=FEB).created), statements
    finally:
        engine.dispose()


def upcoming_latency(url: str, customers: int, calls: int, seed: int) -> list[float]:
    from fastapi.testclient import TestClient

    from tollway.app import create_app
    from tollway.auth.keys import create_key
    from tollway.config import Settings
    from tollway.db import session_scope

    app = create_app(Settings(database_url=url, run_worker_in_serve=False))
    with session_scope(app.state.sessionmaker) as session:
        _, secret = create_key(session, scope="admin", name="bench")
    rnd = random.Random(seed)
    out = []
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        for i in range(calls + 3):
            cust = f"cust-{rnd.randrange(customers):05d}"
            t0 = time.perf_counter()
            r = client.get(f"/v1/customers/{cust}/upcoming-invoice", params={"at": "2026-01-31T12:00:00Z"})
            elapsed = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.text
            if i >= 3:  # the first calls warm caches and the connection pool
                out.append(elapsed)
    app.state.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000, help="total events (spread evenly over customers)")
    parser.add_argument("--processes", type=int, default=2, help="billing worker processes running at once")
    parser.add_argument("--upcoming-calls", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", default=DB_NAME, help="name of the scratch database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="bill again a database kept by an earlier --keep run with the same --customers/--events/--seed "
        "(its invoices deleted and bookmarks reset first; implies --keep; skips the upcoming-invoice calls)",
    )
    args = parser.parse_args()

    if args.reuse:
        url = pg_url(args.database)
        args.keep = True
    else:
        url = fresh_database(args.database)
    try:
        print(f"setup: {args.customers:,} customers, {args.events:,} events, 3 meters", flush=True)
        t0 = time.perf_counter()
        if args.reuse:
            reset_billing(url)
            expected = regenerate_expected(args.customers, args.events, args.seed)
        else:
            expected = setup(url, args.customers, args.events, args.seed)
        print(f"setup total: {time.perf_counter() - t0:.1f} s", flush=True)

        lat = [] if args.reuse else upcoming_latency(url, args.customers, args.upcoming_calls, args.seed)
        if lat:
            print(f"(a) upcoming invoice (live January, {args.events // args.customers:,} events/customer), ms: "
                  f"{summary(lat)}", flush=True)  # fmt: skip

        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.processes) as pool:
            done = list(pool.map(_run, [url] * args.processes))
        elapsed = time.perf_counter() - t0
        created = sum(n for n, _ in done)
        statements = sum(n for _, n in done)
        print(
            f"(b) billing run: {created:,} invoices in {elapsed:.1f} s with {args.processes} processes "
            f"({created / elapsed:.0f} invoices/s; {statements:,} SQL statements, "
            f"{statements / max(created, 1):.1f} per invoice)",
            flush=True,
        )

        with psycopg.connect(url) as conn:
            numbers = [r[0] for r in conn.execute("SELECT number FROM invoices ORDER BY number")]
            assert numbers == [f"INV-{n:06d}" for n in range(1, args.customers + 1)], "numbers not gapless"
            rows = conn.execute("SELECT customer_id, total_minor FROM invoices ORDER BY random() LIMIT 200").fetchall()
        for customer, total_minor in rows:
            want = expected_total(*expected[customer])
            assert Decimal(total_minor) / 100 == want, (customer, total_minor, want)
        print(f"checked: {len(numbers):,} invoices numbered 1..N without gaps; 200 sampled totals match the hand "
              f"computation (e.g. {rows[0][0]}: {Decimal(rows[0][1]) / 100})")  # fmt: skip
        upcoming = f"; upcoming p50 {statistics.median(lat):.1f} ms (target < 100 ms)" if lat else ""
        print(f"summary: billing run {elapsed:.1f} s (target < 60 s){upcoming}")
    finally:
        if not args.keep:
            drop_database(args.database)


if __name__ == "__main__":
    main()
