"""Correction invoices: late or voided events of a subscription that ended (no next invoice to
carry the adjustment) are billed on a correction invoice by the next billing run, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

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
from tollway.models import Invoice, InvoiceSequence, OutboxMessage, Subscription

FLAT = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]


def _ended_subscription(api, customer: str = "gone", sub: str = "s1") -> dict:
    """January billed (10 calls x 0.50 = 5.00), the subscription cancelled at January's end."""
    create_customer(api, id=customer)
    subscribe(api, id=sub, customer=customer, plan="flat", start="2026-01-01T00:00:00Z")
    send_events(api, calls(customer, 10, day="2026-01-10"))
    r = api.post(f"/v1/subscriptions/{sub}/cancel", json={"at": "2026-01-20T00:00:00Z", "mode": "period_end"})
    assert r.status_code == 200, r.text
    assert r.json()["ends_at"] == "2026-02-01T00:00:00Z"
    return r.json()


def _setup(api) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="flat", charges=FLAT, publish=True)


def test_late_events_after_cancellation_give_one_correction_invoice(api):
    _setup(api)
    _ended_subscription(api)
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    [jan] = invoices_of(api, "gone")
    assert (jan["total"], jan["kind"]) == ("5.00", "regular")
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0  # nothing late yet

    send_events(api, calls("gone", 3, day="2026-01-30", prefix="late"))
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    jan_again, fix = invoices_of(api, "gone")
    assert jan_again == jan  # a finalized invoice never changes
    assert fix["kind"] == "correction" and fix["status"] == "finalized"
    assert fix["number"] == "INV-000002"  # gapless, the same counter as every invoice
    assert fix["period_start"] == "2026-02-01T00:00:00Z"  # where the subscription's last invoice ended
    assert fix["period_end"] > fix["period_start"]
    [adj] = fix["lines"]
    assert adj["kind"] == "adjustment"
    assert (adj["charge"], adj["quantity"], adj["amount"]) == ("calls", "3", "1.50")
    assert adj["details"]["adjusts_invoice"] == jan["number"]
    assert (adj["details"]["period_start"][:10], adj["details"]["period_end"][:10]) == ("2026-01-01", "2026-02-01")
    assert fix["total"] == "1.50"
    # The next run finds nothing left to correct.
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0
    assert run_billing(api, "2026-06-01T00:00:00Z")["invoices_created"] == 0

    # More late events later: a second correction, its period following the first one's.
    send_events(api, calls("gone", 2, day="2026-01-31", prefix="later"))
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    *_, fix2 = invoices_of(api, "gone")
    assert fix2["kind"] == "correction" and fix2["period_start"] == fix["period_end"]
    [adj2] = fix2["lines"]
    assert (adj2["quantity"], adj2["amount"]) == ("2", "1.00")
    assert (adj2["details"]["billed_amount"], adj2["details"]["recomputed_amount"]) == ("6.5", "7.5")
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0
    # The documents render a correction like any invoice.
    html = api.get(f"/v1/invoices/{fix2['id']}/html")
    assert html.status_code == 200 and jan["number"] in html.text


def test_voided_event_after_cancellation_gives_a_negative_correction(api):
    _setup(api)
    _ended_subscription(api)
    run_billing(api, "2026-03-01T00:00:00Z")
    for i in range(4):
        assert api.post(f"/v1/events/e-gone-2026-01-10-{i}/void").status_code == 200
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    jan, fix = invoices_of(api, "gone")
    assert fix["kind"] == "correction"
    assert lines_of(fix, "adjustment") == fix["lines"]
    [adj] = fix["lines"]
    assert (adj["quantity"], adj["amount"]) == ("-4", "-2.00")
    assert adj["details"]["adjusts_invoice_id"] == jan["id"]
    assert fix["total"] == "-2.00"
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0


def test_a_plan_change_then_cancellation_corrects_the_predecessor_once(api):
    """The ended successor's correction invoice carries its predecessor's late events."""
    _setup(api)
    create_plan(api, code="flat2", charges=[{**FLAT[0], "unit_price": "1.00"}], publish=True)
    create_customer(api, id="mover")
    subscribe(api, id="old", customer="mover", plan="flat", start="2026-01-01T00:00:00Z")
    send_events(api, calls("mover", 10, day="2026-01-10"))
    r = api.post("/v1/subscriptions/old/change-plan", json={"plan": "flat2", "at": "2026-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    new_id = r.json()["id"]
    r = api.post(f"/v1/subscriptions/{new_id}/cancel", json={"at": "2026-02-10T00:00:00Z", "mode": "period_end"})
    assert r.status_code == 200, r.text
    assert run_billing(api, "2026-04-01T00:00:00Z")["invoices_created"] == 2
    send_events(api, calls("mover", 2, day="2026-01-20", prefix="late"))  # old's January, at 0.50
    assert run_billing(api, "2026-04-01T00:00:00Z")["invoices_created"] == 1
    fix = invoices_of(api, "mover")[-1]
    assert (fix["kind"], fix["subscription"], fix["total"]) == ("correction", new_id, "1.00")
    assert fix["lines"][0]["details"]["subscription"] == "old"
    assert run_billing(api, "2026-04-01T00:00:00Z")["invoices_created"] == 0


def test_concurrent_runs_issue_each_correction_once(app, api, backend):
    """Two billing runs at once (threads, own connections): each ended subscription gets one
    correction invoice, numbers stay gapless; on PostgreSQL this exercises the row locks."""
    _setup(api)
    for c in range(6):
        _ended_subscription(api, customer=f"c{c}", sub=f"s{c}")
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 6
    for c in range(6):
        send_events(api, calls(f"c{c}", c + 1, day="2026-01-25", prefix="late"))
    results = billing_runs_at_once(app.state.sessionmaker, until=datetime(2026, 3, 1, tzinfo=UTC))
    assert sum(results) == 6
    with app.state.sessionmaker() as session:
        rows = session.execute(select(Invoice.kind, func.count()).group_by(Invoice.kind)).all()
        kinds = {kind: n for kind, n in rows}
        assert kinds == {"regular": 6, "correction": 6}
        numbers = sorted(session.scalars(select(Invoice.number)))
        assert numbers == [f"INV-{n:06d}" for n in range(1, 13)]
        assert session.get(InvoiceSequence, "invoice").last_value == 12
        assert session.scalar(select(func.count()).where(OutboxMessage.topic == "invoice.finalized")) == 12
        # The bookmark of a correction is its period, not billed_until.
        assert session.get(Subscription, "s3").billed_until == datetime(2026, 2, 1, tzinfo=UTC)
    for c in range(6):
        fix = invoices_of(api, f"c{c}")[-1]
        assert fix["kind"] == "correction" and fix["total"] == f"{(c + 1) * 0.5:.2f}"
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0


def test_correction_through_a_real_server(live_server):
    import httpx

    key = live_server.key("admin")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
        _setup(api)
        _ended_subscription(api)
        assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
        [jan] = invoices_of(api, "gone")
        send_events(api, calls("gone", 1, day="2026-01-15", prefix="late"))
        assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
        assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 0
        jan_again, fix = invoices_of(api, "gone")
        assert jan_again["id"] == jan["id"]
        assert (fix["kind"], fix["total"]) == ("correction", "0.50")
