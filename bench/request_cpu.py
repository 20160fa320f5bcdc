"""The server's CPU per request, through a real ``tollway serve`` on PostgreSQL.

    .venv/bin/python bench/request_cpu.py                       # healthz, 1-event and 100-event batches
    .venv/bin/python bench/request_cpu.py --modes events-100 --seconds 10 --rounds 3
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/request_cpu.py   # the same for other code

One server process (``--workers 1``), its in-process worker off, 2 client threads on kept-alive
connections (the standard library's ``http.client``) sending for ``--seconds`` per mode; every
answer must be 200/202. Reported per request: the server's CPU (user + system from ``/proc``, so
other load on a shared machine does not count, though it slows everything) and PostgreSQL's.
Modes: ``healthz`` (no key, no database: the HTTP stack and the routing), ``events-1`` (the
key look-up and a batch of one event stored: the per-request cost of ingestion),
``events-100`` (a batch of 100 events, each batch new ids).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_by_role, drop_database, fresh_database, start_server
from ingest import METERS

MODES = ("healthz", "events-1", "events-100")


def _cpu(server_pid: int) -> tuple[float, float]:
    """CPU seconds so far of the server (and its children) and of PostgreSQL's processes."""
    roles = cpu_by_role(server_pid)
    return roles["tollway server"], roles["postgresql"]


def _send(port: int, mode: str, key: str, stop: float, tag: str, counts: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    sent = 0
    try:
        while time.monotonic() < stop:
            if mode == "healthz":
                conn.request("GET", "/healthz")
            else:
                size = int(mode.split("-")[1])
                events = [
                    {
                        "id": f"{tag}-{sent}-{j}",
                        "customer": f"cust-{j % 10}",
                        "type": "api_call",
                        "timestamp": "2026-01-01T00:00:00Z",
                        "properties": {"endpoint": "/v1/maps", "status": 200, "bytes": 1200, "user": f"u-{j}"},
                    }
                    for j in range(size)
                ]
                conn.request("POST", "/v1/events", body=orjson.dumps({"events": events}), headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status not in (200, 202):
                raise RuntimeError(f"{mode}: answered {response.status}: {body[:300]!r}")
            sent += 1
    finally:
        conn.close()
    counts.append(sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--seconds", type=float, default=8.0, help="sending time per mode and round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--clients", type=int, default=2, help="client threads")
    ap.add_argument("--db", default="tw_bench_request_cpu")
    args = ap.parse_args()
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"unknown modes: {', '.join(sorted(unknown))}")

    url = fresh_database(args.db)
    server = start_server(url, workers=1, background_worker=False)
    try:
        key = server.key("ingest")
        admin = {"Authorization": f"Bearer {server.key('admin')}"}
        for body in METERS[:2]:  # the stored events are metered, as in bench/ingest.py
            httpx.post(server.url + "/v1/meters", headers=admin, json=body).raise_for_status()
        port = int(server.url.rsplit(":", 1)[1])
        for round_ in range(args.rounds):
            for mode in modes:
                counts: list[int] = []
                stop = time.monotonic() + args.seconds
                cpu0, t0 = _cpu(server.proc.pid), time.perf_counter()
                threads = [
                    threading.Thread(target=_send, args=(port, mode, key, stop, f"r{round_}c{c}", counts))
                    for c in range(args.clients)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                cpu1, wall = _cpu(server.proc.pid), time.perf_counter() - t0
                if len(counts) != args.clients:
                    raise SystemExit(f"{mode}: a client thread failed")
                n = sum(counts)
                print(
                    f"round {round_ + 1} {mode:>10}: {n / wall:7,.0f} requests/s; per request: "
                    f"server {1000 * (cpu1[0] - cpu0[0]) / n:.3f} ms CPU, "
                    f"PostgreSQL {1000 * (cpu1[1] - cpu0[1]) / n:.3f} ms CPU",
                    flush=True,
                )
    finally:
        server.stop()
        drop_database(args.db)


if __name__ == "__main__":
    main()
