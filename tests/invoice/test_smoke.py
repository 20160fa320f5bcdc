from __future__ import annotations

from tests.invoice._helpers import (
    calls,
    create_customer,
    create_meter,
    create_plan,
    invoices_of,
    run_billing,
    send_events,
    subscribe,
)


def test_amberflo_month(api):
    create_customer(api, id="acme")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="starter",
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
    )
    subscribe(api, id="sub_1", customer="acme", plan="starter", start="2026-01-01T00:00:00Z")
    send_events(api, calls("acme", 12345, day="2026-01-05"))
    up = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"})
    assert up.status_code == 200, up.text
    assert up.json()["total"] == "40.00", up.json()
    res = run_billing(api, "2026-02-01T00:00:00Z")
    assert res["invoices_created"] == 1
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 0
    [inv] = invoices_of(api, "acme")
    assert inv["total"] == "40.00" and inv["number"] == "INV-000001", inv
