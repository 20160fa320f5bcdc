"""Billing-area inputs found by fuzzing that used to answer 500 (subscriptions, invoices, the
billing run).

Times at the ends of the calendar reached ``kit.periods`` (period boundaries past 9999-12-31 or a
local time in year 0): billing instants are now refused outside [1970, 8000) with a 422 naming the
field (``kit.time.check_billing_time``), which keeps every computed date inside the calendar.
Huge usage reached ``round_money`` past its 60 digits: it is now an ``unbillable_usage`` 422 for
the upcoming invoice, and the billing run bills every other subscription and reports the one it
could not."""

from __future__ import annotations

import pytest

from tests.factories import create_customer, create_meter, create_plan, problem, subscribe


@pytest.fixture
def monthly(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="pro",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
        publish=True,
    )
    create_customer(api, id="acme", timezone="Europe/Rome")
    return "pro"


def test_subscription_starting_in_the_last_month_of_9999(api, monthly):
    r = api.post(
        "/v1/subscriptions", json={"id": "s1", "customer": "acme", "plan": "pro", "start": "9999-12-31T23:59:59Z"}
    )
    problem(r, 422, "start")


def test_subscription_starting_at_the_first_instant_west_of_utc(api, monthly):
    create_customer(api, id="nyc", timezone="America/New_York")
    r = api.post(
        "/v1/subscriptions", json={"id": "s1", "customer": "nyc", "plan": "pro", "start": "0001-01-01T00:00:00Z"}
    )
    assert r.status_code in (201, 422), r.text


def test_subscription_whose_first_period_ends_after_9999(api, monthly):
    create_plan(
        api,
        code="millennium",
        interval="year",
        interval_count=1000,
        billing_anchor="anniversary",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
        charges=[],
        publish=True,
    )
    body = {"id": "s1", "customer": "acme", "plan": "millennium", "start": "9000-01-01T00:00:00Z"}
    problem(api.post("/v1/subscriptions", json=body), 422, "start")


def test_subscription_whose_contract_ends_after_9999(api, monthly):
    create_plan(
        api,
        code="long",
        contract_months=1200,
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
        charges=[],
        publish=True,
    )
    body = {"id": "s1", "customer": "acme", "plan": "long", "start": "9998-12-31T00:00:00Z"}
    problem(api.post("/v1/subscriptions", json=body), 422, "start")


def test_upcoming_invoice_at_the_end_of_9999(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "9999-12-31T23:59:59Z"})
    problem(r, 422, "at")


def test_upcoming_invoice_in_the_last_month_for_a_utc_customer(api, monthly):
    create_customer(api, id="utc", timezone="UTC")
    subscribe(api, id="s1", customer="utc", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.get("/v1/customers/utc/upcoming-invoice", params={"at": "9999-12-31T23:59:59.999999Z"})
    problem(r, 422, "at")


def test_upcoming_invoice_with_a_free_window_past_9999(api, monthly):
    create_plan(
        api,
        code="free",
        free_period_days=36500,
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
        publish=True,
    )
    subscribe(api, id="s1", customer="acme", plan="free", start="7999-12-31T00:00:00Z")
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "7999-12-31T00:00:00Z"})
    assert r.status_code == 200, r.text
    r = api.post(
        "/v1/subscriptions", json={"id": "s2", "customer": "acme", "plan": "free", "start": "9998-12-31T00:00:00Z"}
    )
    problem(r, 422, "start")


def test_change_plan_at_the_last_instant(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.post("/v1/subscriptions/s1/change-plan", json={"plan": "pro", "at": "9999-12-31T23:59:59.999999Z"})
    problem(r, 422, "at")


def test_cancel_at_the_end_of_9999(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.post("/v1/subscriptions/s1/cancel", json={"at": "9999-12-31T23:59:59Z", "mode": "period_end"})
    assert r.status_code in (200, 422), r.text


def _huge_usage(api):
    create_meter(api, key="bytes", event_type="transfer", aggregation="sum", value_property="bytes")
    create_plan(
        api,
        code="metered",
        charges=[{"code": "bytes", "meter": "bytes", "model": "flat", "unit_price": "0.01"}],
        publish=True,
    )
    for customer in ("acme", "zeta"):
        create_customer(api, id=customer)
        subscribe(api, id=f"s-{customer}", customer=customer, plan="metered", start="2026-01-01T00:00:00Z")
    events = [
        {
            "id": "big",
            "customer": "acme",
            "type": "transfer",
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {"bytes": 1e300},
        },
        {
            "id": "small",
            "customer": "zeta",
            "type": "transfer",
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {"bytes": 100},
        },
    ]
    assert api.post("/v1/events", json={"events": events}).json()["accepted"] == 2


def test_upcoming_invoice_with_a_huge_usage_value(api):
    _huge_usage(api)
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:tollway:problem:unbillable_usage"
    assert "too large" in r.json()["detail"]


def test_billing_run_with_one_huge_usage_value_still_bills_the_others(api):
    _huge_usage(api)
    r = api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert [f["subscription"] for f in r.json()["failed"]] == ["s-acme"]
    invoices = api.get("/v1/invoices", params={"customer": "zeta"}).json()["data"]
    assert [i["period_start"] for i in invoices] == ["2026-01-01T00:00:00Z"]
