"""The webhook `data` of every event that exists: the resource as the API shows it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import create_customer, create_meter, create_plan, subscribe
from tollway.models import OutboxMessage


def _messages(session_factory) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def,type-arg]
    out: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    with session_factory() as session:
        for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
            out.setdefault(m.topic, []).append(dict(m.payload))
    return out


def test_invoice_and_subscription_events_carry_the_resource(api: TestClient, session_factory) -> None:  # type: ignore[no-untyped-def]
    create_meter(api, key="api_calls", event_type="api_call")
    charges = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "1"}]
    create_plan(api, code="pro", publish=True, charges=charges,
                fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": False}})  # fmt: skip
    create_customer(api, id="acme")
    sub = subscribe(api, id="sub_1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    subscribe(api, id="sub_2", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    assert api.post("/v1/billing/run", json={"until": "2026-03-01T00:00:00Z"}).status_code == 200
    invoices = api.get("/v1/invoices?customer=acme").json()["data"]
    assert len(invoices) == 4
    first, second = invoices[0]["id"], invoices[1]["id"]
    paid = api.post(f"/v1/invoices/{first}/mark-paid").json()
    voided = api.post(f"/v1/invoices/{second}/void").json()
    canceled = api.post("/v1/subscriptions/sub_2/cancel", json={"at": "2026-03-10T00:00:00Z"}).json()

    got = _messages(session_factory)
    created = got["subscription.created"]
    assert created[0] == sub
    finalized = {d["id"]: d for d in got["invoice.finalized"]}
    assert set(finalized) == {i["id"] for i in invoices}
    for inv in invoices:
        assert {**finalized[inv["id"]], "status": inv["status"], "paid_at": inv["paid_at"],
                "voided_at": inv["voided_at"]} == inv  # fmt: skip
    assert finalized[first]["lines"] and finalized[first]["total"] == "10.00"
    assert got["invoice.paid"] == [paid] and paid["status"] == "paid"
    assert got["invoice.voided"] == [voided] and voided["status"] == "void"
    (cancel,) = got["subscription.canceled"]
    assert {k: v for k, v in cancel.items() if k not in ("mode", "early")} == canceled
    assert cancel["mode"] == "immediate" and cancel["early"] is False
