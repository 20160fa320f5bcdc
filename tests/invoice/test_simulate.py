"""The pricing simulator: a candidate plan priced on last month's real usage, beside the invoices.

Hand computation (package charge: Stripe's "package pricing" example shape, $5 per 1,000 units,
partial packages charged whole; 5,000 units free each month):

| customer | units  | invoiced on "pro"             | on the draft "flat" ($0.002/unit + $4) | difference |
|----------|--------|-------------------------------|----------------------------------------|------------|
| a        |  6,200 | ceil(1,200/1,000) x 5 = 10.00 | 12.40 + 4 = 16.40                      |  +6.40     |
| b        |  3,000 | 0.00                          |  6.00 + 4 = 10.00                      | +10.00     |
| c        | 30,000 | ceil(25,000/1,000) x 5 = 125  | 60.00 + 4 = 64.00                      | -61.00     |
| total    |        | 135.00                        | 90.40                                  | -44.60     |
"""

from __future__ import annotations

from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe

PRO = {
    "interval": "month",
    "billing_anchor": "calendar",
    "charges": [
        {"code": "units", "meter": "units", "model": "package", "package_size": 1000, "package_price": "5.00",
         "free_units": 5000}
    ],
}
FLAT = {
    "interval": "month",
    "billing_anchor": "calendar",
    "fees": {"recurring": {"amount": "4.00", "in_advance": True, "prorate": True}},
    "charges": [{"code": "units", "meter": "units", "model": "flat", "unit_price": "0.002"}],
}


def _month(api, usage: dict[str, int], currency: str = "USD") -> None:  # type: ignore[no-untyped-def]
    create_meter(api, key="units", event_type="work", aggregation="sum", value_property="n")
    create_plan(api, code="pro", publish=True, **PRO)
    create_plan(api, code="flat", publish=False, **FLAT)
    for cid in usage:
        create_customer(api, id=cid, currency=currency, timezone="UTC")
        subscribe(api, id=f"sub_{cid}", customer=cid, plan="pro", start="2026-01-01T00:00:00Z")
    send_events(
        api,
        [
            {"id": f"w_{cid}", "customer": cid, "type": "work", "timestamp": "2026-01-15T12:00:00Z",
             "properties": {"n": n}}
            for cid, n in usage.items()
        ],
    )
    r = api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["invoices_created"] == len(usage), r.text


def test_simulator_matches_the_hand_computation(api) -> None:  # type: ignore[no-untyped-def]
    _month(api, {"a": 6200, "b": 3000, "c": 30000})
    r = api.post("/v1/plans/flat/simulate", json={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    sim = r.json()
    assert (sim["invoices"], sim["customers"]) == (3, 3)
    assert (sim["invoiced"], sim["simulated"], sim["difference"]) == ("135.00", "90.40", "-44.60")
    by_customer = {row["customer"]: row for row in sim["rows"]}
    assert {c: (r["invoiced"], r["simulated"], r["difference"]) for c, r in by_customer.items()} == {
        "a": ("10.00", "16.40", "6.40"),
        "b": ("0.00", "10.00", "10.00"),
        "c": ("125.00", "64.00", "-61.00"),
    }
    assert [w["customer"] for w in sim["winners"]] == ["c"]
    assert [lo["customer"] for lo in sim["losers"]] == ["b", "a"]
    assert sim["skipped"] == []
    # The invoiced side is what the invoices say.
    invoices = api.get("/v1/invoices", params={"customer": "c"}).json()["data"]
    assert invoices[0]["subtotal"] == by_customer["c"]["invoiced"]
    # Simulating the current plan reproduces the invoices exactly.
    same = api.post("/v1/plans/pro/simulate", json={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})
    assert same.json()["difference"] == "0.00"
    assert same.json()["winners"] == [] and same.json()["losers"] == []


def test_other_currency_is_skipped_and_bad_input_named(api) -> None:  # type: ignore[no-untyped-def]
    _month(api, {"a": 6200})
    create_plan(api, code="euro", publish=False, currency="EUR", **FLAT)
    r = api.post("/v1/plans/euro/simulate", json={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200
    assert r.json()["rows"] == [] and r.json()["skipped"][0]["reason"] == "invoiced in USD, the plan is in EUR"
    # An empty window prices nothing.
    empty = api.post("/v1/plans/flat/simulate", json={"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"})
    assert empty.json()["invoices"] == 0 and empty.json()["simulated"] == "0.00"
    bad = api.post("/v1/plans/flat/simulate", json={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to"
    missing = api.post("/v1/plans/flat/simulate", json={"to": "2026-01-01T00:00:00Z"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "from"
    unknown = api.post("/v1/plans/nope/simulate", json={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"})
    assert unknown.status_code == 404
