"""``credits_exhausted``: a prepaid customer is refused by ``POST /v1/limits/check`` once its
ongoing credit balance (credits minus the upcoming invoice so far) is <= 0 — whether usage, an
invoice paid with credits or a voided grant took it there. Postpaid customers never are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import event

from tests.conftest import free_port
from tests.factories import run_billing
from tests.limits.conftest import iso, now, send
from tests.limits.test_check import calls

HALF = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]
"""0.50 per call: a 2.00 grant pays four calls."""
DAY_LIMIT = [{"meter": "api_calls", "max": 100, "window": "day", "action": "block"}]


def _plan(api: Any) -> None:
    assert (
        api.post("/v1/meters", json={"key": "api_calls", "event_type": "api_call", "aggregation": "count"}).status_code
        == 201
    )
    plan = {"code": "pay", "currency": "USD", "charges": HALF, "limits": DAY_LIMIT}
    assert api.post("/v1/plans", json=plan).status_code == 201
    assert api.post("/v1/plans/pay/publish").status_code == 200


def _customer(api: Any, customer: str, billing_type: str, *, since: timedelta = timedelta(days=3)) -> None:
    body = {"id": customer, "currency": "USD", "timezone": "UTC", "billing_type": billing_type}
    assert api.post("/v1/customers", json=body).status_code == 201
    sub = {"id": f"sub-{customer}", "customer": customer, "plan": "pay", "start": iso(now() - since)}
    assert api.post("/v1/subscriptions", json=sub).status_code == 201


def _grant(api: Any, customer: str, grant_id: str, amount: str, **fields: Any) -> None:
    r = api.post(f"/v1/customers/{customer}/credit-grants", json={"id": grant_id, "amount": amount, **fields})
    assert r.status_code == 201, r.text


def _decide(api: Any, customer: str = "acme", **body: Any) -> tuple[bool, str | None]:
    r = api.post("/v1/limits/check", json={"customer": customer, **body})
    assert r.status_code == 200, r.text
    return r.json()["allowed"], r.json()["reason"]


def test_usage_and_a_voided_grant_exhaust_a_prepaid_customer(api, counters) -> None:  # type: ignore[no-untyped-def]
    _plan(api)
    _customer(api, "acme", "prepaid")
    _grant(api, "acme", "cg_1", "2.00")
    assert _decide(api) == (True, None)
    send(api, calls(3))  # 1.50 of 2.00
    assert _decide(api) == (True, None)
    send(api, calls(1, start=3))  # 2.00 of 2.00: the ongoing balance is 0
    r = api.post("/v1/limits/check", json={"customer": "acme", "meter": "api_calls", "quantity": "0"})
    assert r.json()["allowed"] is False and r.json()["reason"] == "credits_exhausted"
    day = r.json()["limits"][0]  # the limits are still reported
    assert (day["used"], day["remaining"]) == ("4", "96")
    assert _decide(api, quantity="1000") == (False, "limit_reached")  # a limit refuses first
    _grant(api, "acme", "cg_2", "0.50")  # a top-up: 0.50 left
    assert _decide(api) == (True, None)
    r = api.post("/v1/credit-grants/cg_2/void")
    assert r.status_code == 200, r.text
    assert _decide(api) == (False, "credits_exhausted")
    # a grant not yet in effect pays nothing
    _grant(api, "acme", "cg_3", "10.00", effective_at=iso(now() + timedelta(days=1)))
    assert _decide(api) == (False, "credits_exhausted")


def test_postpaid_customers_are_never_refused_for_credits(api, counters) -> None:  # type: ignore[no-untyped-def]
    _plan(api)
    _customer(api, "globex", "postpaid")
    send(api, calls(5, customer="globex"))
    assert _decide(api, "globex") == (True, None)
    # a prepaid customer without a subscription: nothing to bill, the contract's no_subscription
    assert api.post("/v1/customers", json={"id": "newco", "billing_type": "prepaid"}).status_code == 201
    assert _decide(api, "newco") == (True, "no_subscription")


def test_postpaid_checks_make_no_extra_query(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    """The billing type comes with the check's one standing query: a postpaid customer's check
    runs exactly as many statements as before credits existed; a prepaid one reads its credits."""
    _plan(api)
    _customer(api, "globex", "postpaid")
    _customer(api, "acme", "prepaid")
    _grant(api, "acme", "cg_1", "5.00")
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = app.state.engine
    _decide(api, "globex")  # seeds the counters once
    _decide(api, "acme")
    event.listen(engine, "before_cursor_execute", count)
    try:
        _decide(api, "globex")
        postpaid = [s for s in statements if "credit" in s.lower()]
        assert postpaid == [], postpaid
        statements.clear()
        _decide(api, "acme")
        assert any("credit_grants" in s for s in statements), statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_an_invoice_paid_with_credits_exhausts_them(api, counters) -> None:  # type: ignore[no-untyped-def]
    _plan(api)
    this_month = now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    body = {"id": "acme", "currency": "USD", "timezone": "UTC", "billing_type": "prepaid"}
    assert api.post("/v1/customers", json=body).status_code == 201
    sub = {"id": "sub-acme", "customer": "acme", "plan": "pay", "start": iso(last_month)}
    assert api.post("/v1/subscriptions", json=sub).status_code == 201
    _grant(api, "acme", "cg_1", "3.00", effective_at=iso(last_month))
    old = [{"id": f"old-{i}", "customer": "acme", "type": "api_call", "timestamp": iso(last_month + timedelta(hours=i))}
           for i in range(6)]  # fmt: skip
    send(api, old)  # 3.00 of last month's usage, not yet invoiced
    assert _decide(api) == (True, None)  # this period's upcoming invoice is 0.00
    run_billing(api, iso(this_month))
    invoice = api.get("/v1/invoices", params={"customer": "acme"}).json()["data"][0]
    assert (invoice["total"], invoice["credits_applied"], invoice["status"]) == ("3.00", "3.00", "paid")
    assert _decide(api) == (False, "credits_exhausted")


def test_credits_are_enforced_while_redis_is_down(app, api, counters) -> None:  # type: ignore[no-untyped-def]
    if counters != "redis":
        return  # the database backend has no Redis to lose
    _plan(api)
    _customer(api, "acme", "prepaid")
    _grant(api, "acme", "cg_1", "0.50")
    send(api, calls(1))
    backend = app.state.limits.backend
    alive = backend.client
    backend.client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    app.state.limits.fallback = "allow"
    try:
        assert _decide(api) == (False, "credits_exhausted")  # read from the database
        _grant(api, "acme", "cg_2", "1.00")
        assert _decide(api) == (True, "limits_unavailable")
    finally:
        backend.client = alive
        app.state.limits.fallback = "database"
