"""Console simulator, invoices, meters and settings pages against the API's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.console.conftest import csrf_of
from tests.factories import send_events
from tests.invoice.test_simulate import _month


def test_simulator_page_totals_match_the_hand_computation(api: TestClient, console: TestClient) -> None:
    _month(api, {"a": 6200, "b": 3000, "c": 30000})  # hand computation in tests/invoice/test_simulate.py
    page = console.get("/console/simulator", params={"plan": "flat", "month": "2026-01"})
    assert page.status_code == 200
    assert 'data-testid="sim-invoiced">135.00 USD' in page.text
    assert 'data-testid="sim-simulated">90.40 USD' in page.text
    assert 'data-testid="sim-difference">-44.60 USD' in page.text
    empty = console.get("/console/simulator", params={"plan": "flat", "month": "2025-06"})
    assert "No invoices in USD" in empty.text
    unknown = console.get("/console/simulator", params={"plan": "nope", "month": "2026-01"})
    assert "nope" in unknown.text and "flash err" in unknown.text


def test_invoices_list_filters_detail_pdf_and_actions(api: TestClient, console: TestClient) -> None:
    _month(api, {"a": 6200, "b": 3000})
    listing = console.get("/console/invoices")
    api_invoices = api.get("/v1/invoices").json()["data"]
    for inv in api_invoices:
        assert inv["number"] in listing.text
    only_a = console.get("/console/invoices", params={"customer": "a"})
    a_inv = next(i for i in api_invoices if i["customer"] == "a")
    b_inv = next(i for i in api_invoices if i["customer"] == "b")
    assert a_inv["number"] in only_a.text and b_inv["number"] not in only_a.text
    assert "No invoices match" in console.get("/console/invoices", params={"month": "2025-01"}).text
    detail = console.get(f"/console/invoices/{a_inv['id']}")
    assert f'data-testid="invoice-total">{a_inv["total"]} USD' in detail.text
    pdf = console.get(f"/console/invoices/{a_inv['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    paid = console.post(f"/console/invoices/{a_inv['id']}/mark-paid", data={"csrf_token": csrf_of(detail.text)},
                        follow_redirects=False)  # fmt: skip
    assert paid.status_code == 303 and api.get(f"/v1/invoices/{a_inv['id']}").json()["status"] == "paid"
    again = console.post(f"/console/invoices/{a_inv['id']}/void", data={"csrf_token": csrf_of(detail.text)})
    assert again.status_code == 409 and "flash err" in again.text


def test_meters_page_shows_the_usage_api_totals(api: TestClient, console: TestClient) -> None:
    _month(api, {"a": 6200, "b": 3000})  # January 2026: outside the page's window
    assert "No usage in the last 7 days" in console.get("/console/meters", params={"days": 7}).text
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    send_events(api, [{"id": f"r{i}", "customer": c, "type": "work", "timestamp": yesterday, "properties": {"n": n}}
                      for i, (c, n) in enumerate([("a", 1250), ("b", 40), ("a", 7)])])  # fmt: skip
    page = console.get("/console/meters", params={"meter": "units", "days": 7})
    usage = api.get("/v1/meters/units/usage", params={"from": (datetime.now(UTC) - timedelta(days=7)).isoformat()})
    assert usage.json()["data"][0]["value"] == "1297"
    assert '<span class="meter-total">1,297</span>' in page.text


def test_settings_form_round_trips_through_the_api(api: TestClient, console: TestClient) -> None:
    page = console.get("/console/settings")
    csrf = csrf_of(page.text)
    form = {
        "csrf_token": csrf, "company.name": "Weather Co", "company.address": "1 Main St\r\nSpringfield",
        "company.email": "billing@weather.example.com", "invoice.payment_terms_days": "30",
        "portal.primary_color": "#0b7285", "portal.frame_ancestors": "https://app.weather.example.com\n",
        "portal.self_service": "on",
    }  # fmt: skip
    r = console.post("/console/settings", data=form, follow_redirects=False)
    assert r.status_code == 303
    got = api.get("/v1/settings").json()
    assert got["company"]["name"] == "Weather Co" and got["company"]["address"] == "1 Main St\nSpringfield"
    assert got["invoice"]["payment_terms_days"] == 30
    assert got["portal"]["frame_ancestors"] == ["https://app.weather.example.com"] and got["portal"]["self_service"]
    bad = console.post("/console/settings", data={**form, "portal.primary_color": "teal"})
    assert bad.status_code == 422 and "portal.primary_color" in bad.text
    assert api.get("/v1/settings").json()["portal"]["primary_color"] == "#0b7285"


def test_events_page_lists_what_arrived_and_flags_unknown_customers(api: TestClient, console: TestClient) -> None:
    _month(api, {"a": 6200})
    send_events(api, [{"id": "ghost-1", "customer": "ghost", "type": "work", "timestamp": "2026-01-20T00:00:00Z",
                       "properties": {"n": 1}}])  # fmt: skip
    page = console.get("/console/events")
    assert "w_a" in page.text and "ghost-1" in page.text
    assert 'data-testid="unknown-customers"' in page.text and "ghost" in page.text
    only = console.get("/console/events", params={"customer": "ghost"})
    assert "ghost-1" in only.text and "w_a" not in only.text and 'data-testid="no-such-customer"' in only.text
    typed = console.get("/console/events", params={"type": "nothing"})
    assert "No events match" in typed.text
