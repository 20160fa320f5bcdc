"""``POST /v1/webhooks/stripe``: signatures made by the library's own helper, each event applied
once, invoice.paid / payment_failed / voided / marked_uncollectible, unknown types ignored."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from stripe import WebhookSignature

from tests.payment._helpers import billed_invoice, post_event, work
from tests.payment.conftest import WEBHOOK_SECRET
from tollway.models import Invoice, OutboxMessage, PaymentInboxEvent
from tollway.worker import Worker


def _pushed(api, session_factory, settings, fake_stripe, **customer_fields):  # type: ignore[no-untyped-def]
    inv = billed_invoice(api, **customer_fields)
    work(Worker(session_factory, settings))
    return inv, fake_stripe.only_invoice()


def _topics(session_factory, topic: str) -> list[dict]:  # type: ignore[type-arg]
    with session_factory() as session:
        return [m.payload for m in session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic))]


def _inbox(session_factory) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(PaymentInboxEvent)) or 0)


def test_invoice_paid_marks_paid_once(anon, api, session_factory, settings, fake_stripe):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    paid = {**stripe_inv, "status": "paid"}
    r = post_event(anon, "invoice.paid", paid, event_id="evt_paid_1")
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "outcome": "applied"}
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "paid" and body["paid_at"]
    assert body["payment"]["status"] == "paid" and body["payment"]["external_id"] == stripe_inv["id"]
    assert [p["id"] for p in _topics(session_factory, "invoice.paid")] == [inv["id"]]

    again = post_event(anon, "invoice.paid", paid, event_id="evt_paid_1")  # Stripe delivers again
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert len(_topics(session_factory, "invoice.paid")) == 1
    # A failure reported after the payment never undoes it.
    late = post_event(anon, "invoice.payment_failed", stripe_inv, event_id="evt_failed_late")
    assert late.json()["outcome"] == "applied"
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "paid" and body["payment"]["status"] == "paid"
    assert _topics(session_factory, "invoice.payment_failed") == []


def test_payment_failed_sets_failed_and_emits(anon, api, session_factory, settings, fake_stripe):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    r = post_event(anon, "invoice.payment_failed", stripe_inv, event_id="evt_f1")
    assert r.status_code == 200 and r.json()["outcome"] == "applied"
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "finalized" and body["payment"]["status"] == "failed"
    [event] = _topics(session_factory, "invoice.payment_failed")
    assert event["id"] == inv["id"] and event["customer"] == "acme"
    # A later success wins.
    post_event(anon, "invoice.paid", {**stripe_inv, "status": "paid"}, event_id="evt_p2")
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "paid" and body["payment"]["status"] == "paid"


def test_voided_and_uncollectible_are_reflected(anon, api, session_factory, settings, fake_stripe):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    r = post_event(anon, "invoice.marked_uncollectible", stripe_inv, event_id="evt_u1")
    assert r.json()["outcome"] == "applied"
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "finalized" and body["payment"]["status"] == "uncollectible"
    fake_stripe.invoices[stripe_inv["id"]]["status"] = "void"  # voided in the Stripe dashboard
    post_event(anon, "invoice.voided", fake_stripe.invoices[stripe_inv["id"]], event_id="evt_v1")
    body = api.get(f"/v1/invoices/{inv['id']}").json()
    assert body["status"] == "void" and body["payment"]["status"] == "void"
    assert [p["id"] for p in _topics(session_factory, "invoice.voided")] == [inv["id"]]
    requests = len(fake_stripe.requests)
    work(Worker(session_factory, settings))  # Tollway's own void handler has nothing to ask Stripe
    assert len(fake_stripe.requests) == requests


def test_webhook_before_the_push_is_recorded_finds_the_invoice_by_metadata(
    anon, api, session_factory, settings, fake_stripe
):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    other = {**stripe_inv, "id": "in_not_recorded_yet"}
    r = post_event(anon, "invoice.paid", other, event_id="evt_meta")
    assert r.json()["outcome"] == "applied"
    assert api.get(f"/v1/invoices/{inv['id']}").json()["status"] == "paid"


def test_bad_signature_is_400_and_changes_nothing(anon, api, session_factory, settings, fake_stripe):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    r = post_event(anon, "invoice.paid", stripe_inv, event_id="evt_forged", secret="whsec_wrong")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "Stripe-Signature"
    body = json.dumps({"id": "evt_x", "object": "event", "type": "invoice.paid", "data": {"object": stripe_inv}})
    for headers in ({}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1,v1=00"}):
        r = anon.post("/v1/webhooks/stripe", content=body, headers=headers)
        assert r.status_code == 400, (headers, r.text)
    with session_factory() as session:
        assert session.get(Invoice, inv["id"]).status == "finalized"  # type: ignore[union-attr]
    assert _inbox(session_factory) == 0 and _topics(session_factory, "invoice.paid") == []


def test_signed_bodies_that_are_not_events_are_400(anon, api, session_factory, settings, fake_stripe):
    for body in ("[]", "{}", '{"id": 5, "data": {"object": {}}}', '{"id": "evt_1", "data": []}', "not json"):
        header = WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
        r = anon.post("/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
        assert r.status_code == 400, (body, r.text)
    assert _inbox(session_factory) == 0


def test_unknown_types_and_unknown_invoices_are_acknowledged(anon, api, session_factory, settings, fake_stripe):
    inv, stripe_inv = _pushed(api, session_factory, settings, fake_stripe)
    r = post_event(anon, "customer.created", {"id": "cus_1", "object": "customer"}, event_id="evt_c")
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    foreign = {**stripe_inv, "id": "in_someone_else", "metadata": {}}
    assert post_event(anon, "invoice.paid", foreign, event_id="evt_foreign").json()["outcome"] == "ignored"
    assert api.get(f"/v1/invoices/{inv['id']}").json()["status"] == "finalized"
    assert _inbox(session_factory) == 2


def test_webhook_without_stripe_configured_is_404(anon, app):
    app.state.payment_provider = None
    r = anon.post("/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 404 and r.json()["title"]
