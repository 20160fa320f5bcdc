"""``unique_count`` over a customer's billing period is read from the period's set of distinct
values, kept by the worker (``meter.distinct``); it must give exactly what the raw events give,
and what a Python reference computes: events folded and pending, values recurring, voids of
folded and of pending events, late events, periods whose edges fall mid-hour in UTC (the
customer's zone, across a DST change), a plan changed mid-period, customers without subscription.
On both databases."""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from tests.conftest import start_server, stop_server
from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe
from tollway.db import make_engine, session_scope
from tollway.meter import distinct
from tollway.meter.definition import MeterDefinition
from tollway.meter.fold import apply_pending
from tollway.meter.query import query_usage, usage_totals
from tollway.meter.rollup import DISTINCT_BUDGET, distinct_step
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.models import DistinctPeriod, DistinctValue

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
ZONE = "America/New_York"  # calendar months start at local midnight: 05:00 UTC, 04:00 UTC after DST
PERIOD = (datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 4, 1, 4, tzinfo=UTC))
NEXT = (datetime(2026, 4, 1, 4, tzinfo=UTC), datetime(2026, 5, 1, 4, tzinfo=UTC))
FIRST = (datetime(2026, 2, 15, tzinfo=UTC), PERIOD[0])  # ended long before NOW: no set kept
MID = datetime(2026, 3, 19, 5, tzinfo=UTC)  # inside the period, a day before NOW
USERS = {
    "key": "users",
    "aggregation": "unique_count",
    "value_property": "user",
    "filters": [{"property": "status", "op": "lt", "value": 500}],
}
LONG = "x" * 5000  # longer than a PostgreSQL index entry may be: sets key values by digest
VALUES = ["u0", "u1", "u2", "u3", 1, "1", 2.5, True, LONG, None]


def definition() -> MeterDefinition:
    return MeterDefinition("users", "api_call", "unique_count", "user", tuple(USERS["filters"]), ())


def setup_customer(api, customer: str = "acme", plan: str = "monthly", start: str = "2026-02-15T00:00:00Z"):  # type: ignore[no-untyped-def]
    create_customer(api, id=customer, timezone=ZONE)
    return subscribe(api, id=f"sub-{customer}", customer=customer, plan=plan, start=start)


@pytest.fixture
def plan(api):  # type: ignore[no-untyped-def]
    create_meter(api, event_type="api_call", **USERS)
    charges = [{"code": "users", "meter": "users", "model": "flat", "unit_price": "2.00"}]
    create_plan(api, code="monthly", charges=charges, publish=True)
    create_plan(api, code="other", charges=charges, publish=True, billing_anchor="anniversary")
    return "monthly"


def ensure(session_factory, now: datetime = NOW) -> int:  # type: ignore[no-untyped-def]
    built = DISTINCT_BUDGET
    total = 0
    while built == DISTINCT_BUDGET:
        with session_scope(session_factory) as s:
            built = distinct_step(s, now, budget=DISTINCT_BUDGET)
        total += built
    return total


def event(i: int, customer: str, ts: datetime, value, status: int = 200) -> dict:  # type: ignore[no-untyped-def]
    props: dict = {"status": status}
    if value is not None:
        props["user"] = value
    return {
        "id": f"{customer}-{i}",
        "customer": customer,
        "type": "api_call",
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "properties": props,
    }


def reference(events: list[dict], voided: set[str], customer: str, lo: datetime, hi: datetime) -> Decimal:
    seen = set()
    for e in events:
        ts = datetime.fromisoformat(e["timestamp"])
        p = e["properties"]
        if e["customer"] != customer or e["id"] in voided or not lo <= ts < hi or p["status"] >= 500:
            continue
        value = p.get("user")
        if value is None:
            continue
        seen.add("true" if value is True else str(value))
    return Decimal(len(seen))


