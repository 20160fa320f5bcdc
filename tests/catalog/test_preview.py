"""POST /v1/plans/{code}/preview: a plan priced for one period by the pricing package.

Figures: Amberflo docs, "Pricing and Rating" (docs.amberflo.io/docs/pricing-and-rating) — "per
block" (first 5,000 calls free, $5 per 1,000; 12,345 calls → $40) and "per unit with dimensions"
(10 support hours in USA at $30 and 40 in EMEA at $40 → $1,900).
"""

from __future__ import annotations

from tests.factories import create_meter, create_plan, problem_fields


def test_amberflo_block_pricing_acceptance(api):
    r = api.post("/v1/meters", json={"key": "api_calls", "event_type": "api_call", "aggregation": "count"})
    assert r.status_code == 201, r.text
    body = {
        "code": "amberflo",
        "name": "Amberflo per block",
        "currency": "USD",
        "charges": [
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "package",
                "package_size": 1000,
                "package_price": "5.00",
                "free_units": 5000,
            }
        ],
    }
    assert api.post("/v1/plans", json=body).status_code == 201
    assert api.post("/v1/plans/amberflo/publish").status_code == 200

    r = api.post("/v1/plans/amberflo/preview", json={"quantities": {"calls": "12345"}, "period_fraction": "1"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["currency"] == "USD" and preview["plan"] == "amberflo"
    assert preview["subtotal"] == "40.00" and preview["total"] == "40.00"
    [line] = preview["lines"]
    assert line["kind"] == "usage" and line["charge"] == "calls" and line["meter"] == "api_calls"
    assert line["quantity"] == "12345" and line["amount"] == "40.00"
    assert line["details"]["billable_quantity"] == "7345"
    assert line["description"]


def test_per_dimension_prices(api):
    create_meter(api, key="support_hours", event_type="support", aggregation="sum", value_property="hours",
                 group_by=["region"])  # fmt: skip
    charge = {
        "code": "support",
        "meter": "support_hours",
        "model": "flat",
        "unit_price": "50",
        "dimension": "region",
        "dimension_prices": {"USA": {"unit_price": "30"}, "EMEA": {"unit_price": "40"}},
    }
    create_plan(api, code="support", charges=[charge], publish=False)  # a draft previews too
    quantities = {"support": {"USA": "10", "EMEA": "40"}}
    r = api.post("/v1/plans/support/preview", json={"quantities": quantities})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["total"] == "1900.00"
    amounts = {line["details"]["dimension"]["region"]: line["amount"] for line in preview["lines"]}
    assert amounts == {"USA": "300.00", "EMEA": "1600.00"}
    # A value without its own price uses the charge's.
    r = api.post("/v1/plans/support/preview", json={"quantities": {"support": {"APAC": "2"}}})
    assert r.json()["total"] == "100.00"


def test_fees_proration_values_and_revenue_share(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="payments", event_type="payment", aggregation="sum", value_property="amount")
    create_meter(api, key="orders", event_type="order", aggregation="sum", value_property="amount")
    create_plan(
        api,
        code="mixed",
        fees={"setup": "99.00", "early_termination": "200.00", "recurring": {"amount": "49.00", "prorate": True}},
        charges=[
            {"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.001"},
            {
                "code": "fees",
                "meter": "payments",
                "model": "percentage",
                "rate": "2.9",
                "fixed_fee_per_event": "0.30",
                "min_per_event": "0.50",
            },
        ],
        revenue_share={"meter": "orders", "model": "fixed", "percent": "15"},
        publish=False,
    )
    body = {
        "quantities": {"calls": 1500, "orders": "1000.00"},
        "values": {"fees": ["0.50", "120.00"]},
        "period_fraction": "0.5",
        "include_setup_fee": True,
    }
    r = api.post("/v1/plans/mixed/preview", json=body)
    assert r.status_code == 200, r.text
    lines = {line["kind"] + ":" + (line["charge"] or ""): line["amount"] for line in r.json()["lines"]}
    # recurring 49.00 x 0.5; calls 1500 x 0.001; fees: max(0.50 x 2.9% + 0.30, 0.50) + 120 x 2.9% + 0.30
    assert lines == {
        "setup_fee:": "99.00",
        "recurring_fee:": "24.50",
        "usage:calls": "1.50",
        "usage:fees": "4.28",
        "revenue_share:": "-150.00",
    }
    assert r.json()["total"] == "-20.72"

    r = api.post(
        "/v1/plans/mixed/preview",
        json={"include_recurring_fee": False, "include_early_termination_fee": True, "values": {"fees": []}},
    )
    assert r.status_code == 200, r.text
    assert [(line["kind"], line["amount"]) for line in r.json()["lines"]] == [
        ("usage", "0.00"),
        ("usage", "0.00"),
        ("revenue_share", "0.00"),
        ("early_termination_fee", "200.00"),
    ]


def test_bad_preview_input_is_422_naming_the_field(api):
    create_meter(api, key="api_calls", event_type="api_call")
    create_meter(api, key="hours", event_type="support", aggregation="sum", value_property="h", group_by=["region"])
    create_plan(
        api,
        code="p",
        charges=[
            {"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "1"},
            {"code": "support", "meter": "hours", "model": "flat", "unit_price": "1", "dimension": "region"},
        ],
        publish=False,
    )
    cases = [
        ({"quantities": {"xyz": "1"}}, "quantities.xyz"),
        ({"quantities": {"calls": "lots"}}, "quantities.calls"),
        ({"quantities": {"calls": 12.5}}, "quantities.calls"),
        ({"quantities": {"calls": "-3"}}, "quantities.calls"),
        ({"quantities": {"calls": {"USA": "1"}}}, "quantities.calls"),
        ({"quantities": {"support": {"USA": "ten"}}}, "quantities.support.USA"),
        ({"values": {"nope": ["1"]}}, "values.nope"),
        ({"period_fraction": "2"}, "period_fraction"),
        ({"period_fraction": 0.5}, "period_fraction"),
        ({"include_setup_fee": "maybe"}, "include_setup_fee"),
        ({"extra": 1}, "extra"),
    ]
    failures = []
    for body, field in cases:
        r = api.post("/v1/plans/p/preview", json=body)
        named = [e["field"] for e in r.json().get("errors", [])]
        if r.status_code != 422 or field not in named:
            failures.append(f"{body}: {r.status_code} {named}")
    assert not failures, "\n".join(failures)
    problem_fields(api.post("/v1/plans/none/preview", json={}), 404)
