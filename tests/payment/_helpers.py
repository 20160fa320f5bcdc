"""Helpers for payment tests: a billed invoice, the worker's two steps, signed Stripe webhooks."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from stripe import WebhookSignature

from tests.factories import calls, create_customer, create_meter, create_plan, run_billing, send_events, subscribe
from tests.payment.conftest import WEBHOOK_SECRET
from tests.payment.fake_stripe import event
from tollway.worker import Worker

PLAN_CHARGES = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.015"}]


def billed_invoice(api: TestClient, *, customer: str = "acme", n: int = 7, **customer_fields: Any) -> dict[str, Any]:
    """One finalized invoice for ``customer``: a 19.99 setup fee + n calls at 0.015, tax 22%
    (n = 7: 19.99 + 0.11 = 20.10, tax 4.42, total 24.52)."""
    create_customer(api, id=customer, name="Acme Srl", email="ops@acme.test", tax_rate="22", **customer_fields)
    if api.get("/v1/meters/api_calls").status_code == 404:
        create_meter(api, key="api_calls", event_type="api_call")
        create_plan(api, code="pro", charges=PLAN_CHARGES, fees={"setup": "19.99"}, payment_terms_days=14, publish=True)
    subscribe(api, id=f"s-{customer}", customer=customer, plan="pro", start="2026-01-01T00:00:00Z")
    send_events(api, calls(customer, n, day="2026-01-05"))
    run_billing(api, "2026-02-01T00:00:00Z")
    r = api.get("/v1/invoices", params={"customer": customer})
    first = min(r.json()["data"], key=lambda i: i["period_start"])
    return dict(first)


def work(worker: Worker) -> int:
    """What the worker does: drain the outbox (queues pushes), then the payment sync."""
    worker.outbox_step()
    return worker.payment_step()


def post_event(api: TestClient, type_: str, invoice: dict[str, Any], *, event_id: str, secret: str = WEBHOOK_SECRET):  # type: ignore[no-untyped-def]
    body = event(type_, invoice, event_id=event_id)
    header = WebhookSignature.generate_signature_header(body, secret)
    return api.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json", "Authorization": ""},
    )
