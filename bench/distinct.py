"""``unique_count`` over a heavy customer's billing period, raw vs the period's distinct values,
next to a count query of the same period, through the real server, on PostgreSQL.

    .venv/bin/python bench/distinct.py                          # 10,000,000 stored, 1,000,000 heavy
    .venv/bin/python bench/distinct.py --stored-events 1000000  # quicker

Loads the events with ``INSERT … SELECT generate_series`` (a heavy customer with 1,000,000 events
in the current calendar month so far, a typical one with 10,000, the rest over 2,000 customers and
the twelve months before), subscribes heavy and typical to a monthly calendar plan (UTC), creates
a ``count`` meter (``calls``) and a ``unique_count`` meter (``users``, ``--users`` distinct values),
builds the hourly rollups, then times one-month usage queries over the current period through
HTTP (``--repeats`` after 3 warm-ups), in the same run:

1. before: no distinct sets (the raw read ``main`` does);
2. after the worker's step built the period sets (timed);
3. the same with ``--pending`` new events of heavy not folded yet (read raw next to the set).

Each answer is checked against ``COUNT(DISTINCT …)`` over the raw events.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database, start_server, summary

from tollway.db import make_engine, make_sessionmaker, session_scope
from tollway.meter import rollup


def load(url: str, total: int, users: int, month: datetime, now: datetime) -> None:
    heavy, typical = min(1_000_000, total // 2), 10_000
    rest = max(0, total - heavy - typical)
    t0 = time.perf_counter()
    props = (
        f"jsonb_build_object('user', 'u-' || floor(random() * {users})::int, "
        "'status', CASE WHEN random() < 0.9 THEN 200 ELSE 500 END, 'bytes', floor(random() * 20000)::int)"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.7)")

        def insert(prefix: str, customer: str, n: int, lo: datetime, hi: datetime) -> None:
            for start in range(0, n, 1_000_000):
                k = min(1_000_000, n - start)
                conn.execute(
                    "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                    f"SELECT %(p)s || i, {customer}, 'api_call', "
                    f"%(lo)s + random() * (%(hi)s - %(lo)s), %(lo)s, {props} "
                    "FROM generate_series(CAST(%(a)s AS bigint), CAST(%(b)s AS bigint)) i",
                    {"p": prefix, "lo": lo.replace(tzinfo=None), "hi": hi.replace(tzinfo=None), "a": start,
                     "b": start + k - 1},
                )  # fmt: skip

        insert("h", "'heavy'", heavy, month, now)
        insert("t", "'typical'", typical, month, now)
        insert("r", "'cust-' || (i %% 2000)", rest, month - timedelta(days=365), month)
        conn.execute("VACUUM ANALYZE events")
    print(f"loaded {total:,} events in {time.perf_counter() - t0:.0f} s")


def time_usage(url: str, key: str, meter: str, customer: str, lo: datetime, hi: datetime, n: int) -> list[float]:
    params = {"customer": customer, "from": lo.isoformat(), "to": hi.isoformat()}
    out = []
    with httpx.Client(timeout=300, headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = client.get(f"{url}/v1/meters/{meter}/usage", params=params)
            ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            if i >= 3:
                out.append(ms)
    return out


def answer(url: str, key: str, meter: str, customer: str, lo: datetime, hi: datetime) -> str:
    params = {"customer": customer, "from": lo.isoformat(), "to": hi.isoformat()}
    r = httpx.get(
        f"{url}/v1/meters/{meter}/usage", params=params, headers={"Authorization": f"Bearer {key}"}, timeout=300
    )
    r.raise_for_status()
    return str(r.json()["data"][0]["value"])


def raw_distinct(url: str, customer: str, lo: datetime, hi: datetime) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(DISTINCT properties #>> '{user}') FROM events WHERE customer = %s AND type = 'api_call' "
            "AND timestamp >= %s AND timestamp < %s AND voided_at IS NULL",
            (customer, lo.replace(tzinfo=None), hi.replace(tzinfo=None)),
        ).fetchone()
    assert row is not None
    return str(row[0])


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stored-events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=5000, help="distinct values of the unique_count property")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--pending", type=int, default=10_000, help="events of heavy left pending in phase 3")
    ap.add_argument("--keep", action="store_true", help="keep the database (tw_bench_distinct)")
    args = ap.parse_args()

    now = datetime.now(UTC).replace(microsecond=0)
    month = now.replace(day=1, hour=0, minute=0, second=0)
    nxt = (month + timedelta(days=32)).replace(day=1)
    db = "tw_bench_distinct"
    url = fresh_database(db)
    # No in-process worker: the bench runs the worker's steps itself, to time them and to time
    # the queries before the sets exist.
    server = start_server(url, background_worker=False)
    try:
        admin = server.key("admin")
        h = {"Authorization": f"Bearer {admin}"}
        print(f"load average at start: {load_avg()}")
        load(url, args.stored_events, args.users, month, now)
        with httpx.Client(base_url=server.url, headers=h, timeout=600) as c:
            c.post(
                "/v1/meters", json={"key": "calls", "event_type": "api_call", "aggregation": "count"}
            ).raise_for_status()
            c.post("/v1/meters", json={"key": "users", "event_type": "api_call", "aggregation": "unique_count",
                                       "value_property": "user"}).raise_for_status()  # fmt: skip
            charge = {"code": "users", "meter": "users", "model": "flat", "unit_price": "1.00"}
            plan = {"code": "monthly", "name": "Monthly", "currency": "USD", "charges": [charge]}
            c.post("/v1/plans", json=plan).raise_for_status()
            c.post("/v1/plans/monthly/publish").raise_for_status()
            for customer in ("heavy", "typical"):
                c.post("/v1/customers", json={"id": customer, "timezone": "UTC"}).raise_for_status()
                start = (month - timedelta(days=70)).isoformat()
                sub = {"id": f"sub-{customer}", "customer": customer, "plan": "monthly", "start": start}
                c.post("/v1/subscriptions", json=sub).raise_for_status()
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        t0 = time.perf_counter()
        with session_scope(factory) as s:
            rollup.rebuild_all(s)
        print(f"hourly rollups of calls built in {time.perf_counter() - t0:.0f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE meter_rollups")

        def phase(name: str) -> None:
            expected = raw_distinct(url, "heavy", month, nxt)
            got = answer(server.url, admin, "users", "heavy", month, nxt)
            assert got == expected, (name, got, expected)
            before = load_avg()
            users = time_usage(server.url, admin, "users", "heavy", month, nxt, args.repeats)
            calls = time_usage(server.url, admin, "calls", "heavy", month, nxt, args.repeats)
            ratio = sorted(users)[len(users) // 2] / sorted(calls)[len(calls) // 2]
            print(f"== {name} (load average {before} -> {load_avg()}); users = {got}")
            print(f"   heavy users (unique_count) ms: {summary(users)}")
            print(f"   heavy calls (count)        ms: {summary(calls)}")
            print(f"   p50 users / p50 calls: {ratio:.2f}")

        phase("1. before: raw read, no period sets")
        t0 = time.perf_counter()
        built = 0
        while True:
            with session_scope(factory) as s:
                n = rollup.distinct_step(s, datetime.now(UTC))
            built += n
            if n < rollup.DISTINCT_BUDGET:
                break
        print(f"worker step built {built} period sets in {time.perf_counter() - t0:.1f} s (load {load_avg()})")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE distinct_values")
            conn.execute("VACUUM ANALYZE distinct_periods")
            rows = conn.execute("SELECT count(*) FROM distinct_values").fetchone()
            print(f"distinct_values rows: {rows[0] if rows else 0:,}")
        phase("2. after: period set")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                # pending: tx at the watermark, as the store stamps a metered batch
                "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties, tx) "
                "SELECT 'p' || i, 'heavy', 'api_call', %(lo)s + random() * (%(hi)s - %(lo)s), %(hi)s, "
                f"jsonb_build_object('user', 'n-' || floor(random() * {args.users})::int, 'status', 200), "
                "(SELECT next_tx FROM rollup_watermark) "
                "FROM generate_series(1, CAST(%(n)s AS bigint)) i",
                {"lo": month.replace(tzinfo=None), "hi": now.replace(tzinfo=None), "n": args.pending},
            )
            conn.execute("ANALYZE events")
        phase(f"3. period set + {args.pending:,} pending events")
        engine.dispose()
    finally:
        server.stop()
        if not args.keep:
            drop_database(db)


if __name__ == "__main__":
    main()
