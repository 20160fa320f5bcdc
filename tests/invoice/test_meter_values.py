"""The billing reads in tollway.meter.values agree with query_usage (same events, same cutoff)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import create_meter, send_events
from tollway.meter import values
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import query_usage
from tollway.meter.values import Window, event_values, meter_totals, meter_totals_many
from tollway.models import Meter

JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def test_meter_totals_and_event_values_match_query_usage(api, session_factory):
    specs = [
        {"key": "calls", "aggregation": "count"},
        {"key": "ok", "aggregation": "count", "filters": [{"property": "status", "op": "lt", "value": 500}]},
        {"key": "bytes", "aggregation": "sum", "value_property": "bytes"},
        {"key": "get_bytes", "aggregation": "sum", "value_property": "bytes",
         "filters": [{"property": "method", "op": "eq", "value": "GET"}]},
        {"key": "biggest", "aggregation": "max", "value_property": "bytes"},
        {"key": "smallest", "aggregation": "min", "value_property": "bytes"},
        {"key": "users", "aggregation": "unique_count", "value_property": "user"},
        {"key": "none", "aggregation": "max", "value_property": "missing"},
    ]  # fmt: skip
    for spec in specs:
        create_meter(api, event_type="api_call", **spec)
    events = [
        {"id": f"e{i}", "customer": "c", "type": "api_call", "timestamp": f"2026-01-{i % 28 + 1:02d}T10:00:00Z",
         "properties": {"bytes": (i * 37) % 1000 + 0.5 * (i % 2), "status": 200 if i % 5 else 503,
                        "method": "GET" if i % 3 else "POST", "user": f"u{i % 7}"}}
        for i in range(60)
    ] + [
        {"id": "text-bytes", "customer": "c", "type": "api_call", "timestamp": "2026-01-03T00:00:00Z",
         "properties": {"bytes": "12", "user": "u99"}},
        {"id": "other", "customer": "d", "type": "api_call", "timestamp": "2026-01-03T00:00:00Z",
         "properties": {"bytes": 5}},
        {"id": "feb", "customer": "c", "type": "api_call", "timestamp": "2026-02-01T00:00:00Z",
         "properties": {"bytes": 5}},
    ]  # fmt: skip
    send_events(api, events)
    cutoff = datetime.now(UTC)
    send_events(api, [{"id": "late", "customer": "c", "type": "api_call", "timestamp": "2026-01-20T00:00:00Z",
                       "properties": {"bytes": 4000, "user": "u100"}}])  # fmt: skip
    assert api.post("/v1/events/e7/void").status_code == 200
    with session_factory() as session:
        meters = [MeterDefinition.from_row(session.get(Meter, s["key"])) for s in specs]
        for as_of in (None, cutoff):
            totals = meter_totals(session, meters, start=JAN, end=FEB, customer="c", as_of=as_of)
            for m in meters:
                [row] = query_usage(session, m, start=JAN, end=FEB, customer="c", as_of=as_of, use_rollups=False)
                assert totals[m.key] == row.value, (m.key, as_of)
        bytes_meter = meters[2]
        for as_of in (None, cutoff):
            values = event_values(session, bytes_meter, start=JAN, end=FEB, customer="c", as_of=as_of)[None]
            [row] = query_usage(session, bytes_meter, start=JAN, end=FEB, customer="c", as_of=as_of)
            assert sum(values) == row.value
        # as of the cutoff: the late event is not yet there and e7 was not yet voided
        at_cutoff = event_values(session, bytes_meter, start=JAN, end=FEB, customer="c", as_of=cutoff)[None]
        now = event_values(session, bytes_meter, start=JAN, end=FEB, customer="c")[None]
        assert len(at_cutoff) == 60 and len(now) == 60  # one voided, one late
        split = event_values(session, meters[0], start=JAN, end=FEB, customer="c", split_by="method")
        assert set(split) == {"GET", "POST", None}  # the late and text-bytes events have no method
        assert sum(len(v) for v in split.values()) == 61  # 60 - 1 voided + late + text-bytes (count meter)


def test_meter_totals_many_equals_one_read_per_window(api, session_factory, monkeypatch):
    """The billing run's batched read: each window (customer, start, end) gets what its own
    ``meter_totals`` read gets, as of a cutoff, across statements of a few windows each."""
    specs = [
        {"key": "calls", "aggregation": "count"},
        {"key": "errors", "aggregation": "count", "filters": [{"property": "status", "op": "gte", "value": 500}]},
        {"key": "bytes", "aggregation": "sum", "value_property": "bytes"},
        {"key": "biggest", "aggregation": "max", "value_property": "bytes"},
    ]  # fmt: skip
    for spec in specs:
        create_meter(api, event_type="api_call", **spec)
    send_events(api, [
        {"id": f"{c}-{i}", "customer": c, "type": "api_call",
         "timestamp": f"2026-01-{i % 31 + 1:02d}T{i % 24:02d}:00:00Z",
         "properties": {"bytes": i * (k + 3), "status": 503 if i % 4 == 0 else 200}}
        for k, c in enumerate(("a", "b", "c")) for i in range(20 + 7 * k)
    ])  # fmt: skip
    cutoff = datetime.now(UTC)
    send_events(api, [{"id": "late", "customer": "b", "type": "api_call", "timestamp": "2026-01-09T00:00:00Z",
                       "properties": {"bytes": 10**6, "status": 500}}])  # fmt: skip
    assert api.post("/v1/events/a-3/void").status_code == 200
    mid = datetime(2026, 1, 15, 12, tzinfo=UTC)
    windows = [
        Window("a", JAN, FEB), Window("b", JAN, FEB), Window("c", JAN, mid), Window("c", mid, FEB),
        Window("nobody", JAN, FEB), Window("a", FEB, FEB), Window("b", JAN, mid),
    ]  # fmt: skip
    monkeypatch.setattr(values, "WINDOWS_PER_STATEMENT", 3)
    with session_factory() as session:
        meters = [MeterDefinition.from_row(session.get(Meter, s["key"])) for s in specs]
        for as_of in (None, cutoff):
            many = meter_totals_many(session, meters, windows, as_of=as_of)
            one_by_one = [
                meter_totals(session, meters, start=w.start, end=w.end, customer=w.customer, as_of=as_of)
                for w in windows
            ]
            assert many == one_by_one, as_of
        assert many[0]["calls"] == 20  # a-3 counted: voided after the cutoff
        assert many[1]["bytes"] == sum(i * 4 for i in range(27))  # the late event is not
        assert many[4] == {"calls": 0, "errors": 0, "bytes": 0, "biggest": None}
