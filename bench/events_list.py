"""``GET /v1/events`` on PostgreSQL: list latency per filter, and what ``ix_events_timestamp`` costs.

    .venv/bin/python bench/events_list.py                       # 2,000,000 stored events
    .venv/bin/python bench/events_list.py --events 10000000     # slower to load

Setup: a scratch database migrated to head; ``--events`` events (``--customers`` customers, one
event every 2.5 s from 1 January 2026, five event types in turn), 95 % of the customers created;
VACUUM ANALYZE.

Measured, in the same run, with the index the events list added (``ix_events_timestamp``) and
without it (the baseline: dropped, ANALYZE, then created again):
(a) the median wall time of ``event.service.list_events`` (one page of 50, the query plus the
    customer look-up) per filter: none, ``to`` in the middle of the data (as a cursor deep in
    the list), a type, a customer, a customer and a type, a one-day range, and a customer whose
    events have no customer row;
(b) the write cost: ``--insert-rows`` further rows inserted with one ``INSERT … SELECT``
    (no HTTP), median of three, with and without the index: the upper bound of what the index
    costs ingestion (the HTTP path adds its own work on top, so the share there is smaller).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_database, fresh_database

from tollway.db import make_engine, make_sessionmaker
from tollway.event.service import EventFilter, list_events
from tollway.migrations.runner import upgrade

DB = "tw_bench_events_list"


def load(url: str, events: int, customers: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties)"
            f" SELECT 'e' || g, 'c' || (g % {customers}), 't' || (g % 5),"
            " timestamp '2026-01-01' + g * interval '2.5 second', now(), '{\"n\": 1}'::jsonb"
            f" FROM generate_series(1, {events}) g"
        )
        known = customers * 95 // 100
        conn.execute(
            "INSERT INTO customers (id, currency, timezone, tax_rate, metadata, created_at, updated_at)"
            f" SELECT 'c' || g, 'USD', 'UTC', 0, '{{}}', now(), now() FROM generate_series(0, {known - 1}) g"
        )
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE customers")


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm the cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def insert_ms(url: str, start: int, rows: int) -> float:
    times = []
    for run in range(3):
        first = start + run * rows
        with psycopg.connect(url, autocommit=True) as conn:
            t = time.perf_counter()
            conn.execute(
                "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties)"
                " SELECT 'x' || g, 'c' || (g % 1000), 't' || (g % 5),"
                " timestamp '2026-03-01' + g * interval '1 second', now(), '{\"n\": 1}'::jsonb"
                f" FROM generate_series({first}, {first + rows - 1}) g"
            )
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--customers", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--insert-rows", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    url = fresh_database(DB)
    t = time.perf_counter()
    load(url, args.events, args.customers)
    print(f"loaded {args.events:,} events in {time.perf_counter() - t:.0f} s", flush=True)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    unknown = f"c{args.customers - 1}"
    deep = datetime(2026, 1, 15, tzinfo=UTC)
    cases: dict[str, Callable[..., object]] = {
        "no filter": lambda s: list_events(s, EventFilter(), limit=51, after=None),
        "to = mid-January": lambda s: list_events(s, EventFilter(end=deep), limit=51, after=None),
        "type": lambda s: list_events(s, EventFilter(type="t3"), limit=51, after=None),
        "customer": lambda s: list_events(s, EventFilter(customer="c17"), limit=51, after=None),
        "customer + type": lambda s: list_events(s, EventFilter(customer="c17", type="t2"), limit=51, after=None),
        "one day": lambda s: list_events(
            s, EventFilter(start=datetime(2026, 1, 20, tzinfo=UTC), end=datetime(2026, 1, 21, tzinfo=UTC)),
            limit=51, after=None,
        ),
        "unknown customer": lambda s: list_events(s, EventFilter(customer=unknown), limit=51, after=None),
    }  # fmt: skip

    def measure() -> dict[str, float]:
        out = {}
        with factory() as session:
            for name, case in cases.items():
                out[name] = median_ms(lambda case=case: case(session), args.repeats)
        return out

    with_index = measure()
    write_with = insert_ms(url, 10_000_000_000, args.insert_rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX ix_events_timestamp")
        conn.execute("ANALYZE events")
    without = measure()
    write_without = insert_ms(url, 20_000_000_000, args.insert_rows)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE INDEX ix_events_timestamp ON events (timestamp)")

    print(f"\nGET /v1/events, one page of 50, {args.events:,} events, median of {args.repeats} (ms)")
    print(f"{'filter':<24} {'with the index':>15} {'without (baseline)':>19} {'ratio':>8}")
    for name in cases:
        a, b = with_index[name], without[name]
        print(f"{name:<24} {a:>15.1f} {b:>19.1f} {a / b:>7.3f}x")
    print(f"\nINSERT of {args.insert_rows:,} rows, median of 3 (ms)")
    ratio = write_with / write_without
    print(f"with the index {write_with:.0f}, without {write_without:.0f}: {ratio:.2f}x")
    engine.dispose()
    if not args.keep:
        drop_database(DB)


if __name__ == "__main__":
    main()
