"""Pushing finalized invoices to Stripe from the worker, through the outbox: one customer, one
invoice per Tollway invoice, items in minor units, idempotency keys, retries without duplicates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.factories import calls, create_customer, create_plan, run_billing, send_events, subscribe
from tests.payment._helpers import PLAN_CHARGES, billed_invoice, post_event, work
from tollway.kit.time import utcnow
from tollway.models import PaymentLink
from tollway.notification import outbox
from tollway.worker import Worker


def test_finalized_invoice_becomes_one_stripe_invoice(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api, payment_collection="send_invoice")
    assert inv["total"] == "24.52" and inv["payment"] is None  # not queued until the worker runs
    worker = Worker(session_factory, settings)
    assert work(worker) == 1

    [cus] = fake_stripe.customers.values()
    assert cus["metadata"] == {"tollway_customer_id": "acme"} and cus["email"] == "ops@acme.test"
    stripe_inv = fake_stripe.only_invoice()
    assert stripe_inv["status"] == "open" and stripe_inv["customer"] == cus["id"]
    assert stripe_inv["metadata"]["tollway_invoice_id"] == inv["id"]
    assert (stripe_inv["currency"], stripe_inv["collection_method"], stripe_inv["days_until_due"]) == (
        "usd", "send_invoice", 14,
    )  # fmt: skip
    items = fake_stripe.items_of(stripe_inv["id"])
    assert [(i["amount"], i["description"]) for i in items] == [
        (1999, inv["lines"][0]["description"]),
        (11, inv["lines"][1]["description"]),
        (442, "Tax (22%)"),
    ]
    assert stripe_inv["total"] == 2452

    keys = [r.idempotency_key for r in fake_stripe.posts()]
    assert keys == [
        "tollway-customer-acme",
        f"tollway-invoice-{inv['id']}",
        f"tollway-invoice-{inv['id']}-item-line-0",
        f"tollway-invoice-{inv['id']}-item-line-1",
        f"tollway-invoice-{inv['id']}-item-tax",
        f"tollway-invoice-{inv['id']}-finalize",
    ]

    payment = api.get(f"/v1/invoices/{inv['id']}").json()["payment"]
    assert payment == {
        "provider": "stripe",
        "external_id": stripe_inv["id"],
        "status": "pending",
        "url": stripe_inv["hosted_invoice_url"],
    }
    # Nothing more to do: a second pass (or a re-delivered outbox message) calls Stripe no more.
    calls = len(fake_stripe.requests)
    assert work(worker) == 0
    assert len(fake_stripe.requests) == calls


def test_charge_automatically_has_no_due_days_and_customer_is_reused(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    send_events(api, calls("acme", 100, day="2026-02-03", prefix="feb"))
    run = api.post("/v1/billing/run", json={"until": "2026-03-01T00:00:00Z"})
    assert run.status_code == 200 and run.json()["invoices_created"] == 1
    worker = Worker(session_factory, settings)
    assert work(worker) == 2
    assert len(fake_stripe.customers) == 1 and len(fake_stripe.invoices) == 2
    for stripe_inv in fake_stripe.invoices.values():
        assert stripe_inv["collection_method"] == "charge_automatically" and stripe_inv["days_until_due"] is None
    assert inv["id"] in {i["metadata"]["tollway_invoice_id"] for i in fake_stripe.invoices.values()}


def test_nothing_to_collect_is_never_sent(api, session_factory, settings, fake_stripe):
    billed_invoice(api, customer="payer")
    create_customer(api, id="idle")
    create_plan(api, code="usage", charges=PLAN_CHARGES, publish=True)
    subscribe(api, id="s-idle", customer="idle", plan="usage", start="2026-01-01T00:00:00Z")
    run_billing(api, "2026-02-01T00:00:00Z")
    [idle] = api.get("/v1/invoices", params={"customer": "idle"}).json()["data"]
    assert idle["total"] == "0.00"
    assert work(Worker(session_factory, settings)) == 1
    # No Stripe customer for a customer with nothing to collect, no payment on its invoice.
    assert [c["metadata"]["tollway_customer_id"] for c in fake_stripe.customers.values()] == ["payer"]
    assert api.get(f"/v1/invoices/{idle['id']}").json()["payment"] is None


def test_injected_500s_and_timeouts_are_retried_without_duplicates(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    worker = Worker(session_factory, settings)
    fake_stripe.fail("POST", r"^/v1/customers$", "timeout")  # created, but the answer is lost
    fake_stripe.fail("POST", r"^/v1/invoiceitems$", "500")
    worker.outbox_step()
    assert worker.payments is not None
    now = utcnow()
    step = worker.payments.step(now=now)
    assert (step.done, step.failed) == (0, 1)
    with session_factory() as session:
        link = session.scalars(select(PaymentLink).where(PaymentLink.tollway_id == inv["id"])).one()
        assert (link.last_error or "").startswith("ProviderError: APIConnectionError"), link.last_error
        assert link.next_attempt_at == now + timedelta(seconds=5) and link.external_id is None
    assert worker.payments.step(now=now + timedelta(seconds=1)).failed == 0  # not due yet: backoff
    assert worker.payments.step(now=now + timedelta(seconds=6)).failed == 1  # the injected 500 on an item
    with session_factory() as session:
        link = session.scalars(select(PaymentLink).where(PaymentLink.tollway_id == inv["id"])).one()
        assert link.external_id is not None and "injected failure" in (link.last_error or "")
        assert link.next_attempt_at == now + timedelta(seconds=6 + 10)
    assert worker.payments.step(now=now + timedelta(seconds=17)).done == 1

    assert len(fake_stripe.customers) == 1 and len(fake_stripe.invoices) == 1  # retried, never duplicated
    stripe_inv = fake_stripe.only_invoice()
    assert [i["amount"] for i in fake_stripe.items_of(stripe_inv["id"])] == [1999, 11, 442]
    assert stripe_inv["status"] == "open" and stripe_inv["total"] == 2452
    customer_posts = fake_stripe.posts("^/v1/customers$")
    assert len(customer_posts) == 2 and {r.idempotency_key for r in customer_posts} == {"tollway-customer-acme"}
    assert customer_posts[1].replayed  # Stripe answered the retry with the customer it had created
    assert api.get(f"/v1/invoices/{inv['id']}").json()["payment"]["status"] == "pending"


def test_library_retries_use_the_same_key(api, session_factory, settings, fake_stripe):
    billed_invoice(api)
    worker = Worker(session_factory, settings.model_copy(update={"stripe_max_network_retries": 2}))
    fake_stripe.fail("POST", r"^/v1/invoices$", "timeout")
    fake_stripe.fail("POST", r"/finalize$", "500")
    assert work(worker) == 1
    assert len(fake_stripe.invoices) == 1 and fake_stripe.only_invoice()["status"] == "open"
    creates = fake_stripe.posts("^/v1/invoices$")
    assert len(creates) == 2 and len({r.idempotency_key for r in creates}) == 1


def test_void_in_tollway_voids_at_stripe(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    worker = Worker(session_factory, settings)
    work(worker)
    assert api.post(f"/v1/invoices/{inv['id']}/void").status_code == 200
    work(worker)
    stripe_inv = fake_stripe.only_invoice()
    assert stripe_inv["status"] == "void"
    assert fake_stripe.posts("/void$")[0].idempotency_key == f"tollway-invoice-{inv['id']}-void"
    assert api.get(f"/v1/invoices/{inv['id']}").json()["payment"]["status"] == "void"


def test_void_before_the_push_sends_nothing(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    worker = Worker(session_factory, settings)
    worker.outbox_step()  # queued
    assert api.post(f"/v1/invoices/{inv['id']}/void").status_code == 200
    work(worker)
    assert fake_stripe.requests == []
    assert api.get(f"/v1/invoices/{inv['id']}").json()["payment"] is None


def test_redelivered_outbox_messages_push_once(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    with session_factory() as session:
        for _ in range(2):  # the same event delivered again (a crash before the outbox commit)
            outbox.emit(session, "invoice.finalized", {"id": inv["id"]}, key=inv["id"])
        session.commit()
    assert work(Worker(session_factory, settings)) == 1
    assert len(fake_stripe.invoices) == 1 and len(fake_stripe.items) == 3


def test_push_resumed_after_stripe_forgot_its_keys_adds_no_item_twice(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    worker = Worker(session_factory, settings)
    assert worker.payments is not None
    worker.outbox_step()
    fake_stripe.fail("POST", r"/finalize$", "500")  # the invoice and its items exist, still a draft
    now = utcnow()
    assert worker.payments.step(now=now).failed == 1
    stripe_inv = fake_stripe.only_invoice()
    assert stripe_inv["status"] == "draft" and len(fake_stripe.items_of(stripe_inv["id"])) == 3
    fake_stripe.forget_idempotency_keys()  # more than 24 hours later
    assert worker.payments.step(now=now + timedelta(hours=2)).done == 1
    assert len(fake_stripe.invoices) == 1 and fake_stripe.only_invoice()["status"] == "open"
    assert [i["amount"] for i in fake_stripe.items_of(stripe_inv["id"])] == [1999, 11, 442]
    assert fake_stripe.only_invoice()["metadata"]["tollway_invoice_id"] == inv["id"]


def test_mark_paid_in_tollway_pays_out_of_band_at_stripe(api, session_factory, settings, fake_stripe):
    inv = billed_invoice(api)
    worker = Worker(session_factory, settings)
    work(worker)
    assert api.post(f"/v1/invoices/{inv['id']}/mark-paid").status_code == 200
    work(worker)
    assert fake_stripe.only_invoice()["status"] == "paid"
    [pay] = fake_stripe.posts("/pay$")
    assert pay.params == {"paid_out_of_band": "true"} and pay.idempotency_key == f"tollway-invoice-{inv['id']}-paid"
    assert api.get(f"/v1/invoices/{inv['id']}").json()["payment"]["status"] == "paid"
    # Paid through Stripe (its webhook marks the invoice paid): nothing is sent back to Stripe.
    other = billed_invoice(api, customer="other")
    work(worker)
    stripe_other = next(i for i in fake_stripe.invoices.values() if i["metadata"]["tollway_invoice_id"] == other["id"])
    r = post_event(api, "invoice.paid", {**stripe_other, "status": "paid"}, event_id="evt_other")
    assert r.json()["outcome"] == "applied"
    work(worker)
    assert len(fake_stripe.posts("/pay$")) == 1
