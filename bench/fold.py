"""The worker's fold (``fold.apply_pending``) alone on PostgreSQL: CPU of the database backend
that runs it, per event.

    .venv/bin/python bench/fold.py                      # 2 meters, 200,000 events, tables analyzed
    .venv/bin/python bench/fold.py --meters 3 --no-analyze

Creates the first ``--meters`` meters of ``bench/ingest.py`` through a server, stores ``--events``
events of ``ingest.make_events`` with the event store (4 threads, batches of 1000; the worker is
not running, so they all stay pending), optionally ``ANALYZE`` s every table, then folds them in
batches of ``--limit`` on one connection and reports that backend's CPU (``/proc/<pid>/stat``,
user + system) and the wall time. The backend's own CPU is not disturbed by other processes on a
shared machine (waiting for a core is not counted), unlike the CPU of every PostgreSQL process.
Each ``--rounds`` builds a fresh database (``--db``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest
from _common import drop_database, fresh_database, start_server

from tollway.db import make_engine
from tollway.event.ingest import IncomingEvent
from tollway.event.store import SqlEventStore
from tollway.meter import fold
from tollway.worker import ROLLUP_BATCH


def metered_database(db: str, meters: int) -> str:
    """A fresh database ``db`` (its URL) with the first ``meters`` meters of ``bench/ingest.py``,
    created through a server as users do."""
    url = fresh_database(db)
    server = start_server(url, workers=1, background_worker=False)
    admin = {"Authorization": f"Bearer {server.key('admin')}"}
    for body in ingest.METERS[:meters]:
        httpx.post(server.url + "/v1/meters", headers=admin, json=body).raise_for_status()
    server.stop()
    return url


def incoming(n: int, prefix: str) -> list[IncomingEvent]:
    """``n`` events of ``ingest.make_events`` as the event store takes them."""
    return [
        IncomingEvent(e["id"], e["customer"], e["type"], datetime.fromisoformat(e["timestamp"]), e["properties"])
        for e in ingest.make_events(n, prefix)
    ]


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a local process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(db: str, meters: int, n: int, limit: int, analyze: bool) -> tuple[int, float, float]:
    url = metered_database(db, meters)
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=6)
    try:
        store = SqlEventStore(engine)
        events = incoming(n, "f")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: store.store(events[i : i + 1000], datetime.now(UTC)), range(0, n, 1000)))
        with engine.connect() as conn:
            if analyze:
                conn.execute(text("COMMIT"))
                conn.execute(text("ANALYZE"))
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
            cpu0, t0, folded = backend_cpu(pid), time.perf_counter(), 0
            while True:
                with conn.begin():
                    k = fold.apply_pending(conn, limit=limit)
                if not k:
                    break
                folded += k
            return folded, backend_cpu(pid) - cpu0, time.perf_counter() - t0
    finally:
        engine.dispose()
        drop_database(db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=2, help="meters of bench/ingest.py (1-3)")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument(
        "--limit", type=int, default=ROLLUP_BATCH, help="events per fold (default: the worker's batch on PostgreSQL)"
    )
    ap.add_argument("--no-analyze", action="store_true", help="fold without ANALYZE after loading")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--db", default="tw_bench_fold", help="scratch database (dropped and created again)")
    args = ap.parse_args()
    for _ in range(args.rounds):
        folded, cpu, wall = run(args.db, args.meters, args.events, args.limit, not args.no_analyze)
        print(
            f"meters={args.meters} analyze={not args.no_analyze}: folded {folded:,} events, "
            f"backend CPU {cpu:.2f} s = {1e6 * cpu / folded:.2f} us/event, wall {wall:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
