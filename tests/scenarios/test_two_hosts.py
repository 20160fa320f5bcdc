"""Two hosts on one PostgreSQL, through real processes: two ``tollway serve`` (their in-process
worker off) and two ``tollway worker``. Events go in through both servers at once, the same ids
through both; both workers roll up; then four billing runs at once (two ``tollway worker --once``
and ``POST /v1/billing/run`` on each server). Every event is stored once, the rollups hold each
once, each subscription period has one invoice, numbers have no gap, and every total is the
price of the events."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import LiveServer, start_server, stop_server
from tests.factories import create_customer, create_meter, create_plan, subscribe
from tollway.db import make_engine
from tollway.event.backend import SqlEventBackend
from tollway.meter.definition import MeterDefinition
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.worker import AS_OF_LAG

pytestmark = pytest.mark.e2e

CUSTOMERS = 12
PER_CUSTOMER = 400  # events per customer, over January to March 2026
PRICE = Decimal("0.25")  # per call
HOST_ENV = {"TOLLWAY_RUN_WORKER_IN_SERVE": "false"}
WORKER_ENV = {
    "TOLLWAY_BILLING_RUN_INTERVAL_SECONDS": "0",  # billing is started below, all runs at once
    "TOLLWAY_ROLLUP_INTERVAL_SECONDS": "0.2",
    "TOLLWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
}


def _event(c: int, i: int) -> dict[str, Any]:
    month, rest = 1 + i % 3, i // 3
    ts = f"2026-{month:02d}-{1 + rest % 28:02d}T{rest % 24:02d}:{(7 * i) % 60:02d}:{i % 60:02d}Z"
    return {"id": f"c{c}-{i}", "customer": f"c{c}", "type": "api_call", "timestamp": ts, "properties": {"bytes": i}}


def _start_worker(db_url: str, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"tollway-worker-{os.getpid()}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollway", "worker", *args],
            env={**os.environ, "TOLLWAY_DATABASE_URL": db_url, **env},
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return proc, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ingest(servers: list[LiveServer], keys: list[str], events: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Batches of 100 through both servers from two threads each; every batch goes to both
    servers (so every id arrives twice, through different hosts, at about the same time)."""
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []
    batches = [events[i : i + 100] for i in range(0, len(events), 100)]

    def send(server: LiveServer, key: str, mine: list[list[dict[str, Any]]]) -> None:
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
                for batch in mine:
                    r = c.post("/v1/events", json={"events": batch})
                    assert r.status_code == 202, r.text
                    assert r.json()["errors"] == [], r.text
                    results.append({"accepted": r.json()["accepted"], "duplicates": r.json()["duplicates"]})
        except BaseException as exc:
            errors.append(exc)

    threads = []
    for s, (server, key) in enumerate(zip(servers, keys, strict=True)):
        order = batches if s == 0 else batches[::-1]  # the two hosts meet in the middle
        for t in range(2):
            threads.append(threading.Thread(target=send, args=(server, key, order[t::2])))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_two_servers_and_two_workers_ingest_and_bill_once(backend: str, db_url: str, api) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("several hosts share PostgreSQL only (SQLite is one process on one host)")
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="bytes", event_type="api_call", aggregation="sum", value_property="bytes")
    tiers = [{"up_to": None, "unit_price": str(PRICE)}]
    create_plan(
        api,
        code="pro",
        charges=[{"code": "calls", "meter": "api_calls", "model": "graduated", "tiers": tiers}],
        publish=True,
    )
    for c in range(CUSTOMERS):
        create_customer(api, id=f"c{c}")
        subscribe(api, id=f"s{c}", customer=f"c{c}", plan="pro", start="2026-01-01T00:00:00Z")

    servers: list[LiveServer] = []
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    once: list[tuple[subprocess.Popen[bytes], Path]] = []
    engine = make_engine(db_url)
    try:  # every process started is stopped, also when a later one fails to start
        for _ in range(2):
            servers.append(start_server(db_url, extra_env=HOST_ENV))
        for _ in range(2):
            workers.append(_start_worker(db_url, **WORKER_ENV))
        keys = [server.key("ingest") for server in servers]
        events = [_event(c, i) for c in range(CUSTOMERS) for i in range(PER_CUSTOMER)]
        results = _ingest(servers, keys, events)
        ingested = time.monotonic()
        # Every id went in twice: stored once, the other time reported as a duplicate.
        assert sum(r["accepted"] for r in results) == len(events)
        assert sum(r["duplicates"] for r in results) == len(events)

        deadline = time.monotonic() + 120
        with engine.connect() as conn:
            while (
                conn.execute(text(PENDING_COUNT_SQL)).scalar_one() and time.monotonic() < deadline
            ):
                conn.rollback()
                time.sleep(0.2)
            assert conn.execute(text(PENDING_COUNT_SQL)).scalar_one() == 0, "workers stalled"
            assert conn.execute(text("SELECT count(*), count(DISTINCT id) FROM events")).one() == (
                len(events),
                len(events),
            )
            # The rollups hold every event once, per customer and for every customer together.
            rolled = dict(
                conn.execute(
                    text(
                        "SELECT customer, sum(event_count) FROM meter_rollups WHERE meter_key = 'api_calls' GROUP BY 1"
                    )
                ).all()
            )
        assert rolled == {"": len(events), **{f"c{c}": PER_CUSTOMER for c in range(CUSTOMERS)}}
        rollups, raw = SqlEventBackend(engine), SqlEventBackend(engine, use_rollups=False)
        start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
        for key, aggregation, value in (("api_calls", "count", None), ("bytes", "sum", "bytes")):
            meter = MeterDefinition(key=key, event_type="api_call", aggregation=aggregation, value_property=value)
            for customer in (None, "c0", f"c{CUSTOMERS - 1}"):
                by_hour = rollups.usage(meter, start=start, end=end, customer=customer, window="hour")
                assert by_hour == raw.usage(meter, start=start, end=end, customer=customer, window="hour")
                assert sum(u.value or 0 for u in by_hour) == (
                    sum(e["properties"]["bytes"] if value else 1 for e in events if customer in (None, e["customer"]))
                )

        # Billing: two `tollway worker --once` and a run through each server, all at once.
        for proc, _ in workers:
            _stop(proc)
        # Scheduled runs cut off AS_OF_LAG before now: past it, every event is on its period's
        # invoice whichever run bills it (an event after a cutoff would be a late adjustment).
        time.sleep(max(0.0, AS_OF_LAG.total_seconds() + 1 - (time.monotonic() - ingested)))
        admin = servers[0].key("admin")
        until = datetime.now(UTC).isoformat()
        for _ in range(2):
            once.append(_start_worker(db_url, "--once", TOLLWAY_BILLING_RUN_INTERVAL_SECONDS="60"))
        runs: list[httpx.Response] = []

        def bill(server: LiveServer) -> None:
            runs.append(
                httpx.post(
                    f"{server.url}/v1/billing/run",
                    json={"until": until},
                    headers={"Authorization": f"Bearer {admin}"},
                    timeout=300,
                )
            )

        billers = [threading.Thread(target=bill, args=(server,)) for server in servers]
        for thread in billers:
            thread.start()
        for thread in billers:
            thread.join()
        for proc, log in once:
            assert proc.wait(timeout=300) == 0, log.read_text(errors="replace")[-2000:]
        assert [r.status_code for r in runs] == [200, 200], [r.text for r in runs]

        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT subscription_id, period_start, number, total_minor, kind FROM invoices")
            ).all()
        per_period = Counter((r[0], r[1]) for r in rows)
        assert set(per_period.values()) == {1}, "a period was invoiced twice"
        months_ended = datetime.now(UTC).month - 1 + 12 * (datetime.now(UTC).year - 2026)
        assert len(rows) == CUSTOMERS * months_ended
        assert {r[4] for r in rows} == {"regular"}
        numbers = sorted(int(r[2].removeprefix("INV-")) for r in rows)
        assert numbers == list(range(1, len(rows) + 1)), "invoice numbers have a gap or a repeat"
        billed = {(sub, start.year * 12 + start.month - 1): total for sub, start, _, total, _ in rows}
        for c in range(CUSTOMERS):
            for k in range(months_ended):  # the months since January 2026
                calls_in_month = sum(1 for i in range(PER_CUSTOMER) if k < 3 and i % 3 == k)
                assert billed[(f"s{c}", 2026 * 12 + k)] == int(calls_in_month * PRICE * 100), (c, k)
    finally:
        for proc, log in [*workers, *once]:
            if proc.poll() is None:
                _stop(proc)
            log.unlink(missing_ok=True)
        for server in servers:
            stop_server(server)
        engine.dispose()
