"""Catalog inputs found by fuzzing: numbers past 28 digits in plan documents, preview quantities
too large to price."""

from __future__ import annotations

import pytest

from tests.factories import JSON, problem


@pytest.fixture
def plan(api):
    meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
    assert api.post("/v1/meters", json=meter).status_code == 201
    body = {
        "code": "pro",
        "currency": "USD",
        "fees": {"setup": "99.00", "recurring": {"amount": "49.00", "in_advance": True, "prorate": True}},
        "charges": [
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "package",
                "package_size": "0.000000000001",
                "package_price": "999999999999999999",
            },
            {"code": "pct", "meter": "api_calls", "model": "percentage", "rate": "2.5", "fixed_fee_per_event": "0.30"},
        ],
    }
    r = api.post("/v1/plans", json=body)
    assert r.status_code == 201, r.text


def test_notification_target_and_limit_beyond_28_digits(api):
    meter = {"key": "api_calls", "event_type": "api_call", "aggregation": "count"}
    assert api.post("/v1/meters", json=meter).status_code == 201
    raw = (
        '{"code":"big","currency":"USD","fees":{"setup":"1"},'
        f'"notifications":{{"meter":"api_calls","target":{10**30},"thresholds":[50,100]}},'
        f'"limits":[{{"meter":"api_calls","max":"{10**40}"}}]}}'
    )
    r = api.post("/v1/plans", content=raw, headers=JSON)
    assert r.status_code == 201, r.text
    got = api.get("/v1/plans/big").json()
    assert got["notifications"]["target"] == str(10**30)
    assert got["limits"][0]["max"] == str(10**40)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantities": {"calls": "1" + "0" * 18}}, "quantities.calls"),
        ({"quantities": {"calls": "9" * 100}}, "quantities.calls"),
        ({"quantities": {"calls": 10**400}}, "quantities.calls"),
        ({"quantities": {"pct": "1"}, "values": {"pct": ["1", "-" + "9" * 60]}}, "values.pct[1]"),
    ],
)
def test_preview_quantity_too_large_to_price(api, plan, body, field):
    problem(api.post("/v1/plans/pro/preview", json=body), 422, field)


def test_preview_at_the_largest_quantity_prices_exactly(api, plan):
    q = "9" * 18
    body = {"quantities": {"calls": q}, "values": {"pct": ["10.00"]}, "include_setup_fee": True}
    r = api.post("/v1/plans/pro/preview", json=body)
    assert r.status_code == 200, r.text
    # 999,999,999,999,999,999 / 0.000000000001 packages x 999,999,999,999,999,999 each.
    calls = next(line for line in r.json()["lines"] if line["charge"] == "calls")
    assert calls["amount"] == str(int(q) * 10**12 * int("9" * 18)) + ".00"
