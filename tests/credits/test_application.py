"""Credits paying invoices at finalization: the order, paid at once, the upcoming invoice's
preview, grants that must never pay, a voided invoice giving its credits back, and two billing
transactions racing for one grant (row locks; real threads on PostgreSQL and SQLite)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from tests.concurrency import billing_runs_at_once
from tests.credits.conftest import credits, grant, ledger, replay
from tests.factories import calls, create_customer, invoices_of, run_billing, send_events, subscribe
from tollway.credit import service as credit_service
from tollway.invoice.finalize import finalize_next
from tollway.models import CreditGrant, OutboxMessage


def test_credits_pay_in_priority_then_expiry_then_effective_order(api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    jan = "2026-01-01T00:00:00Z"
    grant(api, acme, id="late", amount="30.00", priority=10, effective_at="2026-01-02T00:00:00Z")
    grant(api, acme, id="early", amount="30.00", priority=10, effective_at=jan)  # same as late but older
    grant(api, acme, id="soon", amount="20.00", priority=10, effective_at=jan, expires_at="2030-06-01T00:00:00Z")
    grant(api, acme, id="first", amount="10.00", priority=5, effective_at=jan, category="promotional")
    send_events(api, calls(acme, 100, day="2026-01-10"))  # 50.00
    send_events(api, calls(acme, 60, day="2026-02-10"))  # 30.00
    # The upcoming invoice shows the credits it would use, and changes nothing.
    up = api.get(f"/v1/customers/{acme}/upcoming-invoice", params={"at": "2026-01-20T00:00:00Z"}).json()
    assert (up["total"], up["credits_applied"], up["amount_due"]) == ("50.00", "50.00", "0.00")
    expected = [{"grant": "first", "amount": "10.00"}, {"grant": "soon", "amount": "20.00"},
                {"grant": "early", "amount": "20.00"}]  # fmt: skip
    assert up["credits"] == expected
    assert up["invoices"][0]["credits"] == expected
    assert credits(api, acme)["balance"] == "90.00"
    # January: 10 from "first" (priority 5), 20 from "soon" (expires), 20 of "early" (older).
    assert run_billing(api, "2026-02-01T00:00:00Z")["invoices_created"] == 1
    [jan_inv] = invoices_of(api, acme)
    assert jan_inv["credits"] == expected
    assert (jan_inv["total"], jan_inv["credits_applied"], jan_inv["amount_due"]) == ("50.00", "50.00", "0.00")
    assert jan_inv["status"] == "paid" and jan_inv["paid_at"] is not None  # nothing due: paid at once
    # February: 10 left in "early", then 20 of "late".
    assert run_billing(api, "2026-03-01T00:00:00Z")["invoices_created"] == 1
    feb = invoices_of(api, acme)[1]
    assert feb["credits"] == [{"grant": "early", "amount": "10.00"}, {"grant": "late", "amount": "20.00"}]
    assert (feb["total"], feb["credits_applied"], feb["amount_due"], feb["status"]) == (
        "30.00", "30.00", "0.00", "paid",
    )  # fmt: skip
    view = credits(api, acme)
    assert view["balance"] == "10.00"
    assert {g["id"]: (g["remaining"], g["status"]) for g in view["grants"]} == {
        "first": ("0.00", "depleted"),
        "soon": ("0.00", "depleted"),
        "early": ("0.00", "depleted"),
        "late": ("10.00", "active"),
    }
    entries = ledger(api, acme)
    applied = [(e["grant"], e["amount"], e["invoice"]) for e in entries if e["kind"] == "applied"]
    assert applied == [
        ("first", "-10.00", jan_inv["id"]),
        ("soon", "-20.00", jan_inv["id"]),
        ("early", "-20.00", jan_inv["id"]),
        ("early", "-10.00", feb["id"]),
        ("late", "-20.00", feb["id"]),
    ]
    assert replay(entries) == Decimal("10.00")
    # A voided invoice gives its credits back (an "applied" entry with a positive amount).
    r = api.post(f"/v1/invoices/{feb['id']}/void")
    assert r.status_code == 200 and r.json()["status"] == "void", r.text
    assert r.json()["credits_applied"] == "30.00"  # what it used stays on the voided invoice
    entries = ledger(api, acme)
    assert [(e["kind"], e["grant"], e["amount"], e["invoice"]) for e in entries[-2:]] == [
        ("applied", "early", "10.00", feb["id"]),
        ("applied", "late", "20.00", feb["id"]),
    ]
    assert credits(api, acme)["balance"] == "40.00" == str(replay(entries))
    assert api.post(f"/v1/invoices/{feb['id']}/void").status_code == 409  # given back once only


def test_a_partly_paid_invoice_keeps_an_amount_due(api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    grant(api, acme, id="g", amount="12.34", effective_at="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 100, day="2026-01-10"))
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, acme)
    assert (inv["total"], inv["credits_applied"], inv["amount_due"], inv["status"]) == (
        "50.00", "12.34", "37.66", "finalized",
    )  # fmt: skip
    assert api.post(f"/v1/invoices/{inv['id']}/mark-paid").json()["status"] == "paid"
    r = api.post(f"/v1/invoices/{inv['id']}/void")  # paid with money, not only credits: stays
    assert r.status_code == 409


def test_expired_voided_future_and_foreign_currency_grants_never_pay(api, per_call_plan):
    create_customer(api, id="eu", currency="EUR")  # grants in EUR; the plan bills in USD
    grant(api, "eu", id="eur", amount="100.00", effective_at="2026-01-01T00:00:00Z")
    subscribe(api, id="s_eu", customer="eu", plan=per_call_plan, start="2026-01-01T00:00:00Z")
    create_customer(api, id="us")
    subscribe(api, id="s_us", customer="us", plan=per_call_plan, start="2026-01-01T00:00:00Z")
    # Finalization happens now (the billing run's clock): relative to it, "expired" has ended,
    # "future" has not begun, "voided" is voided; only "ok" may pay.
    now = datetime.now(UTC).replace(microsecond=0)
    jan, past, soon = "2026-01-01T00:00:00Z", (now - timedelta(hours=1)).isoformat(), now + timedelta(days=30)
    grant(api, "us", id="expired", amount="5.00", effective_at=jan, expires_at=past)
    grant(api, "us", id="future", amount="5.00", priority=0, effective_at=soon.isoformat())
    grant(api, "us", id="voided", amount="5.00", priority=0, effective_at=jan)
    api.post("/v1/credit-grants/voided/void").raise_for_status()
    grant(api, "us", id="ok", amount="1.00", priority=9, effective_at=jan, expires_at=soon.isoformat())
    for c in ("eu", "us"):
        send_events(api, calls(c, 10, day="2026-01-10"))  # 5.00 each
    run_billing(api, "2026-02-01T00:00:00Z")
    [eu] = invoices_of(api, "eu")
    assert (eu["currency"], eu["credits_applied"], eu["amount_due"], eu["credits"]) == ("USD", "0.00", "5.00", [])
    [us] = invoices_of(api, "us")
    assert us["credits"] == [{"grant": "ok", "amount": "1.00"}]
    assert (us["credits_applied"], us["amount_due"]) == ("1.00", "4.00")


def test_a_voided_invoice_gives_back_to_a_grant_voided_meanwhile_nothing_usable(api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    grant(api, acme, id="g", amount="10.00", effective_at="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 4, day="2026-01-10"))  # 2.00
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, acme)
    assert (inv["status"], inv["credits_applied"]) == ("paid", "2.00")
    api.post("/v1/credit-grants/g/void").raise_for_status()  # voids the 8.00 left
    api.post(f"/v1/invoices/{inv['id']}/void").raise_for_status()
    entries = ledger(api, acme)
    assert [(e["kind"], e["amount"]) for e in entries] == [
        ("grant", "10.00"),
        ("applied", "-2.00"),
        ("voided", "-8.00"),
        ("applied", "2.00"),  # given back ...
        ("voided", "-2.00"),  # ... to a voided grant: voided at once
    ]
    assert credits(api, acme)["balance"] == "0.00" == str(replay(entries))


def test_a_zero_invoice_is_paid_at_once_and_says_so_on_the_outbox(app, api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, acme)
    assert (inv["total"], inv["amount_due"], inv["status"]) == ("0.00", "0.00", "paid")
    with app.state.sessionmaker() as session:
        topics = list(session.scalars(select(OutboxMessage.topic).order_by(OutboxMessage.id)))
    assert topics[-2:] == ["invoice.finalized", "invoice.paid"]


def _race(factory, first, second) -> tuple[float, float]:
    """Run ``first(session)`` and hold its transaction open; meanwhile start ``second(session)``
    in another thread (its own connection), check that it waits, then commit the first. Returns
    (when the first committed, when the second finished)."""
    first_done, release = threading.Event(), threading.Event()
    finished: dict[str, float] = {}
    errors: list[BaseException] = []

    def run(name: str, work, hold: bool) -> None:  # type: ignore[no-untyped-def]
        try:
            with factory() as session:
                work(session)
                if hold:
                    first_done.set()
                    release.wait(30)
                    finished["released"] = time.monotonic()
                session.commit()
                finished[name] = time.monotonic()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            first_done.set()

    a = threading.Thread(target=run, args=("first", first, True))
    a.start()
    assert first_done.wait(30)
    b = threading.Thread(target=run, args=("second", second, False))
    b.start()
    time.sleep(1.0)
    assert "second" not in finished, "the second transaction did not wait for the first"
    release.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    return finished["released"], finished["second"]


def _finalize(sub: str):  # type: ignore[no-untyped-def]
    def work(session) -> None:  # type: ignore[no-untyped-def]
        moment = datetime.now(UTC)
        invoice, _ = finalize_next(session, sub, until=datetime(2026, 2, 1, tzinfo=UTC), as_of=moment, now=moment)
        assert invoice is not None

    return work


def test_two_billing_transactions_never_spend_one_credit_twice(app, api, acme, per_call_plan):
    """Invoice A holds the grant (not committed); invoice B of the same customer, in another
    transaction, waits and then sees only what A left. (The invoice-number counter also orders
    invoice transactions; the grant's row lock is what orders them against anything else.)"""
    for sub in ("s1", "s2"):
        subscribe(api, id=sub, customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    grant(api, acme, id="g", amount="8.00", effective_at="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 10, day="2026-01-10"))  # one meter: 5.00 on each subscription
    released, second = _race(app.state.sessionmaker, _finalize("s1"), _finalize("s2"))
    assert second >= released
    invoices = invoices_of(api, acme)
    assert sorted((i["subscription"], i["credits_applied"], i["amount_due"]) for i in invoices) == [
        ("s1", "5.00", "0.00"),
        ("s2", "3.00", "2.00"),
    ]
    with app.state.sessionmaker() as session:
        assert session.scalars(select(CreditGrant.remaining_minor)).one() == 0
    assert replay(ledger(api, acme)) == Decimal(0)


def test_a_grant_voided_while_an_invoice_is_finalized_is_not_spent(app, api, acme, per_call_plan):
    """The void holds the grant's row lock; the finalization waits for it, then finds nothing
    left. Without the lock it would read 8.00 left and spend it after the void (remaining < 0)."""
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    grant(api, acme, id="g", amount="8.00", effective_at="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 10, day="2026-01-10"))  # 5.00

    def void(session) -> None:  # type: ignore[no-untyped-def]
        credit_service.void_grant(session, "g", now=datetime.now(UTC))

    released, second = _race(app.state.sessionmaker, void, _finalize("s1"))
    assert second >= released
    [inv] = invoices_of(api, acme)
    assert (inv["credits_applied"], inv["amount_due"], inv["credits"]) == ("0.00", "5.00", [])
    with app.state.sessionmaker() as session:
        assert session.scalars(select(CreditGrant.remaining_minor)).one() == 0
    assert replay(ledger(api, acme)) == Decimal(0)


def test_concurrent_billing_runs_over_many_customers_keep_every_ledger_exact(app, api, per_call_plan):
    """Two whole billing runs at once over customers with two subscriptions sharing one grant."""
    for c in range(6):
        create_customer(api, id=f"c{c}")
        for s in range(2):
            subscribe(api, id=f"c{c}s{s}", customer=f"c{c}", plan=per_call_plan, start="2026-01-01T00:00:00Z")
        grant(api, f"c{c}", id=f"g{c}", amount="7.00", effective_at="2026-01-01T00:00:00Z")
        send_events(api, calls(f"c{c}", 2 * c + 2, day="2026-01-10"))  # (c+1) per subscription
    billing_runs_at_once(app.state.sessionmaker, until=datetime(2026, 2, 1, tzinfo=UTC))
    for c in range(6):
        invoices = invoices_of(api, f"c{c}")
        assert len(invoices) == 2
        total = sum(Decimal(i["total"]) for i in invoices)
        used = sum(Decimal(i["credits_applied"]) for i in invoices)
        assert used == min(total, Decimal("7.00")), (c, invoices)
        assert replay(ledger(api, f"c{c}")) == Decimal("7.00") - used == Decimal(credits(api, f"c{c}")["balance"])