def check(session_factory, events: list[dict], voided: set[str], customer: str, window, *, kept: bool) -> None:  # type: ignore[no-untyped-def]
    """The window's value from the set (``kept``: the window is a registered period) or raw,
    equal to the raw read, to ``usage_totals`` and to the reference."""
    lo, hi = window
    meter = definition()
    with session_factory() as s:
        from_sets = distinct.period_values(s, meter, [(customer, lo, hi)])
        assert (0 in from_sets) is kept, (customer, window)
        fast = query_usage(s, meter, start=lo, end=hi, customer=customer)
        raw = query_usage(s, meter, start=lo, end=hi, customer=customer, use_rollups=False)
        [total] = usage_totals(s, meter, [(customer, lo, hi)])
    expected = reference(events, voided, customer, lo, hi)
    assert [u.value for u in fast] == [u.value for u in raw] == [expected] == [total], (customer, window)
    if kept:
        assert from_sets[0] == expected


def spread(rnd: random.Random, n: int, customer: str, start: int = 0) -> list[dict]:
    """Events near the period's edges (mid-hour in UTC) and inside it, values recurring."""
    out = []
    for i in range(start, start + n):
        edge = rnd.choice([PERIOD[0], PERIOD[1], MID])
        ts = edge + timedelta(seconds=rnd.randrange(-7200, 7200), microseconds=rnd.randrange(10**6))
        out.append(event(i, customer, ts, rnd.choice(VALUES), rnd.choice([200, 200, 503])))
    return out


def test_period_sets_equal_the_raw_events_and_the_reference(api, session_factory, plan):  # type: ignore[no-untyped-def]
    setup_customer(api)
    setup_customer(api, "globex")
    create_customer(api, id="nosub", timezone=ZONE)  # no subscription: always raw
    rnd = random.Random(3)
    events = spread(rnd, 120, "acme") + spread(rnd, 40, "globex") + spread(rnd, 30, "nosub")
    send_events(api, events[:80])
    # Stored before the sets exist: still pending, so the build leaves them to the worker's fold.
    assert ensure(session_factory) == 4  # acme and globex: the period now and the next one
    with session_scope(session_factory) as s:
        apply_pending(s, limit=50)
    voided = {e["id"] for e in rnd.sample(events[:80], 12)}  # folded ones and pending ones
    for event_id in sorted(voided):
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
    send_events(api, events[80:])  # late events, pending
    with session_factory() as s:
        assert s.scalar(text(PENDING_COUNT_SQL)) > 0
    for customer in ("acme", "globex"):
        check(session_factory, events, voided, customer, PERIOD, kept=True)
        check(session_factory, events, voided, customer, NEXT, kept=True)
        check(session_factory, events, voided, customer, FIRST, kept=False)
        check(session_factory, events, voided, customer, (PERIOD[0], PERIOD[1] - timedelta(hours=1)), kept=False)
    check(session_factory, events, voided, "nosub", PERIOD, kept=False)
    # Everything folded, more voids (now of folded events only), a build from stored events.
    with session_scope(session_factory) as s:
        while apply_pending(s, limit=37):
            pass
    more = {e["id"] for e in rnd.sample(events[80:], 10)}
    for event_id in sorted(more):
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
    voided |= more
    with session_scope(session_factory) as s:  # the sets are dropped and built again from the events
        s.execute(DistinctValue.__table__.delete())
        s.execute(DistinctPeriod.__table__.delete())
    assert ensure(session_factory) == 4
    for customer in ("acme", "globex"):
        check(session_factory, events, voided, customer, PERIOD, kept=True)
    with session_factory() as s:  # the set holds exactly the distinct live values
        [pid] = s.scalars(
            select(DistinctPeriod.id).where(DistinctPeriod.customer == "acme", DistinctPeriod.period_start == PERIOD[0])
        )
        rows = s.scalar(select(func.count()).select_from(DistinctValue).where(DistinctValue.period_id == pid))
        assert Decimal(rows) == reference(events, voided, "acme", *PERIOD)


