"""Counters (folded by the worker) plus pending events are exactly the meter's value: count and
sum meters with filters, duplicates (in a batch and across batches), voided events (folded or
still pending), backdated and other customers' events, on SQLite and PostgreSQL, with database
and Redis counters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.limits.conftest import CHARGES, check, fold, iso, now, send, setup_limited
from tollway.kit.time import utcnow
from tollway.limit.service import current_keys, standing

METERS = [
    {
        "key": "api_calls",
        "event_type": "api_call",
        "aggregation": "count",
        "filters": [{"property": "status", "op": "lt", "value": 500}],
    },
    {
        "key": "bytes",
        "event_type": "api_call",
        "aggregation": "sum",
        "value_property": "usage.bytes",
        "filters": [{"property": "endpoint", "op": "in", "value": ["/a", "/b"]}],
    },
]
LIMITS = [
    {"meter": "api_calls", "max": 1000, "window": "day", "action": "block"},
    {"meter": "api_calls", "max": 5000, "window": "period", "action": "notify"},
    {"meter": "api_calls", "max": 100, "window": "minute", "action": "block"},
    {"meter": "bytes", "max": "1000000000", "window": "hour", "action": "block"},
    {"meter": "bytes", "max": "1000000000", "window": "period", "action": "block"},
]


def event(i: int, *, customer: str = "acme", ago: timedelta = timedelta(0), **props: Any) -> dict[str, Any]:
    return {
        "id": f"e-{customer}-{i}",
        "customer": customer,
        "type": "api_call",
        "timestamp": iso(now() - ago),
        "properties": props,
    }


def stored_counters(app: Any, customer: str) -> dict[tuple[str, str], Decimal]:
    """The counters as stored, read without seeding (so a wrong increment cannot hide)."""
    keeper = app.state.limits
    with app.state.sessionmaker() as session:
        found = standing(session, customer, utcnow())
        assert found is not None
        profile = found.profile
        keys = current_keys(profile, utcnow())
        stored, values = keeper.backend.read(session, customer, list(keys.values()))
        assert stored is not None and stored.fresh and stored.version == profile.version
        return {(k.meter, k.window): values.get(k, Decimal(0)) for k in keys.values()}


def usage_of(api: Any, limit: dict[str, Any], customer: str = "acme") -> Decimal:
    r = api.get(
        f"/v1/meters/{limit['meter']}/usage",
        params={"customer": customer, "from": limit["window_start"], "to": limit["resets_at"]},
    )
    assert r.status_code == 200, r.text
    return Decimal(r.json()["data"][0]["value"])


def test_counters_equal_usage_queries(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    setup_limited(api, limits=LIMITS, meters=METERS)
    first = check(api)  # seeds the counters; from here on they are only added to
    assert first["allowed"] is True and {x["used"] for x in first["limits"]} == {"0"}

    batch = [
        event(1, status=200, endpoint="/a", usage={"bytes": 100}),
        event(2, status=503, endpoint="/a", usage={"bytes": "0.1"}),  # not a call (filter); bytes not numeric
        event(3, status=201, endpoint="/c", usage={"bytes": 7}),  # bytes filtered out by endpoint
        event(4, status=200, endpoint="/b", usage={"bytes": 0.1}),
        event(5, status=200, endpoint="/b", usage={"bytes": 0.2}),
        event(6, status=200, endpoint="/b"),  # no bytes at all
        event(1, status=200, endpoint="/a", usage={"bytes": 999}),  # repeat within the batch
        event(7, status=200, endpoint="/a", usage={"bytes": 12.5}, ago=timedelta(days=1, hours=1)),  # backdated
        event(8, customer="other", status=200, endpoint="/a", usage={"bytes": 5}),
    ]
    result = send(api, batch)
    assert result["accepted"] == 8 and result["duplicates"] == 1
    assert fold(app) == 8  # from here on, these are read from the counters
    again = [
        event(4, status=200, endpoint="/b", usage={"bytes": 1e6}),  # a duplicate of a folded event
        event(9, status=200, endpoint="/a"),
        event(10, status=200, endpoint="/a", usage={"bytes": 3}),
    ]
    again_result = send(api, again)
    assert again_result["accepted"] == 2 and again_result["duplicates"] == 1
    assert api.post("/v1/events/e-acme-5/void").status_code == 200  # folded: taken off the counters
    assert api.post("/v1/events/e-acme-5/void").status_code == 200  # twice is once
    assert api.post("/v1/events/e-acme-10/void").status_code == 200  # pending: never counted

    def compare(state: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
        for limit in state["limits"]:
            assert Decimal(limit["used"]) == usage_of(api, limit), limit
        return {(x["meter"], x["window"]): Decimal(x["used"]) for x in state["limits"]}

    by = compare(check(api, quantity="0"))  # counters plus the pending event 9
    assert by[("api_calls", "day")] == 5  # 1, 3, 4, 5 (voided), 6, 9, 10 (voided) → 5 counted
    assert by[("api_calls", "period")] == 6  # and the backdated 7
    assert by[("bytes", "hour")] == Decimal("100.1")  # 100 + 0.1 (0.2 and 3 voided), exactly
    stored = stored_counters(app, "acme")
    assert stored[("api_calls", "day")] == 4 and stored[("bytes", "hour")] == Decimal("100.1")  # 9 is pending
    assert fold(app) == 2
    assert stored_counters(app, "acme") == by  # everything folded, the voided 10 never counted
    assert compare(check(api, quantity="0")) == by


def test_a_subscription_change_seeds_again(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    setup_limited(api, limits=[{"meter": "api_calls", "max": 3, "window": "day"}])
    send(api, [event(i) for i in range(2)])  # before any check: seeded from the events
    assert check(api)["limits"][0]["used"] == "2"
    send(api, [event(i) for i in range(2, 4)])
    state = check(api)
    assert state["allowed"] is False and state["reason"] == "limit_reached"
    assert state["limits"][0]["used"] == "4" and state["limits"][0]["remaining"] == "0"
    # A second subscription with a higher ceiling changes the profile: counters are seeded again.
    big = {"code": "big", "currency": "USD", "charges": CHARGES, "limits": [{"meter": "api_calls", "max": 10}]}
    r = api.post("/v1/plans", json=big)
    assert r.status_code == 201 and api.post("/v1/plans/big/publish").status_code == 200
    r = api.post("/v1/subscriptions", json={"id": "sub-2", "customer": "acme", "plan": "big"})
    assert r.status_code == 201, r.text
    state = check(api)
    # The new subscription's period starts now: the earlier events are not in it.
    assert {(x["window"], x["used"]) for x in state["limits"]} == {("day", "4"), ("period", "0")}
    send(api, [event(9)])
    fold(app)
    assert stored_counters(app, "acme") == {("api_calls", "day"): 5, ("api_calls", "period"): 1}
