"""Ingest-to-webhook latency of usage alerts, through the real server, against PostgreSQL.

    .venv/bin/python bench/alerts_latency.py                  # 1,000 customers
    .venv/bin/python bench/alerts_latency.py --customers 200  # quicker
    .venv/bin/python bench/alerts_latency.py --worker-processes 1  # and one `tollway worker` more

1,000 customers on a plan whose notification fires at 100 % of a 100-call target, and a webhook
endpoint for ``alert.triggered`` on a local receiver. Each customer then sends one batch of 100
calls (crossing the threshold); the latency of a customer is the time from the 202 of its batch
to the arrival of its signed ``alert.triggered`` webhook at the receiver. The contract's bound is
15 s. The worker runs inside ``tollway serve`` with its defaults (rollups every 5 s, outbox
polled every 0.5 s as bench/_common.py sets it), so the figure includes those intervals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, free_port, fresh_database, start_server, summary

SECRET_KEY = "bench-secret-key-0123456789abcdef-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self.secret = ""
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                at = time.time()
                payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                customer = payload["data"]["customer"]
                if customer in receiver.arrivals:
                    receiver.duplicates += 1
                else:
                    receiver.arrivals[customer] = at
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def breakdown(url: str) -> None:
    """Where the time goes, from the database: stored -> fired (rollup + evaluation), fired ->
    delivered (outbox fan-out + the POST), per customer."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT EXTRACT(EPOCH FROM a.fired_at - min(e.ingested_at)), "
            "EXTRACT(EPOCH FROM max(d.delivered_at) - a.fired_at) "
            "FROM alert_events a JOIN events e ON e.customer = a.customer_id "
            "JOIN outbox o ON o.topic = 'alert.triggered' AND o.payload->>'customer' = a.customer_id "
            "JOIN webhook_deliveries d ON d.message_id = o.id GROUP BY a.id, a.fired_at"
        ).fetchall()
    if rows:
        print(f"  stored -> fired (s):    {summary([float(r[0]) for r in rows])}")
        done = [float(r[1]) for r in rows if r[1] is not None]
    print(f"  fired -> delivered (s): {summary(done) if done else 'none recorded yet'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4, help="client threads sending batches")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="extra `tollway worker` processes beside the server's own worker (they share the alert queue)",
    )
    ap.add_argument("--database", default="tw_bench_alerts", help="scratch PostgreSQL database (dropped after)")
    args = ap.parse_args()

    receiver = Receiver()
    db = args.database
    url = fresh_database(db)
    server = start_server(
        url, extra_env={"TOLLWAY_SECRET_KEY": SECRET_KEY, "TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tollway", "worker"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.worker_processes)
    ]
    try:
        admin = {"Authorization": f"Bearer {server.key('admin')}"}
        ingest = {"Authorization": f"Bearer {server.key('ingest')}"}
        with httpx.Client(base_url=server.url, headers=admin, timeout=60) as c:
            meter = {"key": "calls", "event_type": "api_call", "aggregation": "count"}
            c.post("/v1/meters", json=meter).raise_for_status()
            plan = {
                "code": "pro", "name": "Pro", "currency": "USD",
                "charges": [{"code": "calls", "meter": "calls", "model": "flat", "unit_price": "0.001"}],
                "notifications": {"meter": "calls", "target": 100, "thresholds": [100]},
            }  # fmt: skip
            c.post("/v1/plans", json=plan).raise_for_status()
            c.post("/v1/plans/pro/publish").raise_for_status()
            hook = f"http://127.0.0.1:{receiver.port}/hook"
            r = c.post("/v1/webhook-endpoints", json={"id": "bench", "url": hook, "event_types": ["alert.triggered"]})
            r.raise_for_status()
            receiver.secret = r.json()["secret"]
            start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
            for i in range(args.customers):
                c.post("/v1/customers", json={"id": f"c{i}"}).raise_for_status()
                sub = {"id": f"s{i}", "customer": f"c{i}", "plan": "pro", "start": start}
                for _ in range(50):  # main still commits after the response: the customer may not show yet
                    r = c.post("/v1/subscriptions", json=sub)
                    if r.status_code != 422:
                        break
                    time.sleep(0.02)
                r.raise_for_status()
        time.sleep(3)  # let the worker fan out and deliver the setup's own messages (none are alerts)
        print(f"== {args.customers} customers, one batch of 100 calls each crossing 100 % of the target")
        accepted_at: dict[str, float] = {}
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")

        def send(i: int) -> None:
            body = {"events": [{"id": f"c{i}-{j}", "customer": f"c{i}", "type": "api_call", "timestamp": now}
                               for j in range(100)]}  # fmt: skip
            with httpx.Client(timeout=60) as client:
                r = client.post(server.url + "/v1/events", json=body, headers=ingest)
                accepted_at[f"c{i}"] = time.time()
                assert r.status_code == 202 and r.json()["accepted"] == 100, r.text

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(send, range(args.customers)))
        sent = time.perf_counter() - t0
        deadline = time.monotonic() + args.timeout
        while len(receiver.arrivals) < args.customers and time.monotonic() < deadline:
            time.sleep(0.1)
        missing = args.customers - len(receiver.arrivals)
        lat = [receiver.arrivals[c] - accepted_at[c] for c in accepted_at if c in receiver.arrivals]
        print(f"sent {args.customers} batches in {sent:.1f} s ({args.customers * 100 / sent:,.0f} events/s)")
        print(f"ingest-to-webhook latency (s): {summary(lat)}")
        print(f"webhooks missing after {args.timeout:.0f} s: {missing}; duplicates: {receiver.duplicates}")
        print(f"within 15 s: {sum(1 for x in lat if x <= 15) / max(len(lat), 1):.1%}")
        breakdown(url)
        print(json.dumps({"p50": sorted(lat)[len(lat) // 2] if lat else None, "missing": missing}))
    finally:
        for proc in workers:
            proc.terminate()
            proc.wait(timeout=30)
        server.stop()
        receiver.server.shutdown()
        drop_database(db)


if __name__ == "__main__":
    main()
