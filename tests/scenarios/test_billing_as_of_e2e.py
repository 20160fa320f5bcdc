"""The billing run of a real ``tollway worker --once`` (it folds the pending events into the
rollups, then bills with its cutoff ``AS_OF_LAG`` before now), on events sent to a real ``tollway
serve``: the invoices count exactly the events as they stood at the cutoff, though the run reads
``count`` and ``sum`` meters through the rollups. Events ingested an hour ago count; one of them
voided an hour ago does not; one voided just now still counts; events ingested just now (after
the cutoff, folded into the rollups all the same) do not."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from tests.conftest import start_server, stop_server
from tests.factories import create_customer, create_meter, create_plan, subscribe
from tollway.db import make_engine
from tollway.kit.time import utcnow
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.models import Event, Invoice

pytestmark = pytest.mark.e2e

CUSTOMERS = 4
JAN = datetime(2026, 1, 1, tzinfo=UTC)
CALL, BYTE = Decimal("0.25"), Decimal("0.001")


def _event(c: int, i: int, tag: str) -> dict[str, Any]:
    ts = f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{(7 * i) % 60:02d}:00Z"
    return {"id": f"c{c}-{tag}-{i}", "customer": f"c{c}", "type": "api_call", "timestamp": ts,
            "properties": {"bytes": 10 * (i + c)}}  # fmt: skip


def test_a_worker_bills_the_events_as_of_its_cutoff_through_the_rollups(db_url: str, api) -> None:  # type: ignore[no-untyped-def]
    create_meter(api, key="calls", event_type="api_call")
    create_meter(api, key="bytes", event_type="api_call", aggregation="sum", value_property="bytes")
    charges = [
        {"code": "calls", "meter": "calls", "model": "flat", "unit_price": str(CALL)},
        {"code": "bytes", "meter": "bytes", "model": "flat", "unit_price": str(BYTE)},
    ]
    create_plan(api, code="pro", charges=charges, publish=True)
    for c in range(CUSTOMERS):
        create_customer(api, id=f"c{c}")
        subscribe(api, id=f"s{c}", customer=f"c{c}", plan="pro", start="2026-01-01T00:00:00Z")
    early = {c: [_event(c, i, "early") for i in range(30 + c)] for c in range(CUSTOMERS)}
    late = {c: [_event(c, i, "late") for i in range(3 * c)] for c in range(CUSTOMERS)}
    engine = make_engine(db_url)
    server = start_server(db_url, extra_env={"TOLLWAY_RUN_WORKER_IN_SERVE": "false"})
    try:
        ingest, admin = server.key("ingest"), server.key("admin")
        with httpx.Client(base_url=server.url, timeout=60) as client:

            def send(events: list[dict[str, Any]]) -> None:
                r = client.post("/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {ingest}"})
                assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text

            def void(event_id: str) -> None:
                r = client.post(f"/v1/events/{event_id}/void", headers={"Authorization": f"Bearer {admin}"})
                assert r.status_code == 200, r.text

            send([e for c in range(CUSTOMERS) for e in early[c]])
            for c in range(CUSTOMERS):
                void(early[c][0]["id"])  # voided "an hour ago" (dated below): not billed
            with Session(engine) as session:  # the early events were ingested, and those voids made, an hour ago
                ago = utcnow() - timedelta(hours=1)
                ids = [e["id"] for c in range(CUSTOMERS) for e in early[c]]
                session.execute(update(Event).where(Event.id.in_(ids)).values(ingested_at=ago))
                voided = [early[c][0]["id"] for c in range(CUSTOMERS)]
                session.execute(update(Event).where(Event.id.in_(voided)).values(voided_at=ago + timedelta(minutes=1)))
                session.commit()
            for c in range(CUSTOMERS):
                void(early[c][1]["id"])  # voided just now, after the cutoff: still billed
            send([e for c in range(CUSTOMERS) for e in late[c]])
        env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url, "TOLLWAY_BILLING_RUN_INTERVAL_SECONDS": "60"}
        done = subprocess.run(
            [sys.executable, "-m", "tollway", "worker", "--once"], env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    finally:
        stop_server(server)
    with Session(engine) as session:
        assert session.scalar(text(PENDING_COUNT_SQL)) == 0  # all folded
        invoices = session.execute(
            select(Invoice.customer_id, Invoice.total_minor, Invoice.as_of).where(Invoice.period_start == JAN)
        ).all()
        late_ids = [e["id"] for c in range(CUSTOMERS) for e in late[c]]
        after = [
            *session.scalars(select(Event.ingested_at).where(Event.id.in_(late_ids))),
            *session.scalars(
                select(Event.voided_at).where(Event.id.in_([early[c][1]["id"] for c in range(CUSTOMERS)]))
            ),
        ]
    engine.dispose()
    assert len(invoices) == CUSTOMERS
    for customer, total, as_of in invoices:
        # The late events and the latest voids came after the cutoff (else this proves nothing).
        assert all(t is not None and as_of < t for t in after), (as_of, min(t for t in after if t))
        c = int(customer.removeprefix("c"))
        billed = early[c][1:]  # all but the one voided before the cutoff
        expected = len(billed) * CALL + sum(e["properties"]["bytes"] for e in billed) * BYTE
        assert total == int(expected * 100), (customer, total, expected)
