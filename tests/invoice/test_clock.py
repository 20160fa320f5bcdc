"""Ingestion and billing read one clock: on PostgreSQL the database's (``db.database_now``), so
an ingesting host whose clock runs behind the billing host's cannot put an event before a
cutoff it arrived after, where neither the invoice nor the next invoice's adjustments would count
it. (SQLite is used by one host only: there is no second clock to disagree with.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    lines_of,
    run_billing,
    send_events,
    subscribe,
)
from tollway.db import database_now
from tollway.event.ingest import IncomingEvent
from tollway.kit.time import utcnow
from tollway.models import Event, Invoice

SKEW = timedelta(minutes=5)


def test_an_event_from_a_host_whose_clock_runs_behind_is_billed_once(app, api, backend) -> None:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("SQLite is used by one host only: no second clock")
    create_customer(api, id="acme")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api, code="pro", charges=[{"code": "calls", "meter": "api_calls", "model": "graduated",
                                  "tiers": [{"up_to": None, "unit_price": "1.00"}]}],
        publish=True,
    )  # fmt: skip
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    send_events(api, calls("acme", 3, day="2026-01-05"))
    run_billing(api, "2026-02-01T00:00:00Z")  # January is invoiced now: its cutoff is now
    [january] = invoices_of(api, "acme")
    assert january["total"] == "3.00"

    # A January event arrives after that, through a host whose clock is 5 minutes behind.
    late = IncomingEvent("late-1", "acme", "api_call", datetime(2026, 1, 20, 10, tzinfo=UTC), {})
    assert app.state.event_sink.store([late], ingested_at=utcnow() - SKEW) == 1
    with app.state.sessionmaker() as session:
        stored = session.scalars(select(Event.ingested_at).where(Event.id == "late-1")).one()
        as_of = session.scalars(select(Invoice.as_of).where(Invoice.id == january["id"])).one()
        assert stored > as_of  # the database's clock: after January's cutoff
        assert abs(stored - database_now(session)) < timedelta(minutes=1)

    run_billing(api, "2026-03-01T00:00:00Z")
    february = invoices_of(api, "acme")[1]
    [adjustment] = lines_of(february, "adjustment")  # counted once, on the next invoice
    assert (adjustment["quantity"], adjustment["amount"]) == ("1", "1.00")
    assert adjustment["details"]["adjusts_invoice_id"] == january["id"]
