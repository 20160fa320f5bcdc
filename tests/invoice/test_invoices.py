"""Invoices: the contract's JSON, transitions, documents, numbering, tax, per-event and
per-dimension charges, the upcoming invoice with several subscriptions, idempotent and
concurrent billing runs, and all-or-nothing invoice transactions."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader
from sqlalchemy import func, select

from tests.concurrency import billing_runs_at_once
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
from tollway.invoice import finalize
from tollway.invoice.finalize import run_billing as run_billing_direct
from tollway.models import Invoice, InvoiceSequence, OutboxMessage, Subscription

FLAT = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]
INVOICE_KEYS = {
    "id", "number", "customer", "subscription", "currency", "status", "period_start", "period_end",
    "issued_at", "due_at", "lines", "subtotal", "tax", "total",
}  # fmt: skip
LINE_KEYS = {"kind", "charge", "meter", "description", "quantity", "amount", "details"}


def _one_invoice(api, *, tax_rate="0", unit_price="0.50", n=10):
    create_customer(api, id="acme", name="Acme Srl", email="ops@acme.test", tax_rate=tax_rate)
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(
        api,
        code="pro",
        charges=[{"code": "calls", "meter": "api_calls", "model": "graduated",
                  "tiers": [{"up_to": 5, "unit_price": "0"}, {"up_to": None, "unit_price": unit_price}]}],
        payment_terms_days=30, publish=True,
    )  # fmt: skip
    subscribe(api, id="s1", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    send_events(api, calls("acme", n, day="2026-01-05"))
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "acme")
    return inv


def test_invoice_json_is_the_contract(api):
    inv = _one_invoice(api)
    assert INVOICE_KEYS <= set(inv)
    assert inv["status"] == "finalized" and inv["currency"] == "USD" and inv["number"] == "INV-000001"
    [line] = inv["lines"]
    assert set(line) == LINE_KEYS
    assert (line["kind"], line["charge"], line["meter"], line["quantity"], line["amount"]) == (
        "usage", "calls", "api_calls", "10", "2.50",
    )  # fmt: skip
    assert [t["units"] for t in line["details"]["tiers"]] == ["5", "5"]
    issued = datetime.fromisoformat(inv["issued_at"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(inv["due_at"].replace("Z", "+00:00"))
    assert due - issued == timedelta(days=30)
    assert inv["as_of"] is not None
    assert api.get(f"/v1/invoices/{inv['id']}").json() == inv
    assert api.get("/v1/invoices/nope").status_code == 404


def test_transitions_paid_and_void_only(api):
    inv = _one_invoice(api)
    r = api.post(f"/v1/invoices/{inv['id']}/mark-paid")
    assert r.status_code == 200 and r.json()["status"] == "paid" and r.json()["paid_at"]
    assert r.json()["lines"] == inv["lines"] and r.json()["total"] == inv["total"]
    assert api.post(f"/v1/invoices/{inv['id']}/mark-paid").status_code == 409
    assert api.post(f"/v1/invoices/{inv['id']}/void").status_code == 409
    create_customer(api, id="b")
    subscribe(api, id="s2", customer="b", plan="pro", start="2026-01-01T00:00:00Z")
    run_billing(api, "2026-02-01T00:00:00Z")
    [other] = invoices_of(api, "b")
    assert api.post(f"/v1/invoices/{other['id']}/void").json()["status"] == "void"
    r = api.post(f"/v1/invoices/{other['id']}/mark-paid")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"


def test_pdf_and_html(api):
    inv = _one_invoice(api)
    r = api.get(f"/v1/invoices/{inv['id']}/pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    assert inv["number"] in text and "Acme Srl" in text and "2.50" in text
    assert "Tier 2 (above 5): 5 \u00d7 0.50 USD = 2.50 USD" in text  # the tier breakdown, as money
    assert "1 Jan - 31 Jan 2026" in text
    html = api.get(f"/v1/invoices/{inv['id']}/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert inv["number"] in html.text and "Acme Srl" in html.text and "Tier 1 (0 to 5)" in html.text


def test_tax_is_rounded_half_up_on_the_subtotal(api):
    # 6 calls: 5 free, 1 x 0.05 = 0.05; tax 10% = 0.005 -> 0.01 (half up); total 0.06
    inv = _one_invoice(api, tax_rate="10", unit_price="0.05", n=6)
    assert (inv["subtotal"], inv["tax"], inv["total"]) == ("0.05", "0.01", "0.06")


def test_percentage_with_fixed_fee_per_event(api):
    # 2.9% + $0.30 per payment: 10.00 -> 0.59; 100.00 -> 3.20; 1,000.00 -> 29.30; total 33.09.
    create_customer(api, id="pay")
    create_meter(api, key="volume", event_type="payment", aggregation="sum", value_property="amount")
    create_plan(
        api,
        code="payments",
        charges=[
            {"code": "fees", "meter": "volume", "model": "percentage", "rate": "2.9", "fixed_fee_per_event": "0.30"}
        ],
        publish=True,
    )
    subscribe(api, id="s1", customer="pay", plan="payments", start="2026-01-01T00:00:00Z")
    send_events(
        api,
        [
            {"id": f"p{i}", "customer": "pay", "type": "payment", "timestamp": f"2026-01-0{i + 2}T00:00:00Z",
             "properties": {"amount": a}}
            for i, a in enumerate([10, 100, 1000])
        ],
    )  # fmt: skip
    send_events(api, [{"id": "bad", "customer": "pay", "type": "payment", "timestamp": "2026-01-09T00:00:00Z"}])
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "pay")
    [line] = inv["lines"]
    assert (line["quantity"], line["amount"]) == ("1110", "33.09")
    assert line["details"]["events"] == 3


def test_dimension_prices(api):
    # The contract's example: 10 h in USA at $30 + 40 h in EMEA at $40 = $1,900.
    create_customer(api, id="dim")
    create_meter(api, key="hours", event_type="compute", aggregation="sum", value_property="hours", group_by=["region"])
    create_plan(
        api,
        code="regional",
        charges=[{"code": "hours", "meter": "hours", "model": "flat", "unit_price": "30", "dimension": "region",
                  "dimension_prices": {"EMEA": {"unit_price": "40"}}}], publish=True,
    )  # fmt: skip
    subscribe(api, id="s1", customer="dim", plan="regional", start="2026-01-01T00:00:00Z")
    send_events(
        api,
        [
            {"id": "u", "customer": "dim", "type": "compute", "timestamp": "2026-01-03T00:00:00Z",
             "properties": {"region": "USA", "hours": 10}},
            {"id": "e", "customer": "dim", "type": "compute", "timestamp": "2026-01-04T00:00:00Z",
             "properties": {"region": "EMEA", "hours": 40}},
        ],
    )  # fmt: skip
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, "dim")
    assert sorted(line["amount"] for line in inv["lines"]) == ["1600.00", "300.00"]
    assert inv["total"] == "1900.00"


def test_upcoming_invoice_with_several_subscriptions(api):
    create_customer(api, id="acme")
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="a", charges=FLAT, publish=True)
    create_plan(
        api,
        code="b",
        fees={"recurring": {"amount": "10.00", "in_advance": True, "prorate": False}},
        charges=[],
        publish=True,
    )
    subscribe(api, id="s1", customer="acme", plan="a", start="2026-01-01T00:00:00Z")
    subscribe(api, id="s2", customer="acme", plan="b", start="2026-01-15T00:00:00Z")
    send_events(api, calls("acme", 4, day="2026-01-20"))
    up = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-25T00:00:00Z"}).json()
    assert up["status"] == "draft" and up["id"] is None and up["subscription"] is None
    assert [i["subscription"] for i in up["invoices"]] == ["s1", "s2"]
    assert [i["total"] for i in up["invoices"]] == ["2.00", "10.00"]
    assert {line["details"]["subscription"] for line in up["lines"]} == {"s1", "s2"}
    assert up["total"] == "12.00"
    assert (up["period_start"], up["period_end"]) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    # One subscription: the body is that subscription's invoice.
    single = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-10T00:00:00Z"}).json()
    assert single["subscription"] == "s1" and single["total"] == "2.00"
    create_customer(api, id="idle")
    idle = api.get("/v1/customers/idle/upcoming-invoice").json()
    assert idle["lines"] == [] and idle["total"] == "0.00"
    assert api.get("/v1/customers/ghost/upcoming-invoice").status_code == 404
    assert api.get("/v1/customers/acme/upcoming-invoice", params={"at": "yesterday"}).status_code == 422


def test_voided_event_gives_a_negative_adjustment(api):
    inv = _one_invoice(api)  # 10 calls, 5 free, 5 x 0.50 = 2.50
    for i in range(2):
        assert api.post(f"/v1/events/e-acme-2026-01-05-{i}/void").status_code == 200
    # Shown for the finalized January itself, the live invoice prices January as it now is
    # (8 calls: 3 x 0.50), without also correcting it.
    live_jan = api.get("/v1/customers/acme/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"}).json()
    assert live_jan["total"] == "1.50" and lines_of(live_jan, "adjustment") == []
    run_billing(api, "2026-03-01T00:00:00Z")
    feb = invoices_of(api, "acme")[1]
    [adj] = lines_of(feb, "adjustment")
    assert (adj["quantity"], adj["amount"]) == ("-2", "-1.00")
    assert adj["details"]["adjusts_invoice_id"] == inv["id"]
    assert feb["total"] == "-1.00"


def test_periods_that_have_not_ended_are_not_finalized(api):
    create_customer(api, id="now")
    create_plan(
        api,
        code="m",
        fees={"recurring": {"amount": "5.00", "in_advance": True, "prorate": True}},
        charges=[],
        publish=True,
    )
    start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    subscribe(api, id="s1", customer="now", plan="m", start=start.isoformat())
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    assert run_billing(api, far)["invoices_created"] == 0


def test_gapless_numbers_and_idempotent_concurrent_runs(app, api, backend):
    """Two billing runs at once (threads, each with its own connections) write every invoice once,
    numbered 1..N without gaps; on PostgreSQL this exercises the row locks."""
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", charges=FLAT, publish=True)
    for c in range(8):
        create_customer(api, id=f"c{c}")
        subscribe(api, id=f"s{c}", customer=f"c{c}", plan="pro", start="2026-01-01T00:00:00Z")
        send_events(api, calls(f"c{c}", c + 1, day="2026-02-10"))
    results = billing_runs_at_once(app.state.sessionmaker, until=datetime(2026, 5, 1, tzinfo=UTC))
    assert sum(results) == 32  # 8 subscriptions x 4 months, each exactly once
    with app.state.sessionmaker() as session:
        numbers = sorted(session.scalars(select(Invoice.number)))
        assert numbers == [f"INV-{n:06d}" for n in range(1, 33)]
        assert session.get(InvoiceSequence, "invoice").last_value == 32
        finalized = session.scalar(select(func.count()).where(OutboxMessage.topic == "invoice.finalized"))
        assert finalized == 32
    assert run_billing(api, "2026-05-01T00:00:00Z")["invoices_created"] == 0
    feb = next(i for i in invoices_of(api, "c3") if i["period_start"].startswith("2026-02"))
    assert feb["total"] == "2.00"  # 4 calls x 0.50


def test_a_failure_half_way_leaves_no_half_written_invoice(app, api, monkeypatch):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", charges=FLAT, publish=True)
    create_customer(api, id="c")
    subscribe(api, id="s1", customer="c", plan="pro", start="2026-01-01T00:00:00Z")
    real_emit = finalize.emit_many
    calls_made = {"n": 0}

    def failing_emit(session, messages):
        # The second invoice fails after its number and lines were written (a zero invoice, paid
        # at once, also emits invoice.paid: count invoice.finalized only).
        for topic, _, _ in messages:
            calls_made["n"] += topic == "invoice.finalized"
            if calls_made["n"] == 2 and topic == "invoice.finalized":
                raise RuntimeError("crash")
        return real_emit(session, messages)

    monkeypatch.setattr(finalize, "emit_many", failing_emit)
    # The run reports the subscription it could not bill (and goes on with any others).
    failed = run_billing_direct(app.state.sessionmaker, until=datetime(2026, 4, 1, tzinfo=UTC)).failed
    assert failed == [("s1", "crash")]
    with app.state.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert session.get(InvoiceSequence, "invoice").last_value == 1
        assert session.get(Subscription, "s1").billed_until == datetime(2026, 2, 1, tzinfo=UTC)
    monkeypatch.setattr(finalize, "emit_many", real_emit)
    assert len(run_billing_direct(app.state.sessionmaker, until=datetime(2026, 4, 1, tzinfo=UTC)).created) == 2
    assert [i["number"] for i in invoices_of(api, "c")] == ["INV-000001", "INV-000002", "INV-000003"]
