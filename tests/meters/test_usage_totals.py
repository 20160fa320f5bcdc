"""``usage_totals`` (many customers' period totals in one statement, what alert evaluation
reads) must give exactly what ``query_usage`` gives for each customer and range on its own: on
random events, partly rolled up, partly voided, over random ranges that do or do not fall on
whole hours, repeated and overlapping, for every aggregation, on both databases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollway.db import session_scope
from tollway.meter.definition import MeterDefinition
from tollway.meter.fold import apply_pending
from tollway.meter.query import query_usage, usage_totals
from tollway.models import Meter

START = datetime(2026, 3, 28, 22, tzinfo=UTC)
METERS = [
    {"key": "t_calls", "aggregation": "count", "filters": [{"property": "status", "op": "lt", "value": 500}]},
    {"key": "t_bytes", "aggregation": "sum", "value_property": "bytes", "group_by": ["region"]},
    {"key": "t_peak", "aggregation": "max", "value_property": "bytes"},
    {"key": "t_low", "aggregation": "min", "value_property": "bytes", "group_by": ["region"]},
    {"key": "t_last", "aggregation": "latest", "value_property": "bytes"},
    {"key": "t_users", "aggregation": "unique_count", "value_property": "user"},
]
CUSTOMERS = 3  # the last one never has events

HOUR = 3600 * 10**6  # microseconds
instants = st.one_of(
    st.integers(-1, 3).map(lambda h: h * HOUR),  # on a whole hour
    st.integers(-HOUR, 3 * HOUR),  # anywhere, to the microsecond
)
event = st.tuples(
    st.integers(0, CUSTOMERS - 2),
    st.integers(0, 6 * HOUR),
    st.one_of(st.integers(-50, 10_000), st.decimals("-5", "100", places=2), st.none(), st.just("n/a")),
    st.sampled_from([200, 404, 503]),
    st.sampled_from(["eu", "us", None]),
    st.integers(0, 3),
)
span = st.tuples(st.integers(0, CUSTOMERS - 1), instants, st.one_of(st.integers(1, 2 * HOUR), st.just(8 * HOUR)))


@pytest.fixture
def meters(api):  # type: ignore[no-untyped-def]
    for m in METERS:
        body = {"event_type": "api_call", "filters": [], "group_by": [], **m}
        assert api.post("/v1/meters", json=body).status_code == 201
    return [m["key"] for m in METERS]


def test_usage_totals_equal_the_single_customer_queries(api, session_factory, meters):  # type: ignore[no-untyped-def]
    runs = itertools.count()

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        events=st.lists(event, min_size=1, max_size=40),
        rolled=st.sampled_from([0.0, 0.4, 0.8, 1.0]),  # the share of the events rolled up
        voided=st.sets(st.integers(0, 39), max_size=4),
        spans=st.lists(span, min_size=1, max_size=8),
    )
    def check(events, rolled, voided, spans):  # type: ignore[no-untyped-def]
        run = next(runs)  # each example has customers and event ids of its own
        customers = [f"r{run}-c{k}" for k in range(CUSTOMERS)]
        batch = []
        for i, (who, at, value, status, region, user) in enumerate(events):
            props: dict = {"status": status, "user": f"u{user}"}
            if value is not None:
                props["bytes"] = value if isinstance(value, int | str) else float(value)
            if region is not None:
                props["region"] = region
            ts = START + timedelta(microseconds=at)
            batch.append({"id": f"r{run}-e{i}", "customer": customers[who], "type": "api_call",
                          "timestamp": ts.isoformat().replace("+00:00", "Z"), "properties": props})  # fmt: skip
        if batch:
            r = api.post("/v1/events", json={"events": batch})
            assert r.status_code == 202 and not r.json()["errors"], r.text
        if int(rolled * len(batch)):  # the worker has rolled up some of them; the others are still pending
            with session_scope(session_factory) as s:
                apply_pending(s, limit=int(rolled * len(batch)))
        for i in sorted(voided):
            if i < len(batch):
                assert api.post(f"/v1/events/{batch[i]['id']}/void").status_code == 200
        ranges = [
            (customers[who], START + timedelta(microseconds=lo), START + timedelta(microseconds=lo + length))
            for who, lo, length in spans
        ]
        ranges.append(ranges[0])  # the same range twice
        with session_factory() as session:
            for key in meters:
                meter = MeterDefinition.from_row(session.get(Meter, key))
                batched = usage_totals(session, meter, ranges)
                one_by_one = [query_usage(session, meter, start=a, end=b, customer=c)[0].value for c, a, b in ranges]
                raw = [
                    query_usage(session, meter, start=a, end=b, customer=c, use_rollups=False)[0].value
                    for c, a, b in ranges
                ]
                assert batched == one_by_one == raw, (key, ranges)

    check()


def test_a_span_without_time_is_the_empty_value(session_factory, meters):  # type: ignore[no-untyped-def]
    with session_factory() as session:
        count = MeterDefinition.from_row(session.get(Meter, "t_calls"))
        peak = MeterDefinition.from_row(session.get(Meter, "t_peak"))
        assert usage_totals(session, count, [("x", START, START)]) == [0]
        assert usage_totals(session, peak, [("x", START, START + timedelta(hours=1))]) == [None]
        assert usage_totals(session, peak, []) == []