def test_a_void_removes_a_value_only_when_no_live_event_carries_it(api, session_factory, plan):  # type: ignore[no-untyped-def]
    setup_customer(api)
    ts = PERIOD[0] + timedelta(days=2)
    evs = [event(i, "acme", ts + timedelta(minutes=i), v) for i, v in enumerate(["a", "a", "b", "a", "c"])]
    send_events(api, evs[:3])
    ensure(session_factory)
    with session_scope(session_factory) as s:
        apply_pending(s)  # a, a, b folded
    send_events(api, evs[3:])  # a, c pending
    voided: set[str] = set()
    check(session_factory, evs, voided, "acme", PERIOD, kept=True)  # a b c
    for event_id in ("acme-0", "acme-3", "acme-2"):  # a folded (another folded a left), a pending, b
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
        voided.add(event_id)
        check(session_factory, evs, voided, "acme", PERIOD, kept=True)
    with session_scope(session_factory) as s:
        apply_pending(s)  # the voided pending a is not folded
    check(session_factory, evs, voided, "acme", PERIOD, kept=True)  # a (acme-1), c
    assert api.post("/v1/events/acme-1/void").status_code == 200  # the last live a
    voided.add("acme-1")
    check(session_factory, evs, voided, "acme", PERIOD, kept=True)
    assert reference(evs, voided, "acme", *PERIOD) == 1
    assert api.post("/v1/events/acme-1/void").status_code == 200  # voiding twice changes nothing
    check(session_factory, evs, voided, "acme", PERIOD, kept=True)


def test_a_plan_change_mid_period_gets_sets_for_both_parts(api, session_factory, plan):  # type: ignore[no-untyped-def]
    setup_customer(api)
    rnd = random.Random(8)
    events = spread(rnd, 80, "acme")
    send_events(api, events)
    ensure(session_factory)
    with session_scope(session_factory) as s:
        apply_pending(s, limit=40)
    check(session_factory, events, set(), "acme", PERIOD, kept=True)
    switch = MID + timedelta(minutes=30)  # among the events near MID
    r = api.post("/v1/subscriptions/sub-acme/change-plan", json={"plan": "other", "at": switch.isoformat()})
    assert r.status_code == 200, r.text
    # The new plan is anniversary-monthly from the switch (01:30 in New York): its next period
    # starts a month after it.
    after = (switch, datetime(2026, 4, 19, 5, 30, tzinfo=UTC))
    assert ensure(session_factory) == 3  # [start, switch), [switch, +1 month), the month after
    for window in ((PERIOD[0], switch), after):
        check(session_factory, events, set(), "acme", window, kept=True)
    check(session_factory, events, set(), "acme", PERIOD, kept=False)  # the old period: dropped, raw
    with session_scope(session_factory) as s:
        while apply_pending(s):
            pass
    for window in ((PERIOD[0], switch), after):
        check(session_factory, events, set(), "acme", window, kept=True)


def test_a_changed_meter_has_its_sets_built_again(api, session_factory, plan):  # type: ignore[no-untyped-def]
    create_meter(api, event_type="api_call", key="visitors", aggregation="unique_count", value_property="user")
    setup_customer(api)
    rnd = random.Random(4)
    events = spread(rnd, 50, "acme")
    send_events(api, events)
    ensure(session_factory)
    with session_scope(session_factory) as s:
        apply_pending(s)
    visitors = MeterDefinition("visitors", "api_call", "unique_count", "user", (), ())
    unfiltered = [{**e, "properties": {**e["properties"], "status": 200}} for e in events]
    with session_factory() as s:
        assert distinct.period_values(s, visitors, [("acme", *PERIOD)]) == {
            0: reference(unfiltered, set(), "acme", *PERIOD)
        }
    r = api.patch("/v1/meters/visitors", json={"filters": USERS["filters"]})
    assert r.status_code == 200, r.text
    filtered = MeterDefinition("visitors", "api_call", "unique_count", "user", tuple(USERS["filters"]), ())
    with session_factory() as s:  # dropped with the change: read raw until built again
        assert distinct.period_values(s, filtered, [("acme", *PERIOD)]) == {}
    assert ensure(session_factory) == 2
    with session_factory() as s:
        assert distinct.period_values(s, filtered, [("acme", *PERIOD)]) == {
            0: reference(events, set(), "acme", *PERIOD)
        }


