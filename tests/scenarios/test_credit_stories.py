"""A prepaid month, end to end through the HTTP API: top-ups and a promotion, two months of
usage, the invoices a person checks by hand, the ledger that explains them. SQLite and PostgreSQL.

Finalization happens at the billing run's real clock, so the grant meant to expire before it
expires in January 2026 and the others do not expire before 2028.
"""

from __future__ import annotations

from decimal import Decimal

from tests.factories import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    run_billing,
    send_events,
    subscribe,
)


def test_prepaid_weather_api_customer_two_months(api):
    # Plan "starter": 10.00 a month (in advance, full months) + 0.002 per forecast call.
    # Customer "kite": USD, tax 10 %, prepaid, warned at 5.00.
    # Grants (all effective 1 Jan 2026):
    #   topup  50.00 paid         priority 10, no expiry
    #   promo  15.00 promotional  priority 5,  expires 2027-12-31
    #   trial   5.00 promotional  priority 1,  expired 2026-01-20 (pays nothing: gone before any invoice)
    # January: 12,000 calls x 0.002 = 24.00; + fee 10.00 = 34.00; tax 3.40; total 37.40.
    #   credits: promo 15.00 (priority 5 before 10), then topup 22.40  -> 37.40 applied, 0.00 due: paid.
    # February: 20,000 calls = 40.00; + 10.00 = 50.00; tax 5.00; total 55.00.
    #   credits: topup's 27.60 left -> 27.60 applied, 27.40 due: finalized (to be collected).
    # Balance after February: 0.00; ledger: +50 +15 +5 -5 (expired) -15 -22.40 -27.60 = 0.
    create_meter(api, key="forecasts", event_type="forecast")
    create_plan(
        api,
        code="starter",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": False}},
        charges=[{"code": "calls", "meter": "forecasts", "model": "flat", "unit_price": "0.002"}],
        publish=True,
    )
    create_customer(api, id="kite", tax_rate="10", billing_type="prepaid", low_balance_threshold="5.00")
    subscribe(api, id="kite-starter", customer="kite", plan="starter", start="2026-01-01T00:00:00Z")
    jan1 = "2026-01-01T00:00:00Z"
    for body in (
        {"id": "topup", "amount": "50.00", "category": "paid", "priority": 10, "effective_at": jan1},
        {"id": "promo", "amount": "15.00", "category": "promotional", "priority": 5, "effective_at": jan1,
         "expires_at": "2027-12-31T00:00:00Z"},
        {"id": "trial", "amount": "5.00", "category": "promotional", "priority": 1, "effective_at": jan1,
         "expires_at": "2026-01-20T00:00:00Z"},
    ):  # fmt: skip
        r = api.post("/v1/customers/kite/credit-grants", json=body)
        assert r.status_code == 201, r.text
    send_events(api, calls("kite", 12000, day="2026-01-14", type="forecast"))

    up = api.get("/v1/customers/kite/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"}).json()
    assert (up["total"], up["credits_applied"], up["amount_due"]) == ("37.40", "37.40", "0.00")
    view = api.get("/v1/customers/kite/credits", params={"at": "2026-01-20T00:00:00Z"}).json()
    assert (view["balance"], view["ongoing_balance"]) == ("65.00", "27.60")

    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 1
    send_events(api, calls("kite", 20000, day="2026-02-11", type="forecast"))
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    jan, feb = invoices_of(api, "kite")

    assert {line["kind"]: line["amount"] for line in jan["lines"]} == {"recurring_fee": "10.00", "usage": "24.00"}
    assert (jan["subtotal"], jan["tax"], jan["total"]) == ("34.00", "3.40", "37.40")
    assert jan["credits"] == [{"grant": "promo", "amount": "15.00"}, {"grant": "topup", "amount": "22.40"}]
    assert (jan["credits_applied"], jan["amount_due"], jan["status"]) == ("37.40", "0.00", "paid")

    assert (feb["subtotal"], feb["tax"], feb["total"]) == ("50.00", "5.00", "55.00")
    assert feb["credits"] == [{"grant": "topup", "amount": "27.60"}]
    assert (feb["credits_applied"], feb["amount_due"], feb["status"]) == ("27.60", "27.40", "finalized")

    view = api.get("/v1/customers/kite/credits").json()
    assert view["balance"] == "0.00"
    assert {g["id"]: g["status"] for g in view["grants"]} == {
        "promo": "depleted",
        "topup": "depleted",
        "trial": "expired",
    }
    entries = api.get("/v1/customers/kite/credit-ledger").json()["data"]
    assert [(e["kind"], e["grant"], e["amount"]) for e in entries] == [
        ("grant", "topup", "50.00"),
        ("grant", "promo", "15.00"),
        ("grant", "trial", "5.00"),
        ("expired", "trial", "-5.00"),  # written when first seen past its expiry (the credits view)
        ("applied", "promo", "-15.00"),
        ("applied", "topup", "-22.40"),
        ("applied", "topup", "-27.60"),
    ]
    assert sum(Decimal(e["amount"]) for e in entries) == Decimal(view["balance"])
