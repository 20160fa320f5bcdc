"""What looking the API key up on every request costs (no cache, so a revocation holds at once).

    .venv/bin/python bench/key_lookup.py --baseline-src /tmp/tollway-before/src

(a) In process, per backend: one key look-up as the gate does it (a pooled connection, one
    indexed SELECT by the key's hash) against a hit in an in-memory dict (what the removed 10 s cache did).
(b) Through a real ``tollway serve`` on PostgreSQL, sequential requests from one client: a
    single-event ``POST /v1/events`` and a ``GET /v1/customers/{id}``, for the baseline tree
    (which cached keys for 10 s) and this checkout (which looks the key up each time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import drop_database, fresh_database, start_server, summary


def in_process(url: str, n: int) -> tuple[float, float]:
    from tollway.auth.keys import create_key, hash_key, lookup_key
    from tollway.db import make_engine, make_sessionmaker, session_scope
    from tollway.migrations.runner import upgrade

    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        for _ in range(200):  # a realistic table: a few hundred keys
            create_key(session, scope="ingest")
        _, secret = create_key(session, scope="admin")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assert lookup_key(engine, secret) is not None  # as auth.dependencies.authenticate does
        times.append(time.perf_counter() - t)
    cache = {hash_key(secret): object()}
    hits = []
    for _ in range(n):
        t = time.perf_counter()
        assert cache.get(hash_key(secret)) is not None
        hits.append(time.perf_counter() - t)
    engine.dispose()
    return statistics.median(times) * 1e6, statistics.median(hits) * 1e6


def through_server(src: str | None, n: int) -> dict[str, list[float]]:
    os.environ["PYTHONPATH"] = src or ""
    name = f"tw_bench_keys_{uuid.uuid4().hex[:8]}"
    server = start_server(fresh_database(name), background_worker=False)
    try:
        admin = {"Authorization": f"Bearer {server.key('admin')}"}
        ingest = {"Authorization": f"Bearer {server.key('ingest')}"}
        out: dict[str, list[float]] = {"POST /v1/events (1 event)": [], "GET /v1/customers/{id}": []}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/customers", json={"id": "c", "currency": "USD"}, headers=admin).status_code == 201
            for i in range(n + 50):
                t = time.perf_counter()
                r = client.post("/v1/events", json={"id": f"e{i}", "customer": "c", "type": "t"}, headers=ingest)
                ms = (time.perf_counter() - t) * 1000
                assert r.status_code == 202
                if i >= 50:  # after warm-up
                    out["POST /v1/events (1 event)"].append(ms)
                t = time.perf_counter()
                assert client.get("/v1/customers/c", headers=admin).status_code == 200
                if i >= 50:
                    out["GET /v1/customers/{id}"].append((time.perf_counter() - t) * 1000)
        return out
    finally:
        server.stop()
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-src", help="src/ directory of the baseline tree (cached keys)")
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("sqlite", f"sqlite:///{tmp}/keys.db"), ("postgresql", _scratch_pg())):
            lookup_us, hit_us = in_process(url, args.n)
            print(f"(a) {label:<10} look-up per request: median {lookup_us:.0f} µs; cache hit: {hit_us:.1f} µs")
    trees = ([("before (10 s key cache)", args.baseline_src)] if args.baseline_src else []) + [
        ("after (look-up each request)", str(Path(__file__).parent.parent / "src"))
    ]
    results = {label: through_server(src, args.n) for label, src in trees}
    for label, series in results.items():
        for what, values in series.items():
            print(f"(b) {label:<30} {what:<28} ms: {summary(values)}")


_PG_NAME = f"tw_bench_lookup_{uuid.uuid4().hex[:8]}"


def _scratch_pg() -> str:
    return fresh_database(_PG_NAME)


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database(_PG_NAME)
