"""The worker's fold (``fold.apply_pending``) must leave exactly the rollup rows a rebuild from
the raw events computes: every column of every row, per customer and of every customer. On
PostgreSQL the fold aggregates each meter's partials per customer once and merges those into
the rows of every customer; here the partials hold several customers per hour and group,
several groups per customer-hour, missing group values, ties on the latest timestamp, and a
meter whose filter keeps no event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tollway.db import session_scope
from tollway.meter.fold import apply_pending
from tollway.meter.rollup import rebuild_all
from tollway.models import MeterRollup, UsageChange

START = datetime(2026, 4, 2, 9, 58, tzinfo=UTC)

METERS = [
    {"key": "calls", "aggregation": "count", "group_by": ["endpoint", "region"]},
    {"key": "none", "aggregation": "count", "filters": [{"property": "status", "op": "eq", "value": 999}]},
    {
        "key": "bytes",
        "aggregation": "sum",
        "value_property": "bytes",
        "filters": [{"property": "status", "op": "lt", "value": 500}],
    },
    {"key": "peak", "aggregation": "max", "value_property": "bytes", "group_by": ["region"]},
    {"key": "low", "aggregation": "min", "value_property": "bytes", "group_by": ["endpoint"]},
    {"key": "last", "aggregation": "latest", "value_property": "bytes", "group_by": ["region"]},
    {"key": "users", "aggregation": "unique_count", "value_property": "user"},
]


def events() -> list[dict]:
    out = []
    for i in range(240):
        props: dict = {
            "endpoint": ["/a", "/b", "/c"][i % 3],
            "status": [200, 404, 500, 201][i % 4],
            "user": f"u{i % 7}",
        }
        if i % 5:
            props["region"] = ["eu", "us"][i % 2]
        if i % 11:
            props["bytes"] = [i * 13 % 1000, (i * 7 % 300) / 4, "n/a"][i % 3]
        out.append(
            {
                "id": f"ev{i:03d}",
                "customer": ["acme", "globex", "initech"][i % 3 if i % 4 else 0],
                "type": "api_call" if i % 17 else "other",
                # Four events per timestamp (ties on the latest broken by id), across two hours.
                "timestamp": (START + timedelta(seconds=30 * (i // 4))).isoformat().replace("+00:00", "Z"),
                "properties": props,
            }
        )
    return out


def rows(session_factory) -> list[tuple]:
    with session_factory() as s:
        got = s.scalars(select(MeterRollup)).all()
        return sorted(
            (
                r.meter_key,
                r.customer,
                r.bucket_start,
                r.group_key,
                r.event_count,
                r.value_sum,
                r.value_min,
                r.value_max,
                r.latest_at,
                r.latest_id,
                r.latest_value,
            )
            for r in got
        )


def test_fold_leaves_the_rows_a_rebuild_computes(api, session_factory):
    for m in METERS:
        assert api.post("/v1/meters", json={"event_type": "api_call", **m}).status_code == 201
    evs = events()
    for i in range(0, len(evs), 60):
        assert api.post("/v1/events", json={"events": evs[i : i + 60]}).json()["accepted"] == 60
    assert api.post("/v1/events/ev013/void").status_code == 200  # pending, voided: never counts
    total = 0
    while n := _apply(session_factory, 37):  # several folds, each adding to the rows of the last
        total += n
    assert total == sum(e["type"] == "api_call" for e in evs)
    folded = rows(session_factory)
    assert {r[0] for r in folded} == {"calls", "bytes", "peak", "low", "last"}  # "none" keeps no event
    with session_factory() as s:
        changed = set(s.scalars(select(UsageChange.customer)))
    assert changed == {"acme", "globex", "initech"}
    with session_scope(session_factory) as s:
        rebuild_all(s)
    assert folded == rows(session_factory)


def _apply(session_factory, limit: int) -> int:
    with session_scope(session_factory) as s:
        return apply_pending(s, limit=limit)
