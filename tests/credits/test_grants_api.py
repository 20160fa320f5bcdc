"""Credit grants through the HTTP API: create (idempotent on id), void, the credits view, the
ledger, and every bad input as a 4xx naming the field or the conflict. SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.credits.conftest import credits, grant, ledger, replay
from tests.factories import calls, create_customer, send_events, subscribe


def test_a_grant_is_created_once_and_a_retry_returns_it(api, acme):
    body = {"category": "promotional", "priority": 10, "effective_at": "2026-01-01T00:00:00Z", "description": "launch"}
    g = grant(api, acme, id="cg_1", amount="50", **body)
    assert (g["amount"], g["remaining"], g["currency"], g["status"]) == ("50.00", "50.00", "USD", "active")
    assert (g["category"], g["priority"], g["expires_at"]) == ("promotional", 10, None)
    again = grant(api, acme, id="cg_1", amount="50.00", expect=200, **body)  # same body, same grant
    assert again == g
    r = api.post(f"/v1/customers/{acme}/credit-grants", json={"id": "cg_1", "amount": "60.00", **body})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["amount"]
    create_customer(api, id="other")
    r = api.post("/v1/customers/other/credit-grants", json={"id": "cg_1", "amount": "50", **body})
    assert r.status_code == 409 and [e["field"] for e in r.json()["errors"]] == ["customer"]
    assert [e["kind"] for e in ledger(api, acme)] == ["grant"]  # the retries wrote nothing


def test_effective_at_defaults_to_now_and_a_retry_without_it_matches(api, acme):
    g = grant(api, acme, id="cg_now", amount="5")
    assert grant(api, acme, id="cg_now", amount="5", expect=200) == g
    assert api.get("/v1/credit-grants/cg_now").json() == g


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "1.005"}, "amount"),  # USD has two decimals: refused, not rounded
        ({"amount": "10", "currency": "EUR"}, "currency"),
        ({"amount": "10", "currency": "XYZ"}, "currency"),
        ({"amount": "10", "category": "gift"}, "category"),
        ({"amount": "10", "priority": -1}, "priority"),
        ({"amount": "10", "effective_at": "2026-02-01T00:00:00Z", "expires_at": "2026-01-01T00:00:00Z"}, "expires_at"),
        ({"amount": "10", "effective_at": "2026-02-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z"}, "expires_at"),
        ({"amount": "10", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),  # before the default: now
        ({"amount": "10", "effective_at": "yesterday"}, "effective_at"),
        ({"amount": "10", "id": "has space"}, "id"),
        ({"amount": "10", "colour": "red"}, "colour"),
    ],
)
def test_bad_grants_are_refused_naming_the_field(api, acme, body, field):
    r = api.post(f"/v1/customers/{acme}/credit-grants", json={"id": "cg_bad", **body})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]], r.text


def test_unknown_customer_and_unknown_grant_are_404(api):
    r = api.post("/v1/customers/nobody/credit-grants", json={"id": "cg", "amount": "10"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    assert api.post("/v1/credit-grants/nope/void").status_code == 404
    assert api.get("/v1/customers/nobody/credits").status_code == 404
    assert api.get("/v1/customers/nobody/credit-ledger").status_code == 404
    assert api.get("/v1/customers/acme/credits", params={"at": "soon"}).status_code in (404, 422)


def test_bad_query_parameters_name_the_parameter(api, acme):
    r = api.get(f"/v1/customers/{acme}/credits", params={"at": "soon"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at"
    r = api.get(f"/v1/customers/{acme}/credit-ledger", params={"after": "%%%"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "after"


def test_a_zero_decimal_currency_takes_whole_amounts(api):
    create_customer(api, id="tokyo", currency="JPY")
    assert grant(api, "tokyo", id="cg_jpy", amount="1000")["amount"] == "1000"
    r = api.post("/v1/customers/tokyo/credit-grants", json={"id": "cg_jpy2", "amount": "10.5"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"


def test_void_takes_what_is_left_once(api, acme):
    grant(api, acme, id="cg_v", amount="30.00", effective_at="2026-01-01T00:00:00Z")
    r = api.post("/v1/credit-grants/cg_v/void")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["remaining"], r.json()["amount"]) == ("voided", "0.00", "30.00")
    again = api.post("/v1/credit-grants/cg_v/void")
    assert again.status_code == 409 and "already voided" in again.json()["detail"]
    entries = ledger(api, acme)
    assert [(e["kind"], e["amount"], e["grant"]) for e in entries] == [
        ("grant", "30.00", "cg_v"),
        ("voided", "-30.00", "cg_v"),
    ]
    assert credits(api, acme)["balance"] == "0.00" == str(replay(entries))


def test_credits_view_balance_statuses_and_ongoing_balance(api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 9, day="2026-01-10"))  # 4.50 so far in January
    grant(api, acme, id="a", amount="6.00", effective_at="2026-01-01T00:00:00Z")
    grant(api, acme, id="b", amount="4.00", effective_at="2026-01-01T00:00:00Z", expires_at="2026-01-20T00:00:00Z")
    grant(api, acme, id="c", amount="7.00", effective_at="2026-01-25T00:00:00Z")
    grant(api, acme, id="d", amount="1.00", effective_at="2026-01-01T00:00:00Z")
    api.post("/v1/credit-grants/d/void").raise_for_status()
    view = credits(api, acme, at="2026-01-15T00:00:00Z")
    # On 15 Jan: a (6.00) is usable; b expired on 20 Jan, which is past now: its expiry is in the
    # ledger and balances are current values (not a time machine), so b pays nothing any more;
    # c is effective from the 25th only; d is voided. Ongoing: 6.00 - 4.50 of January's usage.
    assert (view["currency"], view["balance"], view["ongoing_balance"]) == ("USD", "6.00", "1.50")
    assert view["upcoming_total"] == "4.50"
    assert {g["id"]: (g["status"], g["remaining"]) for g in view["grants"]} == {
        "a": ("active", "6.00"),
        "b": ("expired", "0.00"),
        "c": ("active", "7.00"),
        "d": ("voided", "0.00"),
    }
    later = credits(api, acme, at="2026-01-26T00:00:00Z")
    assert (later["balance"], later["ongoing_balance"]) == ("13.00", "8.50")
    entries = ledger(api, acme)
    assert [(e["kind"], e["grant"], e["amount"]) for e in entries] == [
        ("grant", "a", "6.00"),
        ("grant", "b", "4.00"),
        ("expired", "b", "-4.00"),  # b was created already expired: its expiry is written at once
        ("grant", "c", "7.00"),
        ("grant", "d", "1.00"),
        ("voided", "d", "-1.00"),
    ]
    assert next(e for e in entries if e["kind"] == "expired")["at"] == "2026-01-20T00:00:00Z"
    assert replay(entries) == Decimal(credits(api, acme)["balance"]) == Decimal("13.00")


def test_ongoing_balance_without_credit_or_subscription(api, acme):
    view = credits(api, acme)
    assert (view["balance"], view["ongoing_balance"], view["grants"]) == ("0.00", "0.00", [])


def test_customers_gain_billing_type_and_low_balance_threshold(api):
    c = create_customer(api, id="pre", billing_type="prepaid", low_balance_threshold="5.00")
    assert (c["billing_type"], c["low_balance_threshold"]) == ("prepaid", "5")
    assert create_customer(api, id="post")["billing_type"] == "postpaid"
    r = api.patch("/v1/customers/pre", json={"billing_type": "postpaid", "low_balance_threshold": None})
    assert r.status_code == 200 and (r.json()["billing_type"], r.json()["low_balance_threshold"]) == ("postpaid", None)
    for body, field in (
        ({"billing_type": "credit"}, "billing_type"),
        ({"low_balance_threshold": "-1"}, "low_balance_threshold"),
        ({"low_balance_threshold": 2.5}, "low_balance_threshold"),
    ):
        r = api.patch("/v1/customers/pre", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
