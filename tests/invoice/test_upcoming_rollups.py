"""The upcoming invoice (live, no cutoff) reads meter totals through the hourly rollups; a
finalized invoice reads them as of its cutoff (through the rollups, corrected, for ``count`` and
``sum``; raw for the others). Both must price a period identically: on
random events near the period's edges (the subscription's start, the end of its free window,
the end of the period, in zones whose midnights fall mid-hour in UTC), partly rolled up, partly
still pending, some voided, for every aggregation, with one meter whose rollups are still being
built, on both databases. A cutoff in the far future counts exactly the live events (every event
ingested by then, none voided by then), so it is the raw read of the same usage."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe
from tollway.db import session_scope
from tollway.invoice.compute import BillLine, PeriodContext, period_lines
from tollway.meter.fold import apply_pending
from tollway.models import Plan, Subscription
from tollway.subscription.terms import Terms

START = datetime(2026, 3, 10, 7, 13, 21, 250_000, tzinfo=UTC)  # the subscriptions' start, mid-hour
AT = datetime(2026, 3, 20, tzinfo=UTC)  # inside the first (partial) monthly period in every zone
FAR = datetime(2999, 1, 1, tzinfo=UTC)
ZONES = ["Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "UTC"]
HOUR = 3600 * 10**6  # microseconds

METERS = [
    {"key": "u_calls", "aggregation": "count", "filters": [{"property": "status", "op": "lt", "value": 500}]},
    {"key": "u_bytes", "aggregation": "sum", "value_property": "bytes", "group_by": ["region"]},
    {"key": "u_peak", "aggregation": "max", "value_property": "bytes"},
    {"key": "u_low", "aggregation": "min", "value_property": "bytes"},
    {"key": "u_last", "aggregation": "latest", "value_property": "bytes"},
    {"key": "u_users", "aggregation": "unique_count", "value_property": "user"},
]
BUILDING = {"key": "u_errors", "aggregation": "count", "filters": [{"property": "status", "op": "gte", "value": 500}]}
CHARGES = [
    {"code": "calls", "meter": "u_calls", "model": "package", "package_size": 3, "package_price": "1.00",
     "free_units": 1},
    {"code": "bytes", "meter": "u_bytes", "model": "graduated",
     "tiers": [{"up_to": 500, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.001"}]},
    {"code": "regional", "meter": "u_bytes", "model": "flat", "unit_price": "0.002", "dimension": "region"},
    {"code": "peak", "meter": "u_peak", "model": "flat", "unit_price": "0.10"},
    {"code": "low", "meter": "u_low", "model": "flat", "unit_price": "0.10"},
    {"code": "last", "meter": "u_last", "model": "flat", "unit_price": "0.10"},
    {"code": "users", "meter": "u_users", "model": "flat", "unit_price": "2.00"},
    {"code": "errors", "meter": "u_errors", "model": "flat", "unit_price": "0.50"},
]  # fmt: skip

event = st.tuples(
    st.integers(0, 2),  # near the start, the end of the free window, or the end of the period
    st.integers(-3 * HOUR, 3 * HOUR),  # offset from there, to the microsecond
    st.one_of(st.integers(0, 10_000), st.decimals("0", "100", places=2), st.none(), st.just("n/a")),
    st.sampled_from([200, 404, 503]),
    st.sampled_from(["eu", "us", None]),
    st.integers(0, 3),
)


@pytest.fixture
def plan(api):  # type: ignore[no-untyped-def]
    for m in METERS:
        create_meter(api, event_type="api_call", **m)
    # An event already stored: the meter created now has its rollups built by the worker, which
    # does not run here, so it stays "building" and is read raw.
    send_events(api, [{"id": "seed", "customer": "seed", "type": "api_call", "timestamp": "2026-03-01T00:00:00Z"}])
    create_meter(api, event_type="api_call", **BUILDING)
    assert api.get(f"/v1/meters/{BUILDING['key']}").json()["rollups"]["status"] == "building"
    create_plan(api, code="up", charges=CHARGES, publish=True, free_period_days=2)
    return "up"


def _lines(session, sub_id: str, as_of: datetime | None) -> tuple[list[BillLine], PeriodContext]:  # type: ignore[no-untyped-def]
    sub = session.get(Subscription, sub_id)
    terms = Terms.of(sub, session.get(Plan, sub.plan_code))
    found = terms.period_at(AT)
    assert found is not None
    ctx = PeriodContext.load(session, terms)
    return period_lines(session, ctx, found[0], found[1], as_of=as_of), ctx


def test_upcoming_invoice_through_rollups_equals_the_raw_read(api, session_factory, plan):  # type: ignore[no-untyped-def]
    runs = itertools.count()

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        zone=st.sampled_from(ZONES),
        events=st.lists(event, min_size=1, max_size=30),
        rolled=st.sampled_from([0.0, 0.5, 1.0]),  # the share of the events rolled up
        voided=st.sets(st.integers(0, 29), max_size=4),
    )
    def check(zone, events, rolled, voided):  # type: ignore[no-untyped-def]
        run = next(runs)  # each example has a customer, subscription and event ids of its own
        customer, sub_id = f"c{run}", f"s{run}"
        create_customer(api, id=customer, timezone=zone)
        subscribe(api, id=sub_id, customer=customer, plan=plan, start=START.isoformat())
        with session_factory() as session:
            sub = session.get(Subscription, sub_id)
            terms = Terms.of(sub, session.get(Plan, sub.plan_code))
            found = terms.period_at(AT)
            free_until = terms.free_until()
        assert found is not None and free_until is not None
        period = found[0]
        edges = [period.start, free_until, period.end]
        batch = []
        for i, (where, offset, value, status, region, user) in enumerate(events):
            props: dict = {"status": status, "user": f"u{user}"}
            if value is not None:
                props["bytes"] = value if isinstance(value, int | str) else float(value)
            if region is not None:
                props["region"] = region
            ts = edges[where] + timedelta(microseconds=offset)
            batch.append({"id": f"r{run}-e{i}", "customer": customer, "type": "api_call",
                          "timestamp": ts.isoformat().replace("+00:00", "Z"), "properties": props})  # fmt: skip
        send_events(api, batch)
        if int(rolled * len(batch)):  # the worker has rolled up some of them; the others are still pending
            with session_scope(session_factory) as s:
                apply_pending(s, limit=int(rolled * len(batch)))
        for i in sorted(voided):
            if i < len(batch):
                assert api.post(f"/v1/events/{batch[i]['id']}/void").status_code == 200
        with session_factory() as session:
            live, ctx = _lines(session, sub_id, None)
            raw, _ = _lines(session, sub_id, FAR)
        assert live == raw, (zone, [e["timestamp"] for e in batch])
        upcoming = api.get(f"/v1/customers/{customer}/upcoming-invoice", params={"at": AT.isoformat()})
        assert upcoming.status_code == 200, upcoming.text
        assert upcoming.json()["lines"] == [line.to_dict(ctx.currency) for line in raw]

    check()


def test_a_cutoff_reads_additive_meters_through_the_rollups_and_the_others_raw(api, session_factory, plan):  # type: ignore[no-untyped-def]
    # Not a way to use Tollway: altering the rollups shows which read each computation makes.
    create_customer(api, id="probe", timezone="Asia/Kolkata")
    subscribe(api, id="sp", customer="probe", plan=plan, start=START.isoformat())
    calls = [
        {"id": f"p{i}", "customer": "probe", "type": "api_call", "timestamp": f"2026-03-15T{i:02d}:00:00Z",
         "properties": {"status": 200, "bytes": 7}}
        for i in range(10)
    ]  # fmt: skip
    send_events(api, calls)
    with session_scope(session_factory) as s:
        apply_pending(s)

    def metered(charge: str, as_of: datetime | None) -> object:
        with session_factory() as session:
            lines, _ = _lines(session, "sp", as_of)
        [line] = [x for x in lines if x.charge == charge and not x.details.get("free_period")]
        return line.metered

    assert metered("calls", None) == metered("calls", FAR) == 10
    assert metered("peak", None) == metered("peak", FAR) == 7
    with session_scope(session_factory) as s:
        s.execute(text("UPDATE meter_rollups SET event_count = event_count + 5 WHERE meter_key = 'u_calls'"))
        s.execute(text("UPDATE meter_rollups SET value_max = 99 WHERE meter_key = 'u_peak'"))
    # A count (additive): the rollups, live and as of a cutoff alike (ten altered hours).
    assert metered("calls", None) == metered("calls", FAR) == 10 + 5 * 10
    # A maximum cannot be corrected for a cutoff: live through the rollups, as of a cutoff raw.
    assert metered("peak", None) == 99
    assert metered("peak", FAR) == 7
