"""Billing-area inputs found by fuzzing that still answer 500 (subscriptions, invoices, the
billing run). Their code belongs to another engineer: each test states the behaviour we want and
is marked ``xfail(strict=True, raises=…)`` with the cause, so it turns into a failure the day the
cause is fixed (then drop the mark) and any other failure shows up as one.

Times at the ends of the calendar reach ``kit.periods`` (period boundaries past 9999-12-31 or a
local time in year 0) from the subscription and invoice services, which do not turn the
arithmetic error into a 422 naming the field. Huge usage reaches ``pricing`` unbounded."""

from __future__ import annotations

from decimal import InvalidOperation

import pytest

from tests.invoice._helpers import create_customer, create_meter, create_plan, subscribe
from tests.robustness._helpers import problem

CALENDAR_EDGE = (ValueError, OverflowError)  # "year 10000 is out of range", "date value out of range"


@pytest.fixture
def monthly(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="pro",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
    )
    create_customer(api, id="acme", timezone="Europe/Rome")
    return "pro"


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="POST /v1/subscriptions stores it, then subscription.endpoints.to_schema -> terms.period_at -> "
    "kit.periods._local: 9999-12-31T23:59:59Z is in year 10000 in Europe/Rome (OverflowError)",
)
def test_subscription_starting_in_the_last_month_of_9999(api, monthly):
    r = api.post(
        "/v1/subscriptions", json={"id": "s1", "customer": "acme", "plan": "pro", "start": "9999-12-31T23:59:59Z"}
    )
    problem(r, 422, "start")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="subscription.endpoints.to_schema -> terms.period_at -> kit.periods._local: the start is in year 0 "
    "in America/New_York (OverflowError)",
)
def test_subscription_starting_at_the_first_instant_west_of_utc(api, monthly):
    create_customer(api, id="nyc", timezone="America/New_York")
    r = api.post(
        "/v1/subscriptions", json={"id": "s1", "customer": "nyc", "plan": "pro", "start": "0001-01-01T00:00:00Z"}
    )
    assert r.status_code in (201, 422), r.text


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="subscription.endpoints.to_schema -> terms.period_at -> kit.periods.boundary -> add_months: the "
    "first 1000-year period ends in year 10000 (ValueError)",
)
def test_subscription_whose_first_period_ends_after_9999(api, monthly):
    create_plan(
        api,
        code="millennium",
        interval="year",
        interval_count=1000,
        billing_anchor="anniversary",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
    )
    body = {"id": "s1", "customer": "acme", "plan": "millennium", "start": "9000-01-01T00:00:00Z"}
    problem(api.post("/v1/subscriptions", json=body), 422, "start")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="subscription.endpoints.to_schema -> terms.contract_end -> kit.periods.add_months: start + 1200 "
    "months is in year 10098 (ValueError)",
)
def test_subscription_whose_contract_ends_after_9999(api, monthly):
    create_plan(
        api,
        code="long",
        contract_months=1200,
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
    )
    body = {"id": "s1", "customer": "acme", "plan": "long", "start": "9998-12-31T00:00:00Z"}
    problem(api.post("/v1/subscriptions", json=body), 422, "start")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="invoice.service.upcoming_invoice -> terms.period_at -> kit.periods._local: `at` is in year 10000 "
    "in Europe/Rome (OverflowError)",
)
def test_upcoming_invoice_at_the_end_of_9999(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "9999-12-31T23:59:59Z"})
    problem(r, 422, "at")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="invoice.service.upcoming_invoice -> terms.period_at -> kit.periods.boundary -> add_months: the "
    "period holding `at` (UTC customer) ends in year 10000 (ValueError)",
)
def test_upcoming_invoice_in_the_last_month_for_a_utc_customer(api, monthly):
    create_customer(api, id="utc", timezone="UTC")
    subscribe(api, id="s1", customer="utc", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.get("/v1/customers/utc/upcoming-invoice", params={"at": "9999-12-31T23:59:59.999999Z"})
    problem(r, 422, "at")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="invoice.compute.usage_lines -> subscription.terms.free_until -> kit.periods.local_midnight_after_days: "
    "start + 36500 days is after 9999 (OverflowError)",
)
def test_upcoming_invoice_with_a_free_window_past_9999(api, monthly):
    create_plan(
        api,
        code="free",
        free_period_days=36500,
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
    )
    subscribe(api, id="s1", customer="acme", plan="free", start="9998-12-31T00:00:00Z")
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "9998-12-31T00:00:00Z"})
    assert r.status_code == 200, r.text


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="change-plan stores the new subscription, then subscription.endpoints.to_schema -> terms.period_at -> "
    "kit.periods._local: `at` is in year 10000 in Europe/Rome (OverflowError)",
)
def test_change_plan_at_the_last_instant(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.post("/v1/subscriptions/s1/change-plan", json={"plan": "pro", "at": "9999-12-31T23:59:59.999999Z"})
    problem(r, 422, "at")


@pytest.mark.xfail(
    strict=True,
    raises=CALENDAR_EDGE,
    reason="subscription.service.cancel_subscription -> terms.period_at -> kit.periods._local: `at` is in year "
    "10000 in Europe/Rome (OverflowError)",
)
def test_cancel_at_the_end_of_9999(api, monthly):
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    r = api.post("/v1/subscriptions/s1/cancel", json={"at": "9999-12-31T23:59:59Z", "mode": "period_end"})
    assert r.status_code in (200, 422), r.text


def _huge_usage(api):
    create_meter(api, key="bytes", event_type="transfer", aggregation="sum", value_property="bytes")
    create_plan(
        api, code="metered", charges=[{"code": "bytes", "meter": "bytes", "model": "flat", "unit_price": "0.01"}]
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


@pytest.mark.xfail(
    strict=True,
    raises=InvalidOperation,
    reason="invoice.compute -> pricing flat model -> pricing.lines.PricedLine.build -> kit.money.round_money: "
    "quantize() of an amount past MONEY_CONTEXT's 60 digits; pricing puts no bound on quantities",
)
def test_upcoming_invoice_with_a_huge_usage_value(api):
    _huge_usage(api)
    r = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"})
    assert r.status_code < 500, r.text


@pytest.mark.xfail(
    strict=True,
    raises=InvalidOperation,
    reason="billing run: one subscription's pricing error aborts the whole run (invoice.finalize.run_billing "
    "does not isolate subscriptions), so later subscriptions are never billed",
)
def test_billing_run_with_one_huge_usage_value_still_bills_the_others(api):
    _huge_usage(api)
    r = api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    invoices = api.get("/v1/invoices", params={"customer": "zeta"}).json()["data"]
    assert [i["period_start"] for i in invoices] == ["2026-01-01T00:00:00Z"]
