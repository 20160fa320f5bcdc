"""The event store's insert alone on PostgreSQL: CPU of the database backend that runs it, per event.

    .venv/bin/python bench/store.py                          # 300,000 stored first, 200,000 timed, batches of 1000
    .venv/bin/python bench/store.py --batch 100 --rounds 3
    .venv/bin/python bench/store.py --sql "DROP INDEX ix_events_timestamp"      # what an index costs
    .venv/bin/python bench/store.py --interleave --events 400000  # plain INSERT vs ON CONFLICT, batch by batch

Creates the first ``--meters`` meters of ``bench/ingest.py`` through a server (so the stored events
are metered and carry their ``tx``, as in production), stores ``--stored`` events of
``ingest.make_events`` with ``SqlEventStore`` on one connection, then times ``--events`` more in
batches of ``--batch`` and reports that backend's CPU (``/proc/<pid>/stat``, user + system: not
disturbed by other processes on a shared machine) and the wall time, per event. No HTTP, no
worker: what ``bench/ingest.py`` measures minus the server, the client and the fold
(``bench/fold.py``). ``--sql`` statements (a schema experiment: drop an index, change a column)
run after the first part, before the timed one. Each ``--rounds`` builds a fresh database
(``--db``). ``--interleave`` times the store's two statements, the plain ``INSERT`` it sends first
and the ``INSERT … ON CONFLICT (id) DO NOTHING`` it falls back to, on alternate batches of the
same backend (so a busy stretch of a shared machine weighs on both alike), each batch new ids.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import drop_database
from fold import backend_cpu, incoming, metered_database

from tollway.db import make_engine, pooled_driver_connection
from tollway.event import store as event_store
from tollway.event.store import SqlEventStore


def timed_store(store: SqlEventStore, pid: int, n: int, batch: int) -> str:
    """The store's own path: backend CPU and wall time per event."""
    timed = incoming(n, "timed")
    cpu0, t0 = backend_cpu(pid), time.perf_counter()
    for i in range(0, n, batch):
        store.store(timed[i : i + batch], datetime.now(UTC))
    cpu, wall = backend_cpu(pid) - cpu0, time.perf_counter() - t0
    return f"backend CPU {1e6 * cpu / n:.2f} us/event, wall {1e6 * wall / n:.2f} us/event"


def interleave(store: SqlEventStore, pid: int, n: int, batch: int) -> str:
    """Backend CPU per event of each of the store's two statements, alternating batch by batch."""
    statements = {"plain INSERT": store._insert_sql, "ON CONFLICT DO NOTHING": store._insert_skipping_sql}
    cpu = dict.fromkeys(statements, 0.0)
    count = dict.fromkeys(statements, 0)
    timed = incoming(n, "timed")
    names = list(statements)
    for j, i in enumerate(range(0, n, batch)):
        name = names[j % 2]
        events = timed[i : i + batch]
        params = store._params(events)
        with pooled_driver_connection(store.engine) as driver:
            before = backend_cpu(pid)
            event_store._insert(driver, statements[name], params)
            cpu[name] += backend_cpu(pid) - before
        count[name] += len(events)
    shown = ", ".join(f"{name} {1e6 * cpu[name] / count[name]:.2f}" for name in names)
    return f"backend CPU us/event, alternate batches: {shown}"


Measure = Callable[[SqlEventStore, int, int, int], str]


def run(db: str, meters: int, stored: int, n: int, batch: int, sql: list[str], measure: Measure) -> str:
    url = metered_database(db, meters)
    # One pooled connection: every batch is stored by the same backend.
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=1, max_overflow=0)
    try:
        store = SqlEventStore(engine)
        first = incoming(stored, "stored")
        for i in range(0, stored, 1000):
            store.store(first[i : i + 1000], datetime.now(UTC))
        with engine.connect() as conn:
            for statement in sql:
                conn.execute(text(statement))
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
        return measure(store, pid, n, batch)
    finally:
        engine.dispose()
        drop_database(db)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=2, help="meters of bench/ingest.py (0-3)")
    ap.add_argument("--stored", type=int, default=300_000, help="events stored before the timed part")
    ap.add_argument("--events", type=int, default=200_000, help="events timed")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--sql", action="append", default=[], help="a statement run before the timed part (repeatable)")
    ap.add_argument("--db", default="tw_bench_store", help="scratch database (dropped and created again)")
    ap.add_argument(
        "--interleave", action="store_true", help="time the plain INSERT and ON CONFLICT on alternate batches"
    )
    args = ap.parse_args()
    schema = "".join(f" [{q}]" for q in args.sql)
    measure = interleave if args.interleave else timed_store
    for _ in range(args.rounds):
        shown = run(args.db, args.meters, args.stored, args.events, args.batch, args.sql, measure)
        print(
            f"meters={args.meters} batch={args.batch}{schema}: {args.events:,} events after {args.stored:,}, {shown}",
            flush=True,
        )

if __name__ == "__main__":
    main()
