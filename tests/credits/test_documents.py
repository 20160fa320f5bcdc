"""Invoice documents (HTML and PDF, invoice/document.py) show the credits applied and the
amount due of an invoice paid partly from credit, and say nothing of credits when none were used."""

from __future__ import annotations

from tests.credits.conftest import grant
from tests.documents.test_invoice_documents import documents
from tests.factories import calls, create_customer, invoices_of, run_billing, send_events, subscribe


def test_documents_show_credits_applied_and_amount_due(api, acme, per_call_plan):
    subscribe(api, id="s1", customer=acme, plan=per_call_plan, start="2026-01-01T00:00:00Z")
    grant(api, acme, id="topup", amount="12.34", effective_at="2026-01-01T00:00:00Z")
    send_events(api, calls(acme, 100, day="2026-01-10"))  # 50.00
    create_customer(api, id="plain")
    subscribe(api, id="s2", customer="plain", plan=per_call_plan, start="2026-01-01T00:00:00Z")
    send_events(api, calls("plain", 100, day="2026-01-10"))
    run_billing(api, "2026-02-01T00:00:00Z")
    [inv] = invoices_of(api, acme)
    assert (inv["total"], inv["credits_applied"], inv["amount_due"]) == ("50.00", "12.34", "37.66")
    text, html = documents(api, inv["id"])
    for doc in (text, html):
        assert "Credits applied" in doc and "12.34" in doc
        assert "Amount due" in doc and "37.66" in doc
    [other] = invoices_of(api, "plain")
    text, html = documents(api, other["id"])
    assert "Credits applied" not in text and "Credits applied" not in html
