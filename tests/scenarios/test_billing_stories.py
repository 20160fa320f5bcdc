"""End-to-end billing stories through the HTTP API: customers, meters, plans (catalog API),
events (POST /v1/events), the billing run, and the invoice a person would check by hand.

Each story states its hand computation. All run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.factories import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    lines_of,
    run_billing,
    send_events,
    subscribe,
)


def test_amberflo_block_pricing(api):
    # Amberflo docs, "Pricing and Rating", per-block example: the first 5,000 calls free, then $5
    # per block of 1,000 calls. 12,345 calls: 7,345 billable -> 8 blocks (partial blocks whole) -> $40.00.
    create_customer(api, id="acme")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="blocks",
        charges=[
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "package",
                "package_size": 1000,
                "package_price": "5.00",
                "free_units": 5000,
            }
        ],
        publish=True,
    )
    subscribe(api, id="s1", customer="acme", plan="blocks", start="2026-01-01T00:00:00Z")
    send_events(api, calls("acme", 12345, day="2026-01-12"))
    up = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"})
    assert up.status_code == 200 and up.json()["total"] == "40.00", up.text  # live, before the close
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 1
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 0  # idempotent
    [inv] = invoices_of(api, "acme")
    assert (inv["number"], inv["total"]) == ("INV-000001", "40.00")
    assert (inv["period_start"], inv["period_end"]) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    [line] = lines_of(inv, "usage")
    assert (line["quantity"], line["amount"]) == ("12345", "40.00")
    assert line["details"]["free_units"] == "5000"
    assert (inv["subtotal"], inv["tax"], inv["total"]) == ("40.00", "0.00", "40.00")


def test_apigee_volume_banded_rate_card_with_setup_fee_and_prorated_recurring_fee(api):
    # Apigee monetization rate plans offer "volume banded" rates: every transaction is priced at
    # the rate of the band the period's total falls in. Bands: <=1,000 at $0.10, <=5,000 at
    # $0.08, above at $0.05. Subscription starts 10 Jan (calendar anchor): first period
    # [10 Jan, 1 Feb) = 22 of 31 days.
    #   setup fee                         99.00
    #   recurring 49.00 x 22/31 = 34.774  34.77
    #   2,500 calls -> band 2: 2,500 x 0.08 = 200.00
    #   subtotal 333.77; tax 22% = 73.4294 -> 73.43; total 407.20
    create_customer(api, id="rome", tax_rate="22")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="banded",
        fees={"setup": "99.00", "recurring": {"amount": "49.00", "in_advance": True, "prorate": True}},
        charges=[
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "volume",
                "tiers": [
                    {"up_to": 1000, "unit_price": "0.10"},
                    {"up_to": 5000, "unit_price": "0.08"},
                    {"up_to": None, "unit_price": "0.05"},
                ],
            }
        ],
        payment_terms_days=15,
        publish=True,
    )
    subscribe(api, id="s1", customer="rome", plan="banded", start="2026-01-10T00:00:00Z")
    send_events(api, calls("rome", 2500, day="2026-01-20"))
    send_events(api, calls("rome", 7, day="2026-01-09"))  # before the subscription: not billed
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "rome")
    assert inv["period_start"] == "2026-01-10T00:00:00Z"
    amounts = {line["kind"]: line["amount"] for line in inv["lines"]}
    assert amounts == {"setup_fee": "99.00", "recurring_fee": "34.77", "usage": "200.00"}
    recurring = lines_of(inv, "recurring_fee")[0]
    assert (recurring["details"]["days_used"], recurring["details"]["days_in_period"]) == (22, 31)
    assert (inv["subtotal"], inv["tax"], inv["total"]) == ("333.77", "73.43", "407.20")
    issued, due = (datetime.fromisoformat(inv[k].replace("Z", "+00:00")) for k in ("issued_at", "due_at"))
    assert due - issued == timedelta(days=15)  # payment_terms_days
    # The second period (February) is full: no setup fee, the full recurring fee.
    run_billing(api, "2026-03-01T00:00:00Z")
    feb = invoices_of(api, "rome")[1]
    assert {line["kind"]: line["amount"] for line in feb["lines"]} == {"recurring_fee": "49.00", "usage": "0.00"}


def test_revenue_share_flexible_bands(api):
    # The developer earns a share of the order value their app brought, in bands (Apigee's
    # flexible revenue share): 10% up to $1,000, 15% above. Orders total $1,250.00:
    #   share = 1,000 x 10% + 250 x 15% = 100.00 + 37.50 = 137.50 (a credit)
    #   recurring platform fee 200.00; transactions 10 x $0.10 = 1.00
    #   total = 200.00 + 1.00 - 137.50 = 63.50
    create_customer(api, id="shop")
    create_meter(api, key="orders", event_type="order")
    create_meter(api, key="order_value", event_type="order", aggregation="sum", value_property="amount")
    create_plan(
        api,
        code="partner",
        fees={"recurring": {"amount": "200.00", "in_advance": True, "prorate": False}},
        charges=[{"code": "tx", "meter": "orders", "model": "flat", "unit_price": "0.10"}],
        revenue_share={
            "meter": "order_value",
            "model": "flexible",
            "bands": [{"up_to": "1000", "percent": "10"}, {"up_to": None, "percent": "15"}],
        },
        publish=True,
    )
    subscribe(api, id="s1", customer="shop", plan="partner", start="2026-03-01T00:00:00Z")
    amounts = [100, 250, 50, 75, 125, 200, 150, 100, 125, 75]  # sum 1,250
    send_events(
        api,
        [
            {
                "id": f"o{i}",
                "customer": "shop",
                "type": "order",
                "timestamp": f"2026-03-{i + 2:02d}T12:00:00Z",
                "properties": {"amount": a},
            }
            for i, a in enumerate(amounts)
        ],
    )
    run_billing(api, "2026-04-01T00:00:00Z")
    [inv] = invoices_of(api, "shop")
    share = lines_of(inv, "revenue_share")[0]
    assert (share["quantity"], share["amount"]) == ("1250", "-137.50")
    assert [b["percent"] for b in share["details"]["bands"]] == ["10", "15"]
    assert lines_of(inv, "usage")[0]["amount"] == "1.00"
    assert inv["total"] == "63.50"


def test_freemium_period_shows_zero_priced_usage(api):
    # free_period_days 14 from 1 Jan: usage in [1 Jan, 15 Jan) is free, shown at 0.00.
    #   1,000 calls on 5 Jan -> free line, 0.00
    #   500 calls on 20 Jan x $0.01 = 5.00
    create_customer(api, id="fm")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="freemium",
        free_period_days=14,
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
        publish=True,
    )
    subscribe(api, id="s1", customer="fm", plan="freemium", start="2026-01-01T00:00:00Z")
    send_events(api, calls("fm", 1000, day="2026-01-05"))
    send_events(api, calls("fm", 500, day="2026-01-20"))
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "fm")
    free, paid = lines_of(inv, "usage")
    assert free["details"]["free_period"] is True
    assert (free["quantity"], free["amount"]) == ("1000", "0.00")
    assert free["details"]["window"]["to"] == "2026-01-15T00:00:00+00:00"
    assert (paid["quantity"], paid["amount"]) == ("500", "5.00")
    assert inv["total"] == "5.00"


def test_prepaid_bundle_overrun(api):
    # Apigee "bundles" rate card: 5 bundles of 1,000 calls prepaid at $8.00 each (40.00 in advance);
    # 7,200 calls -> 2,200 beyond the 5,000 included -> 3 further bundles (whole) x 8.00 = 24.00.
    #   total 64.00
    create_customer(api, id="bd")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="bundles",
        charges=[
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "bundle",
                "bundle_size": 1000,
                "bundle_price": "8.00",
                "included_bundles": 5,
            }
        ],
        publish=True,
    )
    subscribe(api, id="s1", customer="bd", plan="bundles", start="2026-02-01T00:00:00Z")
    send_events(api, calls("bd", 7200, day="2026-02-14"))
    run_billing(api, "2026-03-01T00:00:00Z")
    [inv] = invoices_of(api, "bd")
    prepaid, overrun = lines_of(inv, "bundle")
    assert (prepaid["quantity"], prepaid["amount"]) == ("5", "40.00")
    assert (overrun["quantity"], overrun["amount"]) == ("3", "24.00")
    assert inv["total"] == "64.00"


def test_cancellation_with_early_termination_fee(api):
    # 12-month contract from 1 Jan, $49/month prorated, early termination fee $200.
    # Cancelled immediately on 15 Mar: January 49.00, February 49.00,
    # March [1 Mar, 15 Mar) = 14 of 31 days: 49 x 14/31 = 22.129 -> 22.13, plus 200.00 -> 222.13.
    create_customer(api, id="ct")
    create_plan(
        api,
        code="annual",
        contract_months=12,
        fees={"early_termination": "200.00", "recurring": {"amount": "49.00", "in_advance": True, "prorate": True}},
        charges=[],
        publish=True,
    )
    subscribe(api, id="s1", customer="ct", plan="annual", start="2026-01-01T00:00:00Z")
    r = api.post("/v1/subscriptions/s1/cancel", json={"at": "2026-03-15T00:00:00Z", "mode": "immediate"})
    assert r.status_code == 200, r.text
    assert r.json()["ends_at"] == "2026-03-15T00:00:00Z"
    assert run_billing(api, "2026-06-01T00:00:00Z")["invoices_created"] == 3
    jan, feb, mar = invoices_of(api, "ct")
    assert (jan["total"], feb["total"]) == ("49.00", "49.00")
    assert mar["period_end"] == "2026-03-15T00:00:00Z"
    assert {line["kind"]: line["amount"] for line in mar["lines"]} == {
        "recurring_fee": "22.13",
        "early_termination_fee": "200.00",
    }
    assert mar["total"] == "222.13"
    assert run_billing(api, "2026-09-01T00:00:00Z")["invoices_created"] == 0


def test_mid_month_upgrade(api):
    # Basic ($10/month prorated + $0.02/call) from 1 Jan, upgraded to Pro ($50/month prorated +
    # $0.01/call) on 16 Jan 00:00 UTC.
    #   Basic [1 Jan, 16 Jan): 10 x 15/31 = 4.8387 -> 4.84; 1,000 calls x 0.02 = 20.00 -> 24.84
    #   Pro  [16 Jan, 1 Feb): 50 x 16/31 = 25.806 -> 25.81; 2,000 calls x 0.01 = 20.00 -> 45.81
    create_customer(api, id="up")
    create_meter(api, key="api_calls", event_type="api_call")
    recurring = {"in_advance": True, "prorate": True}
    create_plan(
        api,
        code="basic",
        fees={"recurring": {"amount": "10.00", **recurring}},
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.02"}],
        publish=True,
    )
    create_plan(
        api,
        code="pro",
        fees={"setup": "30.00", "recurring": {"amount": "50.00", **recurring}},
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.01"}],
        publish=True,
    )
    subscribe(api, id="s1", customer="up", plan="basic", start="2026-01-01T00:00:00Z")
    send_events(api, calls("up", 1000, day="2026-01-10"))
    send_events(api, calls("up", 2000, day="2026-01-20"))
    r = api.post(
        "/v1/subscriptions/s1/change-plan",
        json={"plan": "pro", "at": "2026-01-16T00:00:00Z", "charge_setup_fee": False},
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["previous"] == "s1" and new["plan"] == "pro" and new["start"] == "2026-01-16T00:00:00Z"
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 2
    basic, pro = invoices_of(api, "up")
    assert (basic["subscription"], basic["period_end"]) == ("s1", "2026-01-16T00:00:00Z")
    assert {line["kind"]: line["amount"] for line in basic["lines"]} == {"recurring_fee": "4.84", "usage": "20.00"}
    assert basic["total"] == "24.84"
    assert pro["subscription"] == new["id"] and pro["period_start"] == "2026-01-16T00:00:00Z"
    assert {line["kind"]: line["amount"] for line in pro["lines"]} == {"recurring_fee": "25.81", "usage": "20.00"}
    assert pro["total"] == "45.81"


def test_tokyo_customer_billed_in_yen(api):
    # A customer in Asia/Tokyo on a JPY plan: the January period is January in Tokyo,
    # [2025-12-31T15:00Z, 2026-01-31T15:00Z). Graduated: first 1,000 calls free, then ¥0.5.
    #   3,003 calls in January (the last at 14:59Z on 31 Jan = 23:59 JST); one at 15:00Z is February.
    #   usage: 2,003 x 0.5 = 1,001.5 -> ¥1,002 (half up, JPY has no minor unit)
    #   recurring ¥1,000 -> subtotal ¥2,002; tax 10% = 200.2 -> ¥200; total ¥2,202
    create_customer(api, id="tokyo", currency="JPY", timezone="Asia/Tokyo", tax_rate="10")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="jp",
        currency="JPY",
        fees={"recurring": {"amount": "1000", "in_advance": True, "prorate": True}},
        charges=[
            {
                "code": "calls",
                "meter": "api_calls",
                "model": "graduated",
                "tiers": [{"up_to": 1000, "unit_price": "0"}, {"up_to": None, "unit_price": "0.5"}],
            }
        ],
        publish=True,
    )
    subscribe(api, id="s1", customer="tokyo", plan="jp", start="2026-01-01T00:00:00+09:00")
    send_events(api, calls("tokyo", 3002, day="2026-01-05"))
    send_events(
        api,
        [
            {"id": "edge-in", "customer": "tokyo", "type": "api_call", "timestamp": "2026-01-31T14:59:59Z"},
            {"id": "edge-out", "customer": "tokyo", "type": "api_call", "timestamp": "2026-01-31T15:00:00Z"},
        ],
    )
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 1
    [inv] = invoices_of(api, "tokyo")
    assert (inv["period_start"], inv["period_end"]) == ("2025-12-31T15:00:00Z", "2026-01-31T15:00:00Z")
    assert inv["currency"] == "JPY"
    usage = lines_of(inv, "usage")[0]
    assert (usage["quantity"], usage["amount"]) == ("3003", "1002")
    assert [t["units"] for t in usage["details"]["tiers"]] == ["1000", "2003"]
    assert (inv["subtotal"], inv["tax"], inv["total"]) == ("2002", "200", "2202")
    # The documents show the period on the customer's calendar.
    html = api.get(f"/v1/invoices/{inv['id']}/html").text
    assert "Billing period (Asia/Tokyo)" in html and "1 Jan - 31 Jan 2026" in html


def test_late_event_adjustment_on_next_invoice(api):
    # January is finalized with 100 calls x $0.50 = 50.00. Then 3 late January events arrive and
    # one counted January event is voided: January should have been 102 calls = 51.00.
    # February: 10 calls = 5.00, plus an adjustment of +1.00 (2 calls) -> 6.00.
    create_customer(api, id="late")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="flat",
        charges=[{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}],
        publish=True,
    )
    subscribe(api, id="s1", customer="late", plan="flat", start="2026-01-01T00:00:00Z")
    send_events(api, calls("late", 100, day="2026-01-10"))
    run_billing(api, "2026-02-01T00:00:00Z")
    [jan] = invoices_of(api, "late")
    assert jan["total"] == "50.00"
    send_events(api, calls("late", 3, day="2026-01-30", prefix="late"))
    assert api.post("/v1/events/e-late-2026-01-10-0/void").status_code == 200
    send_events(api, calls("late", 10, day="2026-02-03"))
    upcoming = api.get("/v1/customers/late/upcoming-invoice", params={"at": "2026-02-15T00:00:00Z"}).json()
    assert upcoming["total"] == "6.00"
    run_billing(api, "2026-03-01T00:00:00Z")
    jan_again, feb = invoices_of(api, "late")
    assert jan_again == jan  # a finalized invoice never changes
    [adj] = lines_of(feb, "adjustment")
    assert (adj["charge"], adj["quantity"], adj["amount"]) == ("calls", "2", "1.00")
    assert adj["details"]["adjusts_invoice"] == jan["number"]
    assert (adj["details"]["billed_amount"], adj["details"]["recomputed_amount"]) == ("50", "51")
    assert feb["total"] == "6.00"
    # Nothing new since February's cutoff: March carries no adjustment.
    run_billing(api, "2026-04-01T00:00:00Z")
    assert lines_of(invoices_of(api, "late")[2], "adjustment") == []


def test_three_charges_on_three_meters_with_filters(api):
    # calls:  count of api_call with status < 500, $0.001 each
    # bytes:  sum of bytes of GET requests, $0.25 per started 1,000,000 bytes (package)
    # users:  distinct users (unique_count), $2.00 each
    # Events: 100 GET, status 200, 50,000 bytes, users u0..u4; 20 POST, status 503, 10,000 bytes, user u5.
    #   calls 100 x 0.001 = 0.10; bytes 5,000,000 (GET only) -> 5 packages x 0.25 = 1.25;
    #   users 6 x 2.00 = 12.00; total 13.35
    create_customer(api, id="multi")
    create_meter(api, key="ok_calls", event_type="api_call", filters=[{"property": "status", "op": "lt", "value": 500}])
    create_meter(
        api,
        key="get_bytes",
        event_type="api_call",
        aggregation="sum",
        value_property="bytes",
        filters=[{"property": "method", "op": "eq", "value": "GET"}],
    )
    create_meter(api, key="users", event_type="api_call", aggregation="unique_count", value_property="user")
    create_plan(
        api,
        code="metered",
        charges=[
            {"code": "calls", "meter": "ok_calls", "model": "flat", "unit_price": "0.001"},
            {
                "code": "bytes",
                "meter": "get_bytes",
                "model": "package",
                "package_size": 1000000,
                "package_price": "0.25",
            },
            {"code": "users", "meter": "users", "model": "flat", "unit_price": "2.00"},
        ],
        publish=True,
    )
    subscribe(api, id="s1", customer="multi", plan="metered", start="2026-01-01T00:00:00Z")
    events = [
        {
            "id": f"g{i}",
            "customer": "multi",
            "type": "api_call",
            "timestamp": "2026-01-07T10:00:00Z",
            "properties": {"method": "GET", "status": 200, "bytes": 50000, "user": f"u{i % 5}"},
        }
        for i in range(100)
    ] + [
        {
            "id": f"p{i}",
            "customer": "multi",
            "type": "api_call",
            "timestamp": "2026-01-08T10:00:00Z",
            "properties": {"method": "POST", "status": 503, "bytes": 10000, "user": "u5"},
        }
        for i in range(20)
    ]
    send_events(api, events)
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "multi")
    got = {line["charge"]: (line["meter"], line["quantity"], line["amount"]) for line in inv["lines"]}
    assert got == {
        "calls": ("ok_calls", "100", "0.10"),
        "bytes": ("get_bytes", "5000000", "1.25"),
        "users": ("users", "6", "12.00"),
    }
    assert inv["total"] == "13.35"
