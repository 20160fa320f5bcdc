"""The portal page in a real browser (Debian's Chromium via Playwright) against `tollway serve`."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.portal._world import bearer, portal_session, seed

pytestmark = pytest.mark.e2e

CANVAS_INK = """el => {
  const c = el.querySelector('canvas'); if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;
}"""


def test_portal_page_figures_chart_pdf_and_plan_change(chromium, portal_server, api, tmp_path):
    server, admin = portal_server, api
    world = seed(admin)
    r = admin.put(
        "/v1/settings",
        json={"portal": {"title": "Weather Co billing", "primary_color": "#7b2cbf", "self_service": True}},
    )
    assert r.status_code == 200, r.text
    token = portal_session(admin, "acme", permissions=["read", "subscribe"])["token"]
    # the server's worker fires acme's plan notifications (50 % and 100 % of 10 calls)
    fired = wait_for_alert_events(server.url, token, 2)
    assert [(e["threshold"], e["value"]) for e in fired] == [("50", "12"), ("100", "12")]
    page = chromium.new_page(viewport={"width": 390, "height": 900})  # a phone
    try:
        page.goto(f"{server.url}/portal#token={token}")
        page.wait_for_selector("[data-testid=upcoming]")
        assert page.url == f"{server.url}/portal"  # the token left the address bar
        assert page.title() == "Weather Co billing"
        text = page.inner_text("main")
        assert "Acme Corp" in text and "Globex" not in text and world.globex_invoice["number"] not in text
        assert page.inner_text("[data-testid=meter-api_calls] [data-testid=meter-total]") == "12"
        assert page.inner_text("[data-testid=upcoming-total]") == "16.00 USD"
        assert world.acme_invoice["number"] in page.inner_text("[data-testid=invoices]")
        alerts = page.locator("[data-testid=alerts] [data-testid=alert]")
        assert alerts.count() == 2  # newest first
        assert "100% of your plan's 10" in alerts.nth(0).inner_text()
        assert "50% of your plan's 5" in alerts.nth(1).inner_text()
        # the chart is drawn: the canvas holds ink
        chart = page.locator("[data-testid=meter-api_calls] .chart")
        assert chart.evaluate(CANVAS_INK) > 100
        # the PDF downloads (with the bearer token, through a blob)
        with page.expect_download() as download:
            page.click("a[data-pdf]")
        pdf = tmp_path / "invoice.pdf"
        download.value.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF") and download.value.suggested_filename.endswith(".pdf")
        # self-service: switch to Pro
        assert page.inner_text("[data-testid=plan-pro] [data-testid=preview-total]") == "25.70 USD"
        page.on("dialog", lambda d: d.accept())
        page.click("[data-testid=plan-pro] button")
        page.wait_for_selector(".flash.ok")
        assert "Pro" in page.inner_text("[data-testid=subscription]")
        page.screenshot(path=str(tmp_path / "portal-phone.png"), full_page=True)
    finally:
        page.close()
    subs = admin.get("/v1/subscriptions", params={"customer": "acme"}).json()["data"]
    assert {s["plan"] for s in subs if s["status"] == "active"} == {"pro"}
    assert next(s for s in subs if s["id"] == "sub_acme")["changed_to"] is not None


def wait_for_alert_events(url: str, token: str, n: int) -> list[dict[str, Any]]:
    """The customer's alert events through the live server's portal API, once there are ``n``."""
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{url}/v1/portal/alert-events", headers=bearer(token), timeout=5)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        if len(data) >= n or time.monotonic() > deadline:
            return data
        time.sleep(0.2)


class _Host(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _host(body: str) -> Iterator[int]:
    """A page on its own origin (``http://localhost:<port>``) that frames the portal."""
    port = free_port()
    handler = type("Host", (_Host,), {"body": body.encode()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        httpd.shutdown()


def test_iframe_allowed_from_a_listed_origin_only(chromium, portal_server, api):
    server, admin = portal_server, api
    seed(admin)
    url = f"{server.url}/portal#token={portal_session(admin, 'acme')['token']}"
    frame_html = f'<!doctype html><iframe id="f" title="billing" src="{url}" width="800" height="600"></iframe>'
    with _host(frame_html) as allowed, _host(frame_html) as refused:
        r = admin.put("/v1/settings", json={"portal": {"frame_ancestors": [f"http://localhost:{allowed}"]}})
        assert r.status_code == 200, r.text
        page = chromium.new_page()
        try:
            page.goto(f"http://localhost:{allowed}/")
            frame = page.frame_locator("#f")
            frame.locator("[data-testid=upcoming]").wait_for()
            assert "Acme Corp" in frame.locator("main").inner_text()

            page.goto(f"http://localhost:{refused}/")
            page.wait_for_load_state("load")
            page.wait_for_timeout(500)
            inner = [f for f in page.frames if f != page.main_frame]
            assert inner and not inner[0].url.startswith(server.url)  # chrome-error://: blocked by CSP
            assert inner[0].query_selector("#portal") is None
        finally:
            page.close()
