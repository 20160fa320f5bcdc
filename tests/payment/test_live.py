"""Through real processes: ``tollway serve`` (API + worker) pushing to the fake Stripe and taking
its signed webhooks, and ``tollway payments sync`` backfilling invoices never pushed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.conftest import start_server
from tests.payment._helpers import billed_invoice, post_event
from tests.payment.conftest import stripe_env
from tests.payment.fake_stripe import FakeStripe

pytestmark = pytest.mark.e2e


def _wait_for(fetch: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_serve_pushes_and_takes_webhooks(api: TestClient, db_url: str, fake_stripe: FakeStripe):
    """The invoice is billed in-process (its outbox message waits); the server's worker pushes it,
    and the server takes Stripe's signed webhook."""
    inv = billed_invoice(api, payment_collection="send_invoice")
    env = {**stripe_env(fake_stripe), "TOLLWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.2"}
    server = start_server(db_url, extra_env=env)
    try:
        key = server.key("admin")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as live:

            def payment(status: str) -> dict[str, Any] | None:
                found = live.get(f"/v1/invoices/{inv['id']}").json()["payment"]
                return found if found and found["url"] and found["status"] == status else None

            pushed = _wait_for(lambda: payment("pending"))
            stripe_inv = fake_stripe.only_invoice()
            assert pushed["external_id"] == stripe_inv["id"]
            assert stripe_inv["total"] == 2452 and stripe_inv["collection_method"] == "send_invoice"
            with httpx.Client(base_url=server.url, timeout=30) as anon:
                forged = post_event(anon, "invoice.paid", stripe_inv, event_id="evt_forged", secret="whsec_x")  # type: ignore[arg-type]
                assert forged.status_code == 400
                r = post_event(anon, "invoice.paid", {**stripe_inv, "status": "paid"}, event_id="evt_live")  # type: ignore[arg-type]
                assert r.status_code == 200 and r.json()["outcome"] == "applied"
            _wait_for(lambda: payment("paid"))
            assert live.get(f"/v1/invoices/{inv['id']}").json()["status"] == "paid"
            html = live.get(f"/v1/invoices/{inv['id']}/html").text
            assert "Payment: paid (stripe)" in html and f'href="{stripe_inv["hosted_invoice_url"]}"' in html
            pdf = PdfReader(io.BytesIO(live.get(f"/v1/invoices/{inv['id']}/pdf").content))
            text = "".join(page.extract_text() for page in pdf.pages)
            assert "Payment: paid (stripe)" in text and stripe_inv["hosted_invoice_url"] in text
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def test_payments_sync_backfills_once(api: TestClient, db_url: str, fake_stripe: FakeStripe):
    """Invoices finalized while payments were off (no worker ran the handlers) are pushed by the
    CLI; a second run changes nothing."""
    first = billed_invoice(api, customer="a")
    billed_invoice(api, customer="b")
    env = {**os.environ, "TOLLWAY_DATABASE_URL": db_url, **stripe_env(fake_stripe)}

    def sync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tollway", "payments", "sync", *args], env=env, capture_output=True, text=True
        )

    out = sync("--since", "2027-01-01T00:00:00Z")
    assert out.returncode == 0, out.stderr
    assert "0 invoice(s) synced" in out.stdout and fake_stripe.requests == []
    out = sync()
    assert out.returncode == 0, out.stderr
    assert "2 invoice(s) synced with stripe, 0 failed" in out.stdout
    assert len(fake_stripe.invoices) == 2 and len(fake_stripe.customers) == 2
    assert api.get(f"/v1/invoices/{first['id']}").json()["payment"]["status"] == "pending"
    requests = len(fake_stripe.requests)
    out = sync()
    assert out.returncode == 0 and "0 invoice(s) synced" in out.stdout
    assert len(fake_stripe.requests) == requests
    bad = sync("--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    off = subprocess.run(
        [sys.executable, "-m", "tollway", "payments", "sync"],
        env={k: v for k, v in env.items() if not k.startswith("TOLLWAY_STRIPE")},
        capture_output=True,
        text=True,
    )
    assert off.returncode == 2 and "TOLLWAY_STRIPE_API_KEY" in off.stderr