def test_random_histories_equal_the_raw_events_and_the_reference(api, session_factory, plan):  # type: ignore[no-untyped-def]
    runs = itertools.count()
    step = st.one_of(
        st.tuples(st.just("send"), st.lists(st.tuples(st.integers(0, 2), st.integers(-7200, 7200),
                                                      st.sampled_from(VALUES), st.sampled_from([200, 503])),
                                            min_size=1, max_size=8)),
        st.tuples(st.just("fold"), st.integers(1, 10)),
        st.tuples(st.just("void"), st.integers(0, 1000)),
        st.tuples(st.just("ensure"), st.just(0)),
    )  # fmt: skip

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=st.lists(step, min_size=1, max_size=12))
    def run(steps):  # type: ignore[no-untyped-def]
        n = next(runs)
        customer = f"h{n}"
        setup_customer(api, customer)
        ensure(session_factory)  # as the worker does: the period's set exists before its events
        events: list[dict] = []
        voided: set[str] = set()
        for kind, arg in steps:
            if kind == "send":
                batch = []
                for where, seconds, value, status in arg:
                    edge = (PERIOD[0], PERIOD[1], MID)[where]
                    batch.append(
                        event(len(events) + len(batch), customer, edge + timedelta(seconds=seconds), value, status)
                    )
                send_events(api, batch)
                events += batch
            elif kind == "fold":
                with session_scope(session_factory) as s:
                    apply_pending(s, limit=arg)
            elif kind == "void" and events:
                event_id = events[arg % len(events)]["id"]
                assert api.post(f"/v1/events/{event_id}/void").status_code == 200
                voided.add(event_id)
            elif kind == "ensure":
                ensure(session_factory)
        ensure(session_factory)
        check(session_factory, events, voided, customer, PERIOD, kept=True)
        check(session_factory, events, voided, customer, NEXT, kept=True)
        with session_factory() as s:  # each period's kept size is the number of its values
            rows = s.execute(
                select(DistinctPeriod.id, DistinctPeriod.value_count, func.count(DistinctValue.digest))
                .outerjoin(DistinctValue, DistinctValue.period_id == DistinctPeriod.id)
                .group_by(DistinctPeriod.id, DistinctPeriod.value_count)
            ).all()
            assert all(kept == counted for _, kept, counted in rows), rows

    run()


def test_through_a_real_server_and_its_worker(db_url, api, plan):  # type: ignore[no-untyped-def]
    """``tollway serve`` with its in-process worker, the real clock: the worker builds the set of
    the customer's current period and folds the events into it; usage over the period equals the
    events' distinct values, before and after a void."""
    now = datetime.now(UTC)
    start = (now - timedelta(days=40)).replace(microsecond=0)
    create_customer(api, id="live", timezone="UTC")
    subscribe(api, id="sub-live", customer="live", plan="other", start=start.isoformat())
    server = start_server(db_url, extra_env={"TOLLWAY_ROLLUP_INTERVAL_SECONDS": "0.2"})
    engine = make_engine(db_url)

    def read(stmt):  # type: ignore[no-untyped-def]
        with engine.connect() as conn:  # briefly: on SQLite a connection holds the write lock
            return conn.execute(stmt).all()

    def wait_for(what) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while not what():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)

    try:
        key = server.key("admin")
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        wait_for(lambda: read(select(DistinctPeriod.id)))
        periods = sorted(read(select(DistinctPeriod.period_start, DistinctPeriod.period_end)))
        lo, hi = next((a, b) for a, b in periods if a <= now < b)
        evs = [event(i, "live", lo + (now - lo) * (i + 1) / 40, f"u{i % 7}") for i in range(30)]
        evs += [event(30, "live", lo - timedelta(seconds=1), "u99"), event(31, "live", now, "u98", 503)]
        assert client.post("/v1/events", json={"events": evs}).status_code == 202
        params = {"customer": "live", "from": lo.isoformat(), "to": hi.isoformat()}

        def settled_value() -> Decimal:
            wait_for(lambda: read(text(PENDING_COUNT_SQL))[0][0] == 0)
            [(pid,)] = read(
                select(DistinctPeriod.id).where(DistinctPeriod.period_start == lo, DistinctPeriod.period_end == hi)
            )
            [(rows,)] = read(select(func.count()).select_from(DistinctValue).where(DistinctValue.period_id == pid))
            r = client.get("/v1/meters/users/usage", params=params)
            assert r.status_code == 200, r.text
            [value] = [Decimal(v["value"]) for v in r.json()["data"]]
            assert value == rows  # the set holds the value the API answers
            return value

        assert settled_value() == 7
        for i in (0, 7, 14, 21):  # every live u0 event voided but one
            assert client.post(f"/v1/events/live-{i}/void").status_code == 200
        assert settled_value() == 7  # u0 still carried by live-28
        assert client.post("/v1/events/live-28/void").status_code == 200
        assert settled_value() == 6
    finally:
        engine.dispose()
        stop_server(server)
