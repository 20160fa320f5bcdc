"""Limits benchmarks, through a real ``tollway serve`` on PostgreSQL, with database counters and
with Redis counters (a Redis at 127.0.0.1:6379, under a key prefix of this run, removed after):

1. check latency: ``POST /v1/limits/check`` next to a plain authenticated read
   (``GET /v1/customers/{id}``) in the same run, interleaved, one connection;
2. ingestion throughput with 1,000 limited customers (counters kept) against 1,000 customers
   without limits (nothing counted), runs interleaved: over HTTP, and until the worker has rolled
   up (and, for limited customers, folded into the counters) every event of the run
   (no event pending; the server's rollup interval is 1 s here);
3. over-admission: 16 threads check-then-send at the edge of a limit;
4. the SDK's cached decision (in process, no server involved).

    .venv/bin/python bench/limits.py [--events 40000] [--checks 400] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg

from tollway.meter.sql import PENDING_COUNT_SQL

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_database, fresh_database, start_server

REDIS_URL = os.environ.get("TOLLWAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CUSTOMERS = 1000
LIMITS = [
    {"meter": "api_calls", "max": 1_000_000_000, "window": "day", "action": "block"},
    {"meter": "api_calls", "max": 1_000_000_000, "window": "period", "action": "block"},
    {"meter": "bytes", "max": "1000000000000000", "window": "hour", "action": "notify"},
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def post(api: httpx.Client, path: str, body: object = None) -> None:
    """POST until it succeeds (up to 5 s): on PostgreSQL a write's commit may still trail its
    response, so the next request that refers to it can arrive first."""
    deadline = time.monotonic() + 5
    while True:
        r = api.post(path, json=body)
        if r.status_code not in (404, 422) or time.monotonic() > deadline:
            r.raise_for_status()
            return
        time.sleep(0.02)


def setup(url: str, admin: str) -> None:
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url, headers=h, timeout=60) as api:
        meters = [
            {"key": "api_calls", "event_type": "api_call", "aggregation": "count",
             "filters": [{"property": "status", "op": "lt", "value": 500}]},
            {"key": "bytes", "event_type": "api_call", "aggregation": "sum", "value_property": "bytes"},
        ]  # fmt: skip
        for m in meters:
            post(api, "/v1/meters", m)
        charges = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.001"}]
        post(api, "/v1/plans", {"code": "capped", "currency": "USD", "charges": charges, "limits": LIMITS})
        post(api, "/v1/plans/capped/publish")
        edge = [{"meter": "api_calls", "max": 100, "window": "day", "action": "block"}]
        post(api, "/v1/plans", {"code": "edge", "currency": "USD", "charges": charges, "limits": edge})
        post(api, "/v1/plans/edge/publish")
        start = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        for i in range(CUSTOMERS):
            post(api, "/v1/customers", {"id": f"lim-{i}"})
            post(api, "/v1/customers", {"id": f"free-{i}"})
            sub = {"id": f"s-{i}", "customer": f"lim-{i}", "plan": "capped", "start": start}
            post(api, "/v1/subscriptions", sub)


def seed_all(url: str, key: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as gw:
        for i in range(CUSTOMERS):
            gw.post("/v1/limits/check", json={"customer": f"lim-{i}"}).raise_for_status()


def latency(url: str, admin: str, ingest: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"read": [], "check": [], "check (no subscription)": []}
    with httpx.Client(base_url=url, timeout=30) as http:
        a = {"Authorization": f"Bearer {admin}"}
        g = {"Authorization": f"Bearer {ingest}"}
        for i in range(n):
            c = i % CUSTOMERS
            for name, call in (
                ("read", lambda c=c: http.get(f"/v1/customers/lim-{c}", headers=a)),
                ("check", lambda c=c: http.post("/v1/limits/check", json={"customer": f"lim-{c}"}, headers=g)),
                (
                    "check (no subscription)",
                    lambda c=c: http.post("/v1/limits/check", json={"customer": f"free-{c}"}, headers=g),
                ),
            ):
                t0 = time.perf_counter()
                r = call()
                out[name].append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
    return out


def events(prefix: str, n: int, customers: str) -> list[bytes]:
    now = datetime.now(UTC)
    batch: list[dict[str, object]] = []
    bodies = []
    for i in range(n):
        batch.append(
            {
                "id": f"{prefix}-{i}",
                "customer": f"{customers}-{i % CUSTOMERS}",
                "type": "api_call",
                "timestamp": (now - timedelta(milliseconds=n - i)).isoformat(),
                "properties": {"status": 200 if i % 7 else 503, "bytes": 100 + i % 5000},
            }
        )
        if len(batch) == 500:
            bodies.append(orjson.dumps({"events": batch}))
            batch = []
    if batch:
        bodies.append(orjson.dumps({"events": batch}))
    return bodies


def ingest(url: str, key: str, bodies: list[bytes], db_url: str, concurrency: int = 4) -> tuple[float, float]:
    """Events/s over HTTP, and until no event of the run is left pending for the worker."""
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(timeout=120) as client:
            for body in chunk:
                client.post(url + "/v1/events", content=body, headers=headers).raise_for_status()

    total = sum(len(orjson.loads(b)["events"]) for b in bodies)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, [bodies[i::concurrency] for i in range(concurrency)]))
    sent = time.perf_counter() - t0
    with psycopg.connect(db_url, autocommit=True) as conn:
        while conn.execute(PENDING_COUNT_SQL).fetchone() != (0,):
            time.sleep(0.05)
    return total / sent, total / (time.perf_counter() - t0)


def latency_while_ingesting(
    url: str, admin: str, ingest_key: str, db_url: str, n: int
) -> tuple[dict[str, list[float]], float]:
    """Reads and checks of limited customers, interleaved on one connection, while 4 threads
    ingest ``n`` events of the limited customers (checks then also read pending events)."""
    out: dict[str, list[float]] = {"read": [], "check": []}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(ingest, url, ingest_key, events(f"during-{uuid.uuid4().hex[:6]}", n, "lim"), db_url)
        with httpx.Client(base_url=url, timeout=30) as http:
            a = {"Authorization": f"Bearer {admin}"}
            g = {"Authorization": f"Bearer {ingest_key}"}
            i = 0
            while not running.done():
                c = i % CUSTOMERS
                for name, call in (
                    ("read", lambda c=c: http.get(f"/v1/customers/lim-{c}", headers=a)),
                    ("check", lambda c=c: http.post("/v1/limits/check", json={"customer": f"lim-{c}"}, headers=g)),
                ):
                    t0 = time.perf_counter()
                    call().raise_for_status()
                    out[name].append((time.perf_counter() - t0) * 1000)
                i += 1
        return out, running.result()[0]


def over_admission(url: str, admin: str, ingest_key: str, customer: str, callers: int = 16) -> int:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as api:
        post(api, "/v1/customers", {"id": customer})
        post(api, "/v1/subscriptions", {"id": f"s-{customer}", "customer": customer, "plan": "edge"})
    admitted = 0
    lock = threading.Lock()

    def caller(n: int) -> None:
        nonlocal admitted
        h = {"Authorization": f"Bearer {ingest_key}"}
        with httpx.Client(base_url=url, headers=h, timeout=30) as gw:
            for i in range(1000):
                decision = gw.post("/v1/limits/check", json={"customer": customer}).json()
                if not decision["allowed"]:
                    return
                gw.post("/v1/events", json={"id": f"{customer}-{n}-{i}", "customer": customer, "type": "api_call",
                                            "properties": {"status": 200}}).raise_for_status()  # fmt: skip
                with lock:
                    admitted += 1

    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(caller, range(callers)))
    return admitted - 100


def sdk_cached_decision(repeats: int = 200_000) -> tuple[float, float]:
    from tollway_sdk.limits import LimitChecker

    def answer(request: httpx.Request) -> httpx.Response:  # a stand-in server: no network in the figure
        customer = orjson.loads(request.content)["customer"]
        limits = [{"meter": "m", "action": "block", "remaining": "5"}] if customer == "acme" else []
        return httpx.Response(200, json={"allowed": True, "reason": None, "limits": limits})

    checker = LimitChecker("http://127.0.0.1:9", "tw_none", transport=httpx.MockTransport(answer))
    assert checker.decide("acme").limits and checker.decide("free").unlimited  # cached from here on
    out = []
    for customer in ("acme", "free"):
        t0 = time.perf_counter()
        for _ in range(repeats):
            checker.decide(customer)
        out.append((time.perf_counter() - t0) / repeats * 1e9)
    checker.close()
    return out[0], out[1]


def run(mode: str, args: argparse.Namespace) -> None:
    name = f"tw_bench_limits_{mode}"
    db_url = fresh_database(name)
    prefix = f"twbench-{uuid.uuid4().hex[:8]}"
    extra = {"TOLLWAY_REDIS_URL": REDIS_URL, "TOLLWAY_REDIS_PREFIX": prefix} if mode == "redis" else {}
    os.environ.update(extra)
    try:
        server = start_server(db_url, background_worker=True, extra_env={"TOLLWAY_ROLLUP_INTERVAL_SECONDS": "1"})
        admin, ingest_key = server.key("admin"), server.key("ingest")
        setup(server.url, admin)
        seed_all(server.url, ingest_key)
        lat = latency(server.url, admin, ingest_key, args.checks)
        read50 = statistics.median(lat["read"])
        print(f"[{mode}] latency over {args.checks} requests each (ms):")
        for k, v in lat.items():
            p50 = statistics.median(v)
            print(f"  {k:24s} p50 {p50:6.2f}  p99 {pct(v, 0.99):6.2f}  ratio p50 vs read {p50 / read50:.2f}")
        rates: dict[str, list[tuple[float, float]]] = {"none": [], "limited": []}
        for r in range(args.runs):
            for kind, who in (("none", "free"), ("limited", "lim")):
                bodies = events(f"{mode}-{kind}-{r}", args.events, who)
                rates[kind].append(ingest(server.url, ingest_key, bodies, db_url))
        for i, what in ((0, "over HTTP"), (1, "until rolled up and folded")):
            none_runs, limited_runs = ([x[i] for x in rates[k]] for k in ("none", "limited"))
            none, limited = statistics.median(none_runs), statistics.median(limited_runs)
            print(
                f"[{mode}] ingestion events/s {what}, median of {args.runs} interleaved runs of {args.events}: "
                f"no limits {none:.0f}, 1,000 limited customers {limited:.0f}, ratio {limited / none:.2f} "
                f"(runs: none {[round(x) for x in none_runs]}, limited {[round(x) for x in limited_runs]})"
            )
        during, rate = latency_while_ingesting(server.url, admin, ingest_key, db_url, args.events)
        read50 = statistics.median(during["read"])
        print(f"[{mode}] latency while 4 threads ingest {args.events} events of the limited customers ({rate:.0f}/s):")
        for k, v in during.items():
            p50 = statistics.median(v)
            ratio = p50 / read50
            print(f"  {k:24s} p50 {p50:6.2f}  p99 {pct(v, 0.99):6.2f}  ratio p50 vs read {ratio:.2f}  n={len(v)}")
        overs = [over_admission(server.url, admin, ingest_key, f"edge-{mode}-{r}") for r in range(args.runs)]
        print(f"[{mode}] over-admission past max=100 with 16 concurrent check-then-send callers: {overs}")
        server.stop()
    finally:
        for k in extra:
            os.environ.pop(k, None)
        drop_database(name)
        if mode == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(match=f"{prefix}|*", count=1000):
                client.delete(key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=40_000, help="events per ingestion run")
    ap.add_argument("--checks", type=int, default=400, help="requests of each kind for the latency figures")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", choices=["database", "redis", "both"], default="both")
    ap.add_argument("--customers", type=int, default=CUSTOMERS, help="limited customers (and as many without)")
    args = ap.parse_args()
    globals()["CUSTOMERS"] = args.customers
    limited, free = sdk_cached_decision()
    print(f"SDK cached decision: {limited:.0f} ns (customer with limits), {free:.0f} ns (customer without)")
    for mode in ("database", "redis") if args.mode == "both" else (args.mode,):
        run(mode, args)


if __name__ == "__main__":
    main()
