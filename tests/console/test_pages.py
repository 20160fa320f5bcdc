"""Console pages: the figures they show are the API's figures."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.console.conftest import csrf_of
from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe

PRO = {
    "interval": "month",
    "billing_anchor": "calendar",
    "charges": [{"code": "calls", "meter": "api_calls", "model": "package", "package_size": 1000,
                 "package_price": "5.00", "free_units": 5000}],
}  # fmt: skip


def _calls(cid: str, n: int, day: str) -> list[dict]:  # type: ignore[type-arg]
    return [{"id": f"{cid}-{day}-{i}", "customer": cid, "type": "api_call", "timestamp": f"{day}T10:00:00Z",
             "properties": {"endpoint": "/v1/x"}} for i in range(n)]  # fmt: skip


def test_customer_list_search_and_detail(api: TestClient, console: TestClient) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", publish=True, **PRO)
    create_customer(api, id="acme", name="Acme Rockets", email="ops@acme.example.com", currency="USD", timezone="UTC")
    create_customer(api, id="globex", name="Globex", currency="USD", timezone="UTC")
    subscribe(api, id="sub_acme", customer="acme", plan="pro", start="2026-01-01T00:00:00Z")
    send_events(api, _calls("acme", 7, "2026-01-05"))
    api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})

    listing = console.get("/console/customers")
    assert "acme" in listing.text and "globex" in listing.text
    found = console.get("/console/customers", params={"q": "ROCKET"})
    assert "acme" in found.text and "globex" not in found.text
    none = console.get("/console/customers", params={"q": "zzz"})
    assert "No customer" in none.text

    page = console.get("/console/customers/acme")
    assert page.status_code == 200
    invoice = api.get("/v1/invoices", params={"customer": "acme"}).json()["data"][0]
    assert invoice["number"] in page.text
    upcoming = api.get("/v1/customers/acme/upcoming-invoice").json()
    assert upcoming["lines"]
    assert f'data-testid="upcoming-total">{upcoming["total"]} USD' in page.text
    assert console.get("/console/customers/nobody").status_code == 404

    # The portal button opens a read-only portal session for this customer.
    r = console.post("/console/customers/acme/portal", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and "/portal#token=pt_" in r.headers["location"]
    token = r.headers["location"].split("#token=")[1]
    me = console.get("/v1/portal/customer", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == "acme"


def test_forged_form_posts_are_refused(api: TestClient, console: TestClient) -> None:
    create_customer(api, id="acme", currency="USD", timezone="UTC")
    for path in ("/console/customers/acme/portal", "/console/plans", "/console/plans/preview"):
        r = console.post(path, data={"csrf_token": "forged"}, follow_redirects=False)
        assert r.status_code == 403, path
        assert console.post(path, data={}, follow_redirects=False).status_code == 403
    assert api.get("/v1/plans").json()["data"] == []


def test_plan_editor_preview_save_and_publish(api: TestClient, console: TestClient) -> None:
    create_meter(api, key="api_calls", event_type="api_call")
    page = console.get("/console/plans/new")
    csrf = csrf_of(page.text)
    form = {
        "csrf_token": csrf, "code": "starter", "name": "Starter", "currency": "USD", "interval": "month",
        "interval_count": "1", "billing_anchor": "calendar", "visibility": "public", "audience_type": "all",
        "recurring_amount": "10.00", "recurring_in_advance": "on", "recurring_prorate": "on",
        "charges": '[{"code": "calls", "meter": "api_calls", "model": "graduated", "tiers": ['
                   '{"up_to": 1000, "unit_price": "0"}, {"up_to": null, "unit_price": "0.01"}]}]',
        "sample": "calls = 12,345",
    }  # fmt: skip
    # Live preview: 10.00 + (12,345 - 1,000) x 0.01 = 123.45
    preview = console.post("/console/plans/preview", data=form)
    assert preview.status_code == 200
    assert 'data-testid="preview-total">123.45 USD' in preview.text
    # The same through the API once saved.
    bad = console.post("/console/plans/preview", data={**form, "charges": "[{"})
    assert "charges" in bad.text and "not valid JSON" in bad.text
    wrong = console.post(
        "/console/plans/preview", data={**form, "charges": '[{"code":"c","meter":"api_calls","model":"flat"}]'}
    )
    assert "charges[0]" in wrong.text

    saved = console.post("/console/plans", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    plan = api.get("/v1/plans/starter").json()
    assert plan["status"] == "draft" and plan["charges"][0]["model"] == "graduated"
    via_api = api.post("/v1/plans/starter/preview", json={"quantities": {"calls": "12345"}}).json()
    assert via_api["total"] == "123.45"

    # Edit the draft (existing names it), then publish with the confirmation box.
    edit = console.get("/console/plans/starter")
    assert 'name="existing" value="starter"' in edit.text
    changed = console.post("/console/plans", data={**form, "existing": "starter", "recurring_amount": "12.00"},
                           follow_redirects=False)  # fmt: skip
    assert changed.status_code == 303
    assert api.get("/v1/plans/starter").json()["fees"]["recurring"]["amount"] == "12.00"
    unconfirmed = console.post("/console/plans/starter/publish", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422 and api.get("/v1/plans/starter").json()["status"] == "draft"
    done = console.post("/console/plans/starter/publish", data={"csrf_token": csrf, "confirm": "yes"},
                        follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and api.get("/v1/plans/starter").json()["status"] == "published"
    published = console.get("/console/plans/starter")
    assert "published" in published.text and re.search(r"\$?12(\.00)?", published.text)
    # Creating a plan whose code exists names the conflict.
    again = console.post("/console/plans", data=form)
    assert again.status_code == 409
