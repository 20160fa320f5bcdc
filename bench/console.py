"""Console page latency with many customers, against PostgreSQL.

    .venv/bin/python bench/console.py                          # 10,000 customers
    .venv/bin/python bench/console.py --customers 1000 --events 100000   # quicker

Setup (not timed): a scratch database migrated to head; the billing benchmark's meters and plan;
``--customers`` customers with a subscription; ``--events`` events over the last 30 days (COPY,
rollups rebuilt); twelve months of invoices per customer (synthetic rows written with COPY: the
overview reads invoice tables only, so how they were computed does not matter here), a third of
the last month's unpaid; one upcoming total per customer (``invoice.forecast.refresh`` for a
sample, COPY for the rest). Measured, in one process through the ASGI app with a signed-in
operator, ``--runs`` requests per page after a warm-up: the p50/p95 of each console page, next to
an authenticated ``GET /v1/customers/{id}`` (the baseline, same run).
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database, summary
from billing import PLAN

DB_NAME = "tw_bench_console"
EMAIL, PASSWORD = "bench@example.com", "bench password 123"


def setup(url: str, customers: int, events: int, seed: int) -> None:
    from tollway.catalog.schemas import PlanCreate
    from tollway.catalog.service import create_plan, publish_plan
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.meter import rollup
    from tollway.meter.schemas import MeterCreate
    from tollway.meter.service import create_meter
    from tollway.migrations.runner import upgrade
    from tollway.operator.service import create_operator

    now = datetime.now(UTC)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        for body in (
            {"key": "calls", "event_type": "api_call", "aggregation": "count", "group_by": ["endpoint"]},
            {"key": "bytes", "event_type": "api_call", "aggregation": "sum", "value_property": "bytes"},
            {"key": "errors", "event_type": "api_call", "aggregation": "count",
             "filters": [{"property": "status", "op": "gte", "value": 500}]},
        ):  # fmt: skip
            create_meter(session, MeterCreate.model_validate(body))
        create_plan(session, PlanCreate.model_validate(PLAN))
        publish_plan(session, "bench", at=datetime(2025, 1, 1, tzinfo=UTC))
        create_operator(session, email=EMAIL, password=PASSWORD, now=now)
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    months = []
    for back in range(12, 0, -1):
        idx = now.year * 12 + now.month - 1 - back
        months.append(datetime(idx // 12, idx % 12 + 1, 1, tzinfo=UTC))
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn, conn.cursor() as cur:
        with cur.copy("COPY customers (id, name, email, currency, timezone, tax_rate, metadata, created_at, "
                      "updated_at) FROM STDIN") as cp:  # fmt: skip
            for c in range(customers):
                cp.write_row((f"cust-{c:05d}", f"Customer {c}", f"billing{c}@example.com", "USD", "UTC", "0", "{}",
                              start, start))  # fmt: skip
        with cur.copy("COPY subscriptions (id, customer_id, plan_code, start, timezone, charge_setup_fee, overrides, "
                      "created_at, updated_at) FROM STDIN") as cp:  # fmt: skip
            for c in range(customers):
                cp.write_row((f"sub-{c:05d}", f"cust-{c:05d}", "bench", start.replace(tzinfo=None), "UTC", False,
                              "{}", start, start))  # fmt: skip
        number = 0
        with cur.copy("COPY invoices (id, number, customer_id, subscription_id, plan_code, currency, status, "
                      "period_start, period_end, issued_at, due_at, as_of, tax_rate, subtotal_minor, tax_minor, "
                      "total_minor, amount_due_minor, created_at, updated_at) FROM STDIN") as cp:  # fmt: skip
            for i, m in enumerate(months):
                end = months[i + 1] if i + 1 < len(months) else this_month
                for c in range(customers):
                    number += 1
                    total = rnd.randrange(4900, 250_000)
                    status = "finalized" if i == len(months) - 1 and c % 3 == 0 else "paid"
                    cp.write_row((f"inv_{number:024d}", f"INV-{number:07d}", f"cust-{c:05d}", f"sub-{c:05d}", "bench",
                                  "USD", status, m.replace(tzinfo=None), end.replace(tzinfo=None),
                                  end.replace(tzinfo=None), (end + timedelta(days=30)).replace(tzinfo=None),
                                  end.replace(tzinfo=None), "0", total, 0, total, total, end, end))  # fmt: skip
        with cur.copy("COPY upcoming_totals (customer_id, currency, total_minor, period_start, period_end, "
                      "computed_at, events_seen_until) FROM STDIN") as cp:  # fmt: skip
            nxt = datetime(this_month.year + (this_month.month == 12), this_month.month % 12 + 1, 1)
            for c in range(customers):
                cp.write_row((f"cust-{c:05d}", "USD", rnd.randrange(4900, 250_000), this_month.replace(tzinfo=None),
                              nxt, now.replace(tzinfo=None), now.replace(tzinfo=None)))  # fmt: skip
        per = max(events // customers, 1)
        span = 30 * 86400
        with cur.copy("COPY events (id, customer, type, timestamp, ingested_at, properties) FROM STDIN") as cp:
            buf = io.StringIO()
            base = now - timedelta(days=30)
            for c in range(customers):
                for j in range(per):
                    ts = (base + timedelta(seconds=j * span // per + c % 3600)).replace(tzinfo=None)
                    endpoint = ("/v1/forecast", "/v1/maps", "/v1/alerts")[j % 3]
                    status = 503 if rnd.random() < 0.01 else 200
                    props = f'{{"bytes": {rnd.randrange(100, 100000)}, "status": {status}, "endpoint": "{endpoint}"}}'
                    buf.write(f"cust-{c:05d}-{j}\tcust-{c:05d}\tapi_call\t{ts}\t{ts}\t{props}\n")
                if buf.tell() > 8_000_000:
                    cp.write(buf.getvalue())
                    buf = io.StringIO()
            cp.write(buf.getvalue())
        conn.commit()
    with session_scope(factory) as session:
        rollup.rebuild_all(session)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from tollway.app import create_app
    from tollway.auth.keys import create_key
    from tollway.config import Settings
    from tollway.db import session_scope

    url = fresh_database(DB_NAME)
    try:
        t0 = time.perf_counter()
        setup(url, args.customers, args.events, args.seed)
        print(f"setup: {args.customers:,} customers, {args.customers * 12:,} invoices, {args.events:,} events "
              f"over 30 days: {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        app = create_app(Settings(database_url=url, run_worker_in_serve=False))
        with session_scope(app.state.sessionmaker) as session:
            _, secret = create_key(session, scope="admin", name="bench")
        pages = [
            ("GET /v1/customers/{id} (baseline)", "/v1/customers/cust-00042", True),
            ("overview", "/console", False),
            ("customers list", "/console/customers", False),
            ("customers search", "/console/customers?q=customer%204242", False),
            ("customer page", "/console/customers/cust-00042", False),
            ("invoices", "/console/invoices", False),
            ("invoices of one customer", "/console/invoices?customer=cust-00042", False),
            ("meters (30 days, every customer)", "/console/meters?days=30", False),
            ("meters by endpoint", "/console/meters?meter=calls&group_by=endpoint&days=30", False),
            ("plans", "/console/plans", False),
            ("settings", "/console/settings", False),
        ]
        with TestClient(app) as client:
            page = client.get("/console/sign-in")
            token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = client.post("/console/sign-in", data={"email": EMAIL, "password": PASSWORD, "sign_in_token": token},
                            follow_redirects=False)  # fmt: skip
            assert r.status_code == 303, r.text
            results = {}
            for name, path, api in pages:
                headers = {"Authorization": f"Bearer {secret}"} if api else {}
                times = []
                for i in range(args.runs + 2):
                    t = time.perf_counter()
                    resp = client.get(path, headers=headers)
                    elapsed = (time.perf_counter() - t) * 1000
                    assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
                    if i >= 2:
                        times.append(elapsed)
                results[name] = sorted(times)
                print(f"{name:40s} ms: {summary(times)}", flush=True)
        base = results["GET /v1/customers/{id} (baseline)"][len(times) // 2]
        worst = max(v[len(v) // 2] for k, v in results.items())
        print(f"summary: slowest page p50 {worst:.0f} ms (target < 300 ms); baseline p50 {base:.1f} ms")
        app.state.engine.dispose()
    finally:
        drop_database(DB_NAME)


if __name__ == "__main__":
    main()
