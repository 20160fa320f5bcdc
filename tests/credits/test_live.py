"""Credits through a real ``tollway serve`` process (uvicorn, its own worker thread, committed
transactions seen by the next request)."""

from __future__ import annotations

import httpx

from tests.credits.conftest import PER_CALL
from tests.factories import calls, create_customer, create_meter, create_plan, send_events, subscribe


def test_grant_bill_and_read_the_ledger_through_a_real_server(api, live_server):
    # The catalog is set up in-process on the same database; the credits go through the server.
    create_customer(api, id="live", billing_type="prepaid")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="p", charges=PER_CALL, publish=True)
    subscribe(api, id="s", customer="live", plan="p", start="2026-01-01T00:00:00Z")
    send_events(api, calls("live", 10, day="2026-01-05"))  # 5.00
    key = live_server.key("admin")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:

        def ok(r: httpx.Response, status: int = 200) -> dict:
            assert r.status_code == status, r.text
            return dict(r.json())

        body = {"id": "g", "amount": "3.00", "effective_at": "2026-01-01T00:00:00Z"}
        ok(http.post("/v1/customers/live/credit-grants", json=body), 201)
        assert ok(http.post("/v1/customers/live/credit-grants", json=body))["amount"] == "3.00"  # retry: 200
        conflict = http.post("/v1/customers/live/credit-grants", json={**body, "amount": "4.00"})
        assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
        bad = http.post("/v1/customers/live/credit-grants", json={**body, "id": "g2", "amount": "-1"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "amount"
        ok(http.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"}))
        [inv] = ok(http.get("/v1/invoices", params={"customer": "live"}))["data"]
        assert (inv["total"], inv["credits_applied"], inv["amount_due"]) == ("5.00", "3.00", "2.00")
        assert inv["credits"] == [{"grant": "g", "amount": "3.00"}]
        view = ok(http.get("/v1/customers/live/credits"))
        assert (view["balance"], view["grants"][0]["status"]) == ("0.00", "depleted")
        entries = ok(http.get("/v1/customers/live/credit-ledger"))["data"]
        assert [(e["kind"], e["amount"], e["invoice"]) for e in entries] == [
            ("grant", "3.00", None),
            ("applied", "-3.00", inv["id"]),
        ]
        ok(http.post("/v1/credit-grants/g/void"))
        assert http.post("/v1/credit-grants/g/void").status_code == 409
