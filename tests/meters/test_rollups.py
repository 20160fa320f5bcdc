"""Rollups must give exactly what the raw events give: meters created before the events (so
every batch updates rollups incrementally), events arriving out of order and late, duplicates,
voids, and windows that do not fall on whole hours. Checked against the raw-event path and
against a reference computed in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tollway.db import session_scope
from tollway.kit.time import get_zone, windows
from tollway.meter.definition import MeterDefinition
from tollway.meter.fold import apply_pending
from tollway.meter.query import query_usage
from tollway.meter.rollup import EVERY_CUSTOMER, build_step, building
from tollway.meter.sql import PENDING_COUNT_SQL
from tollway.models import MeterRollup

START = datetime(2026, 3, 27, tzinfo=UTC)
METERS = [
    {"key": "calls", "aggregation": "count", "filters": [{"property": "status", "op": "lt", "value": 500}]},
    {"key": "bytes", "aggregation": "sum", "value_property": "usage.bytes", "group_by": ["endpoint", "region"]},
    {"key": "peak", "aggregation": "max", "value_property": "usage.bytes", "group_by": ["region"]},
    {"key": "low", "aggregation": "min", "value_property": "amount"},
    {"key": "last", "aggregation": "latest", "value_property": "amount", "group_by": ["endpoint"]},
    {"key": "users", "aggregation": "unique_count", "value_property": "user", "group_by": ["endpoint"]},
]


def make_events(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = START + timedelta(seconds=rnd.randrange(4 * 86400), microseconds=rnd.randrange(10**6))
        props: dict = {
            "endpoint": rnd.choice(["/a", "/b", "/c"]),
            "status": rnd.choice([200, 200, 201, 404, 500, 503]),
            "user": f"u{rnd.randrange(20)}",
        }
        if rnd.random() < 0.9:
            props["usage"] = {"bytes": rnd.choice([rnd.randrange(1, 10_000), "n/a", None])}
        if rnd.random() < 0.8:
            props["amount"] = str(Decimal(rnd.randrange(1, 100_000)) / 100)  # string: not numeric
            if rnd.random() < 0.7:
                props["amount"] = rnd.randrange(1, 100_000) / 100  # a JSON number with 2 decimals
        if rnd.random() < 0.7:
            props["region"] = rnd.choice(["eu", "us"])
        out.append(
            {
                "id": f"ev{i}",
                "customer": rnd.choice(["acme", "acme", "globex"]),
                "type": "api_call",
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "properties": props,
            }
        )
    return out


def apply_all(session_factory) -> int:
    total = 0
    while True:
        with session_scope(session_factory) as s:
            n = apply_pending(s, limit=97)
        total += n
        if n == 0:
            return total


def build_all(session_factory) -> int:
    """Run the worker's background builds to the end; returns the chunks built."""
    chunks = 0
    with session_factory() as s:
        keys = building(s)
    for key in keys:
        done = False
        while not done:
            with session_scope(session_factory) as s:
                done = build_step(s, key)
            chunks += 1
    return chunks


@pytest.fixture
def loaded(api, session_factory):
    for m in METERS:
        body = {"event_type": "api_call", "filters": [], "group_by": [], **m}
        assert api.post("/v1/meters", json=body).status_code == 201
    events = make_events(600, seed=11)
    rnd = random.Random(5)
    shuffled = events[:]
    rnd.shuffle(shuffled)  # out of time order: late events land in old hours
    for i in range(0, len(shuffled), 70):
        batch = shuffled[i : i + 70] + shuffled[max(0, i - 10) : i]  # with retried duplicates
        r = api.post("/v1/events", json={"events": batch})
        assert r.status_code == 202 and not r.json()["errors"]
        if i == 280:  # the worker rolls up the first half; the rest stays pending (read raw)
            assert apply_all(session_factory) == 350
    voided = {e["id"] for e in rnd.sample(events, 40)}
    for event_id in sorted(voided)[:20]:
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
    apply_all(session_factory)  # most events rolled up, with more voids and late events after
    late = make_events(60, seed=12)
    for e in late:
        e["id"] = "late-" + e["id"]
    assert api.post("/v1/events", json={"events": late}).json()["accepted"] == 60
    events += late
    for event_id in sorted(voided)[20:]:
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
    return [e for e in events if e["id"] not in voided]


def reference(events, meter, customer, lo, hi, groups):
    """The meter's value per group, computed in Python from the events (of every customer when
    ``customer`` is None)."""
    agg, vp = meter["aggregation"], meter.get("value_property")
    out: dict = {}
    for e in sorted(events, key=lambda x: (x["timestamp"], x["id"])):
        ts = datetime.fromisoformat(e["timestamp"])
        p = e["properties"]
        if (customer is not None and e["customer"] != customer) or not (lo <= ts < hi):
            continue
        if any(
            f["op"] == "lt" and not (isinstance(p.get(f["property"]), int) and p[f["property"]] < f["value"])
            for f in meter.get("filters", [])
        ):
            continue
        value = p
        for part in (vp or "").split(".") if vp else []:
            value = value.get(part) if isinstance(value, dict) else None
        key = tuple(None if p.get(g) is None else str(p.get(g)) for g in groups)
        if agg == "count":
            out[key] = out.get(key, 0) + 1
            continue
        if agg == "unique_count":
            out.setdefault(key, set())
            if value is not None:
                out[key].add(str(value))
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        v = Decimal(str(value))
        if agg == "sum":
            out[key] = out.get(key, Decimal(0)) + v
        elif agg == "max":
            out[key] = max(out.get(key, v), v)
        elif agg == "min":
            out[key] = min(out.get(key, v), v)
        elif agg == "latest":
            out[key] = v
    return {k: (Decimal(len(v)) if isinstance(v, set) else Decimal(v)) for k, v in out.items()}


