"""Ingestion and usage-query benchmark against PostgreSQL, through the real server.

    .venv/bin/python bench/ingest.py                       # full run (10,000,000 stored events)
    .venv/bin/python bench/ingest.py --stored-events 1000000 --ingest-events 100000   # quicker

(a) End-to-end ingestion: HTTP batches of 100 and of 1000 events → validated, deduplicated,
    stored. Reported in events/s next to the raw ceiling measured in the same run: COPY of the same
    rows into a staging table + INSERT … ON CONFLICT DO NOTHING, from Python, no HTTP.
(b) Latency of a one-month usage query with ``--stored-events`` events stored, for a typical
    customer (10,000 events that month) and a heavy one (1,000,000 events that month).
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg

from tollway.meter.sql import PENDING_COUNT_SQL

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_by_role, cpu_share, drop_database, fresh_database, pg_url, start_server, summary

ENDPOINTS = ["/v1/forecast", "/v1/maps", "/v1/geocode", "/v1/alerts"]
MONTH_START = datetime(2026, 1, 1, tzinfo=UTC)
METERS = [
    {"key": "calls", "event_type": "api_call", "aggregation": "count", "group_by": ["endpoint"]},
    {
        "key": "ok_bytes",
        "event_type": "api_call",
        "aggregation": "sum",
        "value_property": "bytes",
        "filters": [{"property": "status", "op": "lt", "value": 500}],
    },
    {"key": "users", "event_type": "api_call", "aggregation": "unique_count", "value_property": "user"},
]


def make_events(n: int, prefix: str, customers: int = 1000) -> list[dict]:
    rnd = random.Random(42)
    out = []
    for i in range(n):
        # A live stream: events arrive in time order, 100 per second, from 1,000 customers.
        ts = MONTH_START + timedelta(milliseconds=10 * i)
        out.append(
            {
                "id": f"{prefix}-{i}",
                "customer": f"cust-{rnd.randrange(customers)}",
                "type": "api_call",
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "properties": {
                    "endpoint": rnd.choice(ENDPOINTS),
                    "method": "GET",
                    "status": rnd.choice((200, 200, 200, 201, 404, 500)),
                    "bytes": rnd.randrange(100, 20000),
                    "user": f"u-{rnd.randrange(5000)}",
                },
            }
        )
    return out


def bench_http(
    url: str, key: str, events: list[dict], batch: int, concurrency: int, client: str = "plain"
) -> tuple[float, int]:
    """Send the events in batches from ``concurrency`` threads, each on one kept-alive connection;
    every response must be 202 and its ``accepted`` counts. ``client``: ``plain`` is the
    standard library's ``http.client`` (about a tenth of a millisecond of CPU per request here),
    ``httpx`` the client the rows of BENCHMARKS.md before 2026-11-26 used (about half a
    millisecond): on this 2-core machine the load generator's CPU is taken from the server and
    PostgreSQL it measures."""
    bodies = [orjson.dumps({"events": events[i : i + batch]}) for i in range(0, len(events), batch)]
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    def send_httpx(chunk: list[bytes]) -> int:
        n = 0
        with httpx.Client(timeout=60) as session:
            for body in chunk:
                r = session.post(url + "/v1/events", content=body, headers=headers)
                r.raise_for_status()
                n += r.json()["accepted"]
        return n

    def send_plain(chunk: list[bytes]) -> int:
        where = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
        n = 0
        try:
            for body in chunk:
                conn.request("POST", "/v1/events", body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.status != 202:
                    raise RuntimeError(f"POST /v1/events answered {r.status}: {data[:300]!r}")
                n += orjson.loads(data)["accepted"]
        finally:
            conn.close()
        return n

    send_all = {"plain": send_plain, "httpx": send_httpx}[client]
    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        accepted = sum(pool.map(send_all, chunks))
    return time.perf_counter() - t0, accepted


def bench_raw_copy(db_url: str, events: list[dict], batch: int) -> float:
    """The ceiling: same rows, same dedup rule, straight from Python with COPY (no HTTP, no validation)."""
    conn = psycopg.connect(db_url)
    t0 = time.perf_counter()
    with conn:
        for i in range(0, len(events), batch):
            chunk = events[i : i + batch]
            now = datetime.now(UTC).replace(tzinfo=None)
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS raw_stage (id text, customer text, type text, "
                    "timestamp timestamp, ingested_at timestamp, properties jsonb) ON COMMIT DELETE ROWS"
                )
                with cur.copy("COPY raw_stage FROM STDIN") as cp:
                    for e in chunk:
                        cp.write_row(
                            (
                                e["id"],
                                e["customer"],
                                e["type"],
                                datetime.fromisoformat(e["timestamp"]).replace(tzinfo=None),
                                now,
                                orjson.dumps(e["properties"]).decode(),
                            )
                        )
                cur.execute(
                    "INSERT INTO events (id, customer, type, timestamp, ingested_at, properties) "
                    "SELECT * FROM raw_stage ON CONFLICT (id) DO NOTHING"
                )
            conn.commit()
    conn.close()
    return time.perf_counter() - t0


def load_stored_events(db_url: str, total: int) -> None:
    """Fill the store quickly with COPY: a heavy customer (1,000,000 events in January), a typical
    one (10,000 in January), and the rest spread over 2,000 customers and 12 months."""
    heavy, typical = min(1_000_000, total // 2), 10_000
    rest = max(0, total - heavy - typical)
    rnd = random.Random(7)
    ingested = datetime(2026, 1, 1).replace(tzinfo=None)
    t0 = time.perf_counter()
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY events (id, customer, type, timestamp, ingested_at, properties) FROM STDIN") as cp:

            def rows(customer: str, n: int, months: int) -> None:
                span = 31 * 86400 if months == 1 else 365 * 86400
                for _ in range(n):
                    ts = datetime(2026, 1, 1) + timedelta(seconds=rnd.randrange(span))
                    props = orjson.dumps(
                        {
                            "endpoint": ENDPOINTS[rnd.randrange(4)],
                            "status": 200 if rnd.random() < 0.9 else 500,
                            "bytes": rnd.randrange(100, 20000),
                            "user": f"u-{rnd.randrange(5000)}",
                        }
                    ).decode()
                    cp.write_row((uuid.uuid4().hex, customer, "api_call", ts, ingested, props))

            rows("heavy", heavy, 1)
            rows("typical", typical, 1)
            batch = 100_000
            for start in range(0, rest, batch):
                n = min(batch, rest - start)
                for _ in range(n // 1000):
                    rows(f"cust-{rnd.randrange(2000)}", 1000, 12)
        conn.commit()
        cur.execute("ANALYZE events")
        conn.commit()
    print(f"loaded {total:,} events with COPY in {time.perf_counter() - t0:.0f} s")


def bench_queries(url: str, key: str, customer: str, meter: str, repeats: int) -> list[float]:
    params = {"customer": customer, "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    out = []
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            r = client.get(f"{url}/v1/meters/{meter}/usage", params=params)
            out.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ingest-events", type=int, default=200_000, help="events sent per ingestion run")
    ap.add_argument("--stored-events", type=int, default=10_000_000)
    ap.add_argument("--concurrency", type=int, default=4, help="client threads sending batches")
    ap.add_argument(
        "--client",
        choices=("plain", "httpx"),
        default="plain",
        help="HTTP client of the load generator: plain (http.client; default) or httpx (rows before 2026-11-26)",
    )
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    ap.add_argument("--query-repeats", type=int, default=30)
    ap.add_argument("--meters", type=int, default=2, help="meters on the event type during ingestion (0-3)")
    ap.add_argument(
        "--no-worker",
        action="store_true",
        help="ingest with the server's worker off, then time one `tollway worker --once` rolling the backlog up",
    )
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the query database (tw_bench_query) for inspection")
    ap.add_argument("--reuse", action="store_true", help="time the queries on the database an earlier --keep run left")
    ap.add_argument("--skip-query", action="store_true")
    ap.add_argument(
        "--alerts",
        action="store_true",
        help="also time http-1000 with alerts configured (plan notifications + a custom alert for every "
        "customer, all 1,000 customers subscribed) in the same run",
    )
    ap.add_argument("--modes", help="comma-separated subset of the ingestion modes to run (default: all)")
    ap.add_argument("--db-prefix", default="tw_bench_ingest", help="name prefix of the scratch ingestion databases")
    args = ap.parse_args()

    if not args.skip_ingest:
        print(
            f"== ingestion: {args.ingest_events:,} events per run, {args.runs} runs, "
            f"{args.concurrency} client threads ({args.client}), {args.workers} server workers, {args.meters} meters"
        )
        results: dict[str, list[float]] = {"http-100": [], "http-1000": [], "raw-copy-1000": []}
        if args.alerts:
            results["http-1000-alerts"] = []
        if args.modes:
            results = {m: v for m, v in results.items() if m in args.modes.split(",")}
        drains: dict[str, list[tuple[int, float]]] = {mode: [] for mode in results}
        cpu: dict[str, str] = {}
        for run in range(args.runs):
            for mode in results:
                db = f"{args.db_prefix}_{mode.replace('-', '_')}"
                url = fresh_database(db)
                alerts_env = {"TOLLWAY_SECRET_KEY": "bench-secret-key-0123456789abcdef-0123456789"}
                server = start_server(
                    url, workers=args.workers, background_worker=not args.no_worker, extra_env=alerts_env
                )
                try:
                    key = server.key("ingest")
                    admin = {"Authorization": f"Bearer {server.key('admin')}"}
                    for body in METERS[: args.meters]:  # every stored batch also updates these rollups
                        httpx.post(server.url + "/v1/meters", headers=admin, json=body).raise_for_status()
                    if mode.endswith("-alerts"):
                        configure_alerts(server.url, admin)
                    events = make_events(args.ingest_events, f"r{run}")
                    if mode == "raw-copy-1000":
                        secs = bench_raw_copy(url, events, 1000)
                        stored = args.ingest_events
                    else:
                        cpu_before = cpu_by_role(server.proc.pid)
                        batch = int(mode.split("-")[1])
                        secs, stored = bench_http(server.url, key, events, batch, args.concurrency, args.client)
                        cpu[mode] = cpu_share(cpu_before, cpu_by_role(server.proc.pid), secs, stored)
                        # replay the first tenth: all duplicates, nothing stored twice
                        _, again = bench_http(server.url, key, events[: len(events) // 10], 1000, 1, args.client)
                        assert again == 0, again
                    with psycopg.connect(url, autocommit=True) as conn:
                        count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                        assert count == args.ingest_events == stored, (count, stored)
                        # The worker rolls the events up behind ingestion: how far behind was it?
                        t_drain = time.perf_counter()
                        backlog = conn.execute(PENDING_COUNT_SQL).fetchone()[0]
                        if args.no_worker and backlog:  # roll up the whole backlog alone, timed
                            server.cli("worker", "--once")
                        while conn.execute(PENDING_COUNT_SQL).fetchone()[0]:
                            time.sleep(0.1)
                        drains[mode].append((backlog, time.perf_counter() - t_drain))
                finally:
                    server.stop()
                    drop_database(db)
                rate = args.ingest_events / secs
                results[mode].append(rate)
                backlog, drain = drains[mode][-1]
                print(
                    f"run {run + 1} {mode:>14}: {rate:10,.0f} events/s  ({secs:.2f} s); "
                    f"rollup backlog at the end {backlog:,} events, drained in {drain:.1f} s"
                )
                if mode in cpu:
                    print(f"    CPU while sending: {cpu.pop(mode)}")
        ceiling = statistics.median(results["raw-copy-1000"]) if results.get("raw-copy-1000") else float("nan")
        for mode, rates in results.items():
            med = statistics.median(rates)
            print(f"median {mode:>14}: {med:10,.0f} events/s  = {med / ceiling:.2f} x raw COPY ceiling")
        if args.alerts:
            ratio = statistics.median(results["http-1000-alerts"]) / statistics.median(results["http-1000"])
            print(f"http-1000 with alerts / without: {ratio:.3f}")

    if not args.skip_query:
        print(f"== usage query: {args.stored_events:,} stored events")
        db = "tw_bench_query"
        url = pg_url(db) if args.reuse else fresh_database(db)
        server = start_server(url, workers=1)
        try:
            admin = server.key("admin")
            h = {"Authorization": f"Bearer {admin}"}
            if args.reuse:
                print("reusing the store, meters and rollups of an earlier --keep run")
            else:
                build_query_store(url, server.url, h, args.stored_events)
            for customer in ("typical", "heavy"):
                for meter in ("calls", "ok_bytes", "users"):
                    bench_queries(server.url, admin, customer, meter, 3)  # warm up
                    lat = bench_queries(server.url, admin, customer, meter, args.query_repeats)
                    print(f"{customer:>8} {meter:>9} one-month usage (ms): {summary(lat)}")
        finally:
            server.stop()
            if not (args.keep or args.reuse):
                drop_database(db)


def configure_alerts(server_url: str, admin: dict[str, str]) -> None:
    """Alerts on the ingested events: every customer of make_events() subscribed to a plan with
    notifications on ``calls`` (90/100/150 % of 1,000,000, so they are evaluated, not fired), plus
    a custom usage alert for every customer, and a webhook endpoint (no receiver needed)."""
    with httpx.Client(base_url=server_url, headers=admin, timeout=60) as c:
        if c.get("/v1/meters/calls").status_code == 404:
            c.post("/v1/meters", json=METERS[0]).raise_for_status()
        plan = {
            "code": "metered", "name": "Metered", "currency": "USD",
            "charges": [{"code": "calls", "meter": "calls", "model": "flat", "unit_price": "0.001"}],
            "notifications": {"meter": "calls", "target": 1_000_000, "thresholds": [90, 100, 150]},
        }  # fmt: skip
        c.post("/v1/plans", json=plan).raise_for_status()
        c.post("/v1/plans/metered/publish").raise_for_status()
        for i in range(1000):
            c.post("/v1/customers", json={"id": f"cust-{i}"}).raise_for_status()
            sub = {"id": f"sub-{i}", "customer": f"cust-{i}", "plan": "metered", "start": "2025-12-01T00:00:00Z"}
            for _ in range(50):  # main still commits after the response: the customer may not show yet
                r = c.post("/v1/subscriptions", json=sub)
                if r.status_code != 422:
                    break
                time.sleep(0.02)
            r.raise_for_status()
        alert = {"id": "big", "metric": "usage", "meter": "calls", "thresholds": ["1000000"]}
        c.post("/v1/alerts", json=alert).raise_for_status()
        hook = {"id": "ops", "url": "https://hooks.example.com/tw", "event_types": ["alert.triggered"]}
        c.post("/v1/webhook-endpoints", json=hook).raise_for_status()


def build_query_store(url: str, server_url: str, h: dict[str, str], stored_events: int) -> None:
    """Load the events with COPY, create the meters (the request returns at once; the server's
    worker builds their rollups from the stored events in the background: wait until ready) and
    bring statistics to a steady state."""
    load_stored_events(url, stored_events)
    for body in (
        {"key": "calls", "event_type": "api_call", "aggregation": "count"},
        {
            "key": "ok_bytes",
            "event_type": "api_call",
            "aggregation": "sum",
            "value_property": "bytes",
            "filters": [{"property": "status", "op": "lt", "value": 500}],
        },
        {"key": "users", "event_type": "api_call", "aggregation": "unique_count", "value_property": "user"},
    ):
        t0 = time.perf_counter()
        httpx.post(server_url + "/v1/meters", headers=h, json=body, timeout=3600).raise_for_status()
        secs = time.perf_counter() - t0
        while True:
            state = httpx.get(f"{server_url}/v1/meters/{body['key']}", headers=h, timeout=60).json()["rollups"]
            if state["status"] == "ready":
                break
            time.sleep(0.5)
        built = time.perf_counter() - t0
        print(
            f"created meter {body['key']}: request {secs * 1000:.0f} ms; rollups built in the background "
            f"from {stored_events:,} events in {built:.1f} s ({state['customers_built']} customers)"
        )
    # Steady state before timing: statistics and visibility maps as autovacuum would leave them
    # (otherwise its first pass over the fresh rollups runs during the measurements).
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE meter_rollups")
        conn.execute("VACUUM ANALYZE events")
        print(f"VACUUM ANALYZE of events and rollups: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
