"""Subscriptions API: creation rules (published, in dates, audience, private via admin), reads,
cancellation modes, plan changes, and the outbox messages they write."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import create_customer, create_meter, create_plan, invoices_of, run_billing, subscribe
from tollway.models import OutboxMessage

CALLS = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}]


def _setup(api, **plan_fields):
    create_customer(api, id="acme", category="partners", company="acme-group")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", charges=CALLS, publish=True, **plan_fields)


def _errors(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in r.json()["errors"]}


def test_create_get_list(api):
    _setup(api)
    sub = subscribe(
        api,
        id="sub_1",
        customer="acme",
        plan="pro",
        start="2026-01-10T00:00:00Z",
        overrides={"notification_target": 20000},
    )
    assert sub["status"] in ("active", "ended") and sub["customer"] == "acme" and sub["plan"] == "pro"
    assert sub["overrides"] == {"notification_target": 20000}
    assert sub["timezone"] == "UTC"
    subscribe(api, id="sub_2", customer="acme", plan="pro", start="2026-02-01T00:00:00Z")  # several allowed
    create_customer(api, id="other")
    subscribe(api, id="sub_3", customer="other", plan="pro", start="2026-02-01T00:00:00Z")
    assert api.get("/v1/subscriptions/sub_1").json()["start"] == "2026-01-10T00:00:00Z"
    listed = api.get("/v1/subscriptions", params={"customer": "acme"}).json()
    assert [s["id"] for s in listed["data"]] == ["sub_1", "sub_2"]
    page = api.get("/v1/subscriptions", params={"limit": 2}).json()
    assert len(page["data"]) == 2 and page["next"]
    rest = api.get("/v1/subscriptions", params={"limit": 2, "after": page["next"]}).json()
    assert [s["id"] for s in rest["data"]] == ["sub_3"]
    assert _errors(api.get("/v1/subscriptions/nope"), 404) == {}
    r = api.post("/v1/subscriptions", json={"id": "sub_1", "customer": "acme", "plan": "pro"})
    assert r.status_code == 409


def test_creation_rules_name_the_field(api):
    _setup(api)
    create_plan(api, code="draft", charges=CALLS, publish=False)
    create_plan(api, code="ended", charges=CALLS, end_date="2099-01-01T00:00:00Z", publish=True)
    create_plan(api, code="vip", charges=CALLS, audience={"type": "companies", "values": ["other-co"]}, publish=True)
    create_plan(api, code="secret", charges=CALLS, visibility="private", publish=True)
    body = {"id": "s", "customer": "acme", "start": "2026-02-01T00:00:00Z"}
    assert "plan" in _errors(api.post("/v1/subscriptions", json={**body, "plan": "draft"}), 422)
    ended = {**body, "plan": "ended", "start": "2099-01-01T00:00:00Z"}  # at the plan's end_date
    assert "plan" in _errors(api.post("/v1/subscriptions", json=ended), 422)
    assert "plan" in _errors(api.post("/v1/subscriptions", json={**body, "plan": "missing"}), 422)
    assert "customer" in _errors(api.post("/v1/subscriptions", json={**body, "plan": "vip"}), 422)
    assert "customer" in _errors(api.post("/v1/subscriptions", json={**body, "plan": "pro", "customer": "ghost"}), 422)
    assert "start" in _errors(api.post("/v1/subscriptions", json={**body, "plan": "pro", "start": "2026-02-01"}), 422)
    assert "overrides.x" in _errors(
        api.post("/v1/subscriptions", json={**body, "plan": "pro", "overrides": {"x": 1}}), 422
    )
    # A private plan is available through the admin API (every subscription endpoint is admin-only).
    assert api.post("/v1/subscriptions", json={**body, "plan": "secret"}).status_code == 201


def test_subscriptions_need_an_admin_key(anon, api, ingest_key):
    r = anon.post("/v1/subscriptions", json={}, headers={"Authorization": f"Bearer {ingest_key}"})
    assert r.status_code == 403
    assert anon.get("/v1/subscriptions").status_code == 401


def test_cancel_at_period_end_and_rules(api):
    _setup(api)
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    assert "at" in _errors(api.post("/v1/subscriptions/s1/cancel", json={"at": "2025-12-01T00:00:00Z"}), 422)
    r = api.post("/v1/subscriptions/s1/cancel", json={"at": "2026-02-10T12:00:00Z", "mode": "period_end"})
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["ends_at"] == "2026-03-01T00:00:00Z" and sub["cancel_mode"] == "period_end"
    assert sub["canceled_at"] == "2026-02-10T12:00:00Z"
    assert api.post("/v1/subscriptions/s1/cancel", json={"at": "2026-02-11T00:00:00Z"}).status_code == 409
    assert "mode" in _errors(api.post("/v1/subscriptions/s1/cancel", json={"mode": "later"}), 422)
    assert run_billing(api, "2026-06-01T00:00:00Z")["invoices_created"] == 2  # January, February
    assert api.get("/v1/subscriptions/s1").json()["status"] == "ended"


def test_cancel_inside_an_invoiced_period_is_refused(api):
    _setup(api)
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    run_billing(api, "2026-02-01T00:00:00Z")
    errors = _errors(api.post("/v1/subscriptions/s1/cancel", json={"at": "2026-01-20T00:00:00Z"}), 422)
    assert "already invoiced" in errors["at"]


def test_early_termination_fee_only_within_the_contract(api):
    _setup(api, contract_months=3, fees={"early_termination": "75.00"})
    subscribe(api, id="early", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    subscribe(api, id="late", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    # period_end inside the term (ends 1 Mar < 1 Apr): fee; immediate after the term: none.
    api.post("/v1/subscriptions/early/cancel", json={"at": "2026-02-05T00:00:00Z", "mode": "period_end"})
    api.post("/v1/subscriptions/late/cancel", json={"at": "2026-04-15T00:00:00Z", "mode": "immediate"})
    run_billing(api, "2026-06-01T00:00:00Z")
    by_sub: dict[str, list] = {}
    for inv in invoices_of(api, "acme"):
        by_sub.setdefault(inv["subscription"], []).append(inv)
    early_fees = [line for inv in by_sub["early"] for line in inv["lines"] if line["kind"] == "early_termination_fee"]
    assert [line["amount"] for line in early_fees] == ["75.00"]
    assert by_sub["early"][-1]["period_end"] == "2026-03-01T00:00:00Z"
    assert len(by_sub["late"]) == 4 and by_sub["late"][-1]["period_end"] == "2026-04-15T00:00:00Z"
    assert not [line for inv in by_sub["late"] for line in inv["lines"] if line["kind"] == "early_termination_fee"]


def test_change_plan_rules(api):
    _setup(api)
    create_plan(api, code="vip", charges=CALLS, audience={"type": "categories", "values": ["enterprise"]}, publish=True)
    create_plan(api, code="team", charges=CALLS, publish=True)
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    assert "customer" in _errors(
        api.post("/v1/subscriptions/s1/change-plan", json={"plan": "vip", "at": "2026-01-15T00:00:00Z"}), 422
    )
    assert "at" in _errors(
        api.post("/v1/subscriptions/s1/change-plan", json={"plan": "team", "at": "2026-01-01T00:00:00Z"}), 422
    )
    r = api.post("/v1/subscriptions/s1/change-plan", json={"plan": "team", "at": "2026-01-15T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "s1~1" and r.json()["previous"] == "s1"
    old = api.get("/v1/subscriptions/s1").json()
    assert old["changed_to"] == "s1~1" and old["ends_at"] == "2026-01-15T00:00:00Z"
    assert api.post("/v1/subscriptions/s1/change-plan", json={"plan": "pro"}).status_code == 409
    r = api.post("/v1/subscriptions/s1~1/change-plan", json={"plan": "pro", "at": "2026-02-10T00:00:00Z", "id": "mine"})
    assert r.json()["id"] == "mine"


def test_anniversary_plan_periods_follow_the_start_day(api):
    _setup(api)
    create_plan(api, code="anniv", charges=CALLS, billing_anchor="anniversary", publish=True)
    subscribe(api, id="s1", customer="acme", plan="anniv", start="2026-01-31T09:30:00Z")
    run_billing(api, "2026-05-01T00:00:00Z")
    periods = [(i["period_start"], i["period_end"]) for i in invoices_of(api, "acme")]
    assert periods == [
        ("2026-01-31T09:30:00Z", "2026-02-28T09:30:00Z"),
        ("2026-02-28T09:30:00Z", "2026-03-31T09:30:00Z"),
        ("2026-03-31T09:30:00Z", "2026-04-30T09:30:00Z"),
    ]


def test_new_york_customer_month_starts_at_local_midnight(api):
    create_customer(api, id="ny", timezone="America/New_York")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", charges=CALLS, publish=True)
    subscribe(api, id="s1", customer="ny", plan="pro", start="2026-03-01T05:00:00Z")
    up = api.get("/v1/customers/ny/upcoming-invoice", params={"at": "2026-03-20T00:00:00Z"}).json()
    # March starts at 05:00Z (EST) and April at 04:00Z (EDT).
    assert (up["period_start"], up["period_end"]) == ("2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z")


def test_outbox_records_subscription_events(api, session_factory):
    _setup(api)
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    api.post("/v1/subscriptions/s1/cancel", json={"at": "2026-01-20T00:00:00Z"})
    with session_factory() as session:
        topics = [m.topic for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert topics == ["subscription.created", "subscription.canceled"]
