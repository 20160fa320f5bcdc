"""The console in a real browser (Debian's Chromium via Playwright) against `tollway serve`:
sign-in and refusal, overview numbers, a customer page, the plan editor's live preview, the
simulator's totals, an API key created and revoked, and CSRF refusal. Screenshots for docs/console.md are written when
``TOLLWAY_SCREENSHOTS`` names a folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import EMAIL, PASSWORD

pytestmark = pytest.mark.e2e

CANVAS_INK = """el => {
  const c = el.querySelector('canvas'); if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;
}"""


def _shot(page, name: str, height: int | None = None) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("TOLLWAY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=False, clip=clip)


def _last_month() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    this = datetime(now.year, now.month, 1, tzinfo=UTC)
    prev = datetime(this.year - (this.month == 1), 12 if this.month == 1 else this.month - 1, 1, tzinfo=UTC)
    return prev, this


def _seed(admin: httpx.Client) -> dict[str, str]:
    """Last month, billed: a 6,200 units, b 3,000 units, c 30,000 units on "pro" ($5 per 1,000 after
    5,000 free) -> 10.00, 0.00, 125.00 invoiced (see tests/invoice/test_simulate.py)."""
    start, end = _last_month()

    def ok(r: httpx.Response) -> None:
        assert r.status_code < 300, r.text

    ok(admin.post("/v1/meters", json={"key": "units", "name": "Work units", "event_type": "work",
                                       "aggregation": "sum", "value_property": "n"}))  # fmt: skip
    ok(admin.post("/v1/plans", json={"code": "pro", "name": "Pro", "currency": "USD", "charges": [
        {"code": "units", "meter": "units", "model": "package", "package_size": 1000, "package_price": "5.00",
         "free_units": 5000}]}))  # fmt: skip
    ok(admin.post("/v1/plans/pro/publish"))
    events = []
    for cid, name, n in (("a", "Alpha Labs", 6200), ("b", "Beta Co", 3000), ("c", "Gamma Corp", 30000)):
        ok(admin.post("/v1/customers", json={"id": cid, "name": name, "currency": "USD", "timezone": "UTC"}))
        ok(admin.post("/v1/subscriptions", json={"id": f"sub_{cid}", "customer": cid, "plan": "pro",
                                                  "start": start.isoformat()}))  # fmt: skip
        events.append({"id": f"w_{cid}", "customer": cid, "type": "work",
                       "timestamp": (start + timedelta(days=3)).isoformat(), "properties": {"n": n}})  # fmt: skip
    ok(admin.post("/v1/events", json={"events": events}))
    run = admin.post("/v1/billing/run", json={"until": end.isoformat()})
    ok(run)
    assert run.json()["invoices_created"] == 3
    return {"month": f"{start:%Y-%m}", "label": f"{start:%B %Y}"}


def _sign_in(page, base: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/console")
    assert "/console/sign-in" in page.url
    page.fill("#email", EMAIL)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_console_in_a_browser(chromium, console_server) -> None:  # type: ignore[no-untyped-def]
    server, admin = console_server
    server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD)
    seeded = _seed(admin)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # Refused with a wrong password, admitted with the right one.
        _sign_in(page, server.url, password="not the password")
        assert "wrong e-mail or password" in page.inner_text(".flash.err")
        assert "/console/sign-in" in page.url
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/console")

        # Overview: last month's invoices (10 + 0 + 125), the unpaid total, the trend chart drawn.
        assert page.inner_text("[data-testid=invoiced-USD]") == "135.00 USD"
        assert page.inner_text("[data-testid=due-USD]") == "135.00 USD"
        assert seeded["label"] in page.inner_text("main")
        assert page.locator(".chart").first.evaluate(CANVAS_INK) > 50
        _shot(page, "overview")

        # A customer page: its invoice and upcoming invoice as the API has them.
        page.click("text=Customers")
        with page.expect_navigation():  # read the customer's page, not the list still showing
            page.click("a:text-is('c')")
        invoice = admin.get("/v1/invoices", params={"customer": "c"}).json()["data"][0]
        assert invoice["number"] in page.inner_text("main")
        upcoming = admin.get("/v1/customers/c/upcoming-invoice").json()
        assert page.inner_text("[data-testid=upcoming-total]") == f"{upcoming['total']} USD"
        _shot(page, "customer")

        # The plan editor: a draft with a live preview as you type, then saved.
        page.goto(f"{server.url}/console/plans/new")
        page.fill("input[name=code]", "flat")
        page.fill("input[name=name]", "Flat")
        page.fill("input[name=recurring_amount]", "4.00")
        page.fill("#charges", '[{"code": "units", "meter": "units", "model": "flat", "unit_price": "0.002"}]')
        page.fill("#sample", "units = 6200")
        total = page.locator("[data-testid=preview-total]")
        expect(total).to_have_text("16.40 USD", timeout=10_000)  # 6,200 x 0.002 + 4.00
        page.fill("#sample", "units = 30000")
        expect(total).to_have_text("64.00 USD", timeout=10_000)
        _shot(page, "plan-editor")
        page.click("[data-testid=save]")
        page.wait_for_url(f"{server.url}/console/plans/flat*")
        assert admin.get("/v1/plans/flat").json()["status"] == "draft"

        # The simulator: the draft on last month's real usage (hand computation in the seed).
        page.goto(f"{server.url}/console/simulator")
        page.select_option("select[name=plan]", "flat")
        page.fill("input[name=month]", seeded["month"])
        page.click("button:text('Simulate')")
        page.wait_for_selector("[data-testid=sim-simulated]")
        assert page.inner_text("[data-testid=sim-invoiced]") == "135.00 USD"
        assert page.inner_text("[data-testid=sim-simulated]") == "90.40 USD"  # 16.40 + 10.00 + 64.00
        assert page.inner_text("[data-testid=sim-difference]") == "-44.60 USD"
        assert "c" in page.inner_text("[data-testid=winners]")
        _shot(page, "simulator")

        # API keys: created with its key shown once, then revoked after the confirmation box.
        page.click("nav >> text=API keys")
        page.fill("input[name=name]", "gateway")
        page.click("[data-testid=create-key]")
        secret = page.inner_text("[data-testid=api-key]")
        assert secret.startswith("tw_ingest_")
        key = next(k for k in admin.get("/v1/api-keys").json()["data"] if k["name"] == "gateway")
        assert secret.startswith(key["prefix"]) and key["revoked_at"] is None
        with page.expect_navigation():  # the secret's page is gone once the list has loaded
            page.click("text=Done")
        assert secret not in page.content()
        row = page.locator(f"tr[data-key={key['id']}]")
        row.locator("summary").click()
        row.locator("input[name=confirm]").check()
        row.locator("[data-testid=revoke]").click()
        page.wait_for_url("**/console/api-keys?revoked=*")
        assert "revoked" in row.inner_text()
        assert {k["id"]: k for k in admin.get("/v1/api-keys").json()["data"]}[key["id"]]["revoked_at"]
        _shot(page, "api-keys", height=540)

        # Voiding an invoice asks first: dismissed, nothing happens; accepted, it is void.
        a_invoice = admin.get("/v1/invoices", params={"customer": "a"}).json()["data"][0]
        page.goto(f"{server.url}/console/invoices/{a_invoice['id']}")
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.click("[data-testid=void]")
        assert asked and a_invoice["number"] in asked[0]
        assert admin.get(f"/v1/invoices/{a_invoice['id']}").json()["status"] == "finalized"
        page.once("dialog", lambda d: d.accept())
        with page.expect_navigation(timeout=30_000):
            page.click("[data-testid=void]")
        assert page.locator("[data-testid=void]").count() == 0  # a void invoice has no actions
        assert admin.get(f"/v1/invoices/{a_invoice['id']}").json()["status"] == "void"

        # CSRF: a same-origin post without the token, and a cross-site form post, change nothing.
        status = page.evaluate("""async () => (await fetch('/console/invoices/x/void', {method: 'POST'})).status""")
        assert status == 403
        forged = context.new_page()
        forged.set_content(
            f"""<form id=f method=post action="{server.url}/console/settings">
                <input name="company.name" value="Hacked"><input name="csrf_token" value="guess"></form>
                <script>document.getElementById('f').submit()</script>"""
        )
        forged.wait_for_load_state()
        forged.close()
        assert admin.get("/v1/settings").json()["company"]["name"] != "Hacked"
    finally:
        context.close()