SHAPES = [
    (None, "UTC", START, START + timedelta(days=4)),
    ("day", "Europe/Rome", START + timedelta(minutes=17), START + timedelta(days=3, hours=5, minutes=3)),
    ("hour", "Asia/Kolkata", START + timedelta(hours=30), START + timedelta(hours=41)),
    ("day", "Asia/Kathmandu", START, START + timedelta(days=4)),
]


def check_every_shape(session_factory, events, meters=METERS):
    with session_factory() as s:
        for meter in meters:
            definition = MeterDefinition(
                meter["key"],
                "api_call",
                meter["aggregation"],
                meter.get("value_property"),
                tuple(meter.get("filters", ())),
                tuple(meter.get("group_by", ())),
            )
            groups = tuple(meter.get("group_by", ()))
            for window, tz, lo, hi in SHAPES:
                zone = get_zone(tz)
                for customer in ("acme", "globex", None):  # None: every customer
                    where = (meter["key"], window, tz, customer)
                    kw = dict(start=lo, end=hi, customer=customer, window=window, tz=zone, group_by=groups)
                    fast = query_usage(s, definition, **kw)
                    raw = query_usage(s, definition, use_rollups=False, **kw)
                    assert [(u.start, u.end, u.groups, u.value) for u in fast] == [
                        (u.start, u.end, u.groups, u.value) for u in raw
                    ], where
                    for a, b in windows(lo, hi, window, zone):
                        expected = reference(events, meter, customer, a, b, groups)
                        if not groups and not expected:  # an empty window: zero for counts and sums, else none
                            zero = meter["aggregation"] in ("count", "sum", "unique_count")
                            expected = {(): Decimal(0) if zero else None}
                        got = {tuple(u.groups[g] for g in groups): u.value for u in fast if u.start == a}
                        assert got == expected, (*where, a, b)


def test_rollups_match_raw_events_and_reference(loaded, session_factory):
    """One loaded store, every meter and query shape (loading is the slow part), for each
    customer and for every customer together (the rows of every customer)."""
    check_every_shape(session_factory, loaded)


def test_rows_of_every_customer_after_a_meter_change_its_build_and_more_voids(api, loaded, session_factory):
    changed = {"filters": [{"property": "status", "op": "lt", "value": 404}]}
    assert api.patch("/v1/meters/calls", json=changed).json()["rollups"]["status"] == "building"
    more = make_events(80, seed=13)
    for e in more:
        e["id"] = "more-" + e["id"]
    assert api.post("/v1/events", json={"events": more[:40]}).json()["accepted"] == 40
    apply_all(session_factory)  # mid-build: added to the rows of every customer, recomputed when built
    with session_scope(session_factory) as s:
        assert build_step(s, "calls", chunk=1) is False  # one customer built, the other not yet
    assert api.post("/v1/events", json={"events": more[40:]}).json()["accepted"] == 40
    apply_all(session_factory)
    assert build_all(session_factory) >= 1
    events = loaded + more
    rnd = random.Random(21)
    voided = {e["id"] for e in rnd.sample(events, 15)}
    for event_id in sorted(voided):
        assert api.post(f"/v1/events/{event_id}/void").status_code == 200
    events = [e for e in events if e["id"] not in voided]
    meters = [m | changed if m["key"] == "calls" else m for m in METERS]
    check_every_shape(session_factory, events, meters)
    with session_factory() as s:  # the rows of every customer merge the customers' rows
        for key in ("calls", "bytes"):
            every = select(func.sum(MeterRollup.event_count)).where(MeterRollup.meter_key == key)
            assert s.scalar(every.where(MeterRollup.customer == EVERY_CUSTOMER)) == s.scalar(
                every.where(MeterRollup.customer != EVERY_CUSTOMER)
            )


def test_rollups_are_kept_incrementally_and_rebuilt_on_meter_change(api, session_factory):
    api.post("/v1/meters", json={"key": "calls", "event_type": "api_call", "aggregation": "count"})
    ev = {
        "id": "e1",
        "customer": "acme",
        "type": "api_call",
        "timestamp": "2026-01-05T10:20:00Z",
        "properties": {"s": 1},
    }
    api.post("/v1/events", json=ev)
    api.post("/v1/events", json=ev | {"id": "e2", "properties": {"s": 2}})
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(MeterRollup)) == 0  # pending until applied
        assert s.scalar(text(PENDING_COUNT_SQL)) == 2
    assert apply_all(session_factory) == 2
    with session_factory() as s:
        rows = s.scalars(select(MeterRollup).order_by(MeterRollup.customer)).all()
        assert [(r.meter_key, r.customer, r.bucket_start, r.event_count) for r in rows] == [
            ("calls", EVERY_CUSTOMER, datetime(2026, 1, 5, 10, tzinfo=UTC), 2),  # every customer's
            ("calls", "acme", datetime(2026, 1, 5, 10, tzinfo=UTC), 2),
        ]
    changed = api.patch("/v1/meters/calls", json={"filters": [{"property": "s", "op": "eq", "value": 2}]})
    assert changed.status_code == 200
    assert changed.json()["rollups"]["status"] == "building"  # the worker rebuilds them
    assert build_all(session_factory) == 1
    state = api.get("/v1/meters/calls").json()["rollups"]
    assert state == {"status": "ready", "customers_built": 1, "customers_total": 1}
    with session_factory() as s:
        total = select(func.sum(MeterRollup.event_count))
        assert s.scalar(total.where(MeterRollup.customer != EVERY_CUSTOMER)) == 1
        assert s.scalar(total.where(MeterRollup.customer == EVERY_CUSTOMER)) == 1
    assert api.post("/v1/events/e2/void").status_code == 200
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(MeterRollup)) == 0
