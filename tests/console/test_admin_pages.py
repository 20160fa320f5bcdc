"""Console webhooks and API keys pages, and the customer page's credits and alerts, against the
API's answers: happy paths, CSRF refusal, bad input shown as messages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.alert.conftest import events, now_in_period, setup_plan
from tests.conftest import free_port
from tests.console.conftest import csrf_of
from tests.notification.conftest import SECRET_KEY, Receiver
from tollway.alert.evaluate import evaluate_changed
from tollway.config import Settings
from tollway.meter import fold
from tollway.notification import outbox
from tollway.notification.delivery import deliver_due
from tollway.worker import register_handlers


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, run_worker_in_serve=False, secret_key=SECRET_KEY,
                    webhook_allow_private_urls=True, webhook_timeout_seconds=2.0)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(port=free_port())
    r.start()
    yield r
    r.stop()


def _secret_on(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, html
    return found.group(1)


def test_webhook_endpoint_create_secret_once_toggle_rotate_delete(api: TestClient, console: TestClient) -> None:
    page = console.get("/console/webhooks")
    assert page.status_code == 200 and "No webhook endpoints yet" in page.text
    csrf = csrf_of(page.text)
    form = {"csrf_token": csrf, "id": "wh_ops", "url": "https://hooks.example.com/tw", "description": "ops",
            "event_types": ["invoice.paid", "alert.triggered"]}  # fmt: skip
    created = console.post("/console/webhooks", data=form)
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = _secret_on(created.text, "secret")
    assert secret.startswith("whsec_")
    api_view = api.get("/v1/webhook-endpoints/wh_ops").json()
    assert api_view["event_types"] == ["invoice.paid", "alert.triggered"] and api_view["status"] == "enabled"

    listing = console.get("/console/webhooks")
    assert "wh_ops" in listing.text and "https://hooks.example.com/tw" in listing.text
    assert "invoice.paid, alert.triggered" in listing.text and secret not in listing.text
    detail = console.get("/console/webhooks/wh_ops")
    assert secret not in detail.text and "Nothing sent to this endpoint yet" in detail.text

    r = console.post("/console/webhooks/wh_ops/status", data={"csrf_token": csrf, "status": "disabled"},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert api.get("/v1/webhook-endpoints/wh_ops").json()["status"] == "disabled"
    assert "disabled by PATCH" in console.get("/console/webhooks").text  # the reason, as the API gives it
    console.post("/console/webhooks/wh_ops/status", data={"csrf_token": csrf, "status": "enabled"})
    assert api.get("/v1/webhook-endpoints/wh_ops").json()["status"] == "enabled"
    bad = console.post("/console/webhooks/wh_ops/status", data={"csrf_token": csrf, "status": "paused"})
    assert bad.status_code == 422 and "flash err" in bad.text and "status" in bad.text

    rotated = console.post("/console/webhooks/wh_ops/rotate-secret", data={"csrf_token": csrf})
    assert rotated.status_code == 200
    new_secret = _secret_on(rotated.text, "secret")
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert new_secret not in console.get("/console/webhooks/wh_ops").text

    unconfirmed = console.post("/console/webhooks/wh_ops/delete", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    assert api.get("/v1/webhook-endpoints/wh_ops").status_code == 200
    gone = console.post("/console/webhooks/wh_ops/delete", data={"csrf_token": csrf, "confirm": "yes"},
                        follow_redirects=False)  # fmt: skip
    assert gone.status_code == 303 and api.get("/v1/webhook-endpoints/wh_ops").status_code == 404
    assert console.get("/console/webhooks/wh_ops").status_code == 404
    assert "flash err" in console.get("/console/webhooks/wh_ops").text


def test_webhook_forms_bad_input_and_csrf(api: TestClient, console: TestClient) -> None:
    csrf = csrf_of(console.get("/console/webhooks").text)
    bad_url = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "w1", "url": "ftp://x.example.com"})
    assert bad_url.status_code == 422 and "<code>url</code>" in bad_url.text
    assert 'value="ftp://x.example.com"' in bad_url.text  # the form keeps what was typed
    bad_id = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "bad id", "url": "https://e.com"})
    assert bad_id.status_code == 422 and "<code>id</code>" in bad_id.text
    bad_type = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "w1", "url": "https://e.com",
                                                       "event_types": "invoice.lost"})  # fmt: skip
    assert bad_type.status_code == 422 and "invoice.lost" in bad_type.text
    first = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "w1", "url": "https://e.com"})
    assert first.status_code == 200
    again = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "w1", "url": "https://e.com"})
    assert again.status_code == 409 and "already exists" in again.text
    assert [e["id"] for e in api.get("/v1/webhook-endpoints").json()["data"]] == ["w1"]
    assert console.post("/console/webhook-deliveries/dlv_999/retry", data={"csrf_token": csrf}).status_code == 404
    garbage = console.get("/console/webhooks", params={"after": "not a cursor"})
    assert garbage.status_code == 422 and "<code>after</code>" in garbage.text and "w1" in garbage.text
    garbage = console.get("/console/webhooks/w1", params={"after": "not a cursor"})
    assert garbage.status_code == 422 and "cursor" in garbage.text

    for path in ("/console/webhooks", "/console/webhooks/w1/status", "/console/webhooks/w1/rotate-secret",
                 "/console/webhooks/w1/delete", "/console/webhook-deliveries/dlv_1/retry"):  # fmt: skip
        assert console.post(path, data={"csrf_token": "forged", "id": "w2", "url": "https://e.com",
                                        "status": "disabled", "confirm": "yes"}).status_code == 403, path  # fmt: skip
    assert api.get("/v1/webhook-endpoints/w1").json()["status"] == "enabled"
    assert [e["id"] for e in api.get("/v1/webhook-endpoints").json()["data"]] == ["w1"]


def test_delivery_log_and_retry(api, console, session_factory, settings, receiver) -> None:  # type: ignore[no-untyped-def]
    register_handlers(settings)
    receiver.statuses = [500]
    assert api.post("/v1/webhook-endpoints", json={"id": "wh_1", "url": receiver.url}).status_code == 201
    with session_factory() as session:
        outbox.emit(session, "invoice.paid", {"id": "inv_1"}, key="a")
        outbox.emit(session, "invoice.voided", {"id": "inv_2"}, key="b")
        session.commit()
    outbox.drain(session_factory)
    deliver_due(session_factory, settings)  # the first fails (500); the second waits behind it
    deliveries = api.get("/v1/webhook-endpoints/wh_1/deliveries").json()["data"]
    page = console.get("/console/webhooks/wh_1")
    rows = re.findall(r'data-delivery="(dlv_\d+)"', page.text)
    assert rows == [d["id"] for d in deliveries]  # newest first, as the API lists them
    failed = next(d for d in deliveries if d["attempts"] == 1)
    assert failed["last_status_code"] == 500 and "HTTP 500" in page.text
    assert 'data-testid="failures">1<' in page.text
    retried = console.post(f"/console/webhook-deliveries/{failed['id']}/retry", data={"csrf_token": csrf_of(page.text)},
                           follow_redirects=False)  # fmt: skip
    assert retried.status_code == 303 and retried.headers["location"].startswith("/console/webhooks/wh_1?retried=")
    deliver_due(session_factory, settings)
    statuses = {d["id"]: d["status"] for d in api.get("/v1/webhook-endpoints/wh_1/deliveries").json()["data"]}
    assert statuses[failed["id"]] == "delivered"
    assert "delivered" in console.get(retried.headers["location"]).text


def test_webhooks_page_explains_a_missing_secret_key(app, api: TestClient, console: TestClient) -> None:  # type: ignore[no-untyped-def]
    api.post("/v1/webhook-endpoints", json={"id": "wh_1", "url": "https://e.com"})
    app.state.settings = app.state.settings.model_copy(update={"secret_key": None})
    page = console.get("/console/webhooks")
    assert page.status_code == 200 and 'data-testid="secret-key-missing"' in page.text
    assert "TOLLWAY_SECRET_KEY" in page.text and "wh_1" in page.text and "create-endpoint" not in page.text
    detail = console.get("/console/webhooks/wh_1")
    assert (
        detail.status_code == 200 and "TOLLWAY_SECRET_KEY" in detail.text and 'data-testid="rotate"' not in detail.text
    )
    csrf = csrf_of(page.text)
    forced = console.post("/console/webhooks", data={"csrf_token": csrf, "id": "w2", "url": "https://e.com"})
    assert forced.status_code == 503 and "TOLLWAY_SECRET_KEY" in forced.text
    rotate = console.post("/console/webhooks/wh_1/rotate-secret", data={"csrf_token": csrf})
    assert rotate.status_code == 503 and "TOLLWAY_SECRET_KEY" in rotate.text


def test_api_keys_create_shown_once_and_revoke(api: TestClient, console: TestClient) -> None:
    api.post("/v1/customers", json={"id": "acme", "currency": "USD", "timezone": "UTC"})
    page = console.get("/console/api-keys")
    assert page.status_code == 200
    for key in api.get("/v1/api-keys").json()["data"]:
        assert key["id"] in page.text and key["prefix"] in page.text
    csrf = csrf_of(page.text)
    created = console.post("/console/api-keys", data={"csrf_token": csrf, "scope": "ingest", "name": "gateway",
                                                      "customer": "acme"})  # fmt: skip
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = _secret_on(created.text, "api-key")
    assert secret.startswith("tw_ingest_")
    listed = {k["name"]: k for k in api.get("/v1/api-keys").json()["data"]}
    assert listed["gateway"]["scope"] == "ingest" and secret.startswith(listed["gateway"]["prefix"])

    # The key works, for its customer only.
    def send(customer: str) -> int:
        event = {"id": f"e-{customer}", "customer": customer, "type": "t", "timestamp": "2026-01-01T00:00:00Z"}
        r = api.post("/v1/events", headers={"Authorization": f"Bearer {secret}"}, json={"events": [event]})
        return r.status_code

    assert send("acme") == 202
    assert send("globex") == 422  # another customer: refused
    listing = console.get("/console/api-keys")
    assert secret not in listing.text and listed["gateway"]["prefix"] in listing.text and "customer" in listing.text

    key_id = listed["gateway"]["id"]
    unconfirmed = console.post(f"/console/api-keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    assert all(k["revoked_at"] is None for k in api.get("/v1/api-keys").json()["data"])
    revoked = console.post(f"/console/api-keys/{key_id}/revoke", data={"csrf_token": csrf, "confirm": "yes"},
                           follow_redirects=False)  # fmt: skip
    assert revoked.status_code == 303
    after = {k["id"]: k for k in api.get("/v1/api-keys").json()["data"]}
    assert after[key_id]["revoked_at"] is not None
    refused = api.post("/v1/events", headers={"Authorization": f"Bearer {secret}"}, json={"events": []})
    assert refused.status_code == 401
    assert "revoked" in console.get(revoked.headers["location"]).text


def test_api_keys_bad_input_and_csrf(api: TestClient, console: TestClient) -> None:
    csrf = csrf_of(console.get("/console/api-keys").text)
    before = len(api.get("/v1/api-keys").json()["data"])
    bad_scope = console.post("/console/api-keys", data={"csrf_token": csrf, "scope": "root", "name": "x"})
    assert bad_scope.status_code == 422 and "<code>scope</code>" in bad_scope.text
    admin_for_customer = console.post("/console/api-keys", data={"csrf_token": csrf, "scope": "admin",
                                                                 "customer": "acme"})  # fmt: skip
    assert admin_for_customer.status_code == 422 and "only ingest keys" in admin_for_customer.text
    unknown = console.post("/console/api-keys", data={"csrf_token": csrf, "scope": "ingest", "customer": "nobody"})
    assert unknown.status_code == 404 and "nobody" in unknown.text
    long_name = console.post("/console/api-keys", data={"csrf_token": csrf, "scope": "ingest", "name": "x" * 300})
    assert long_name.status_code == 422 and "<code>name</code>" in long_name.text
    assert (
        console.post("/console/api-keys/key_nope/revoke", data={"csrf_token": csrf, "confirm": "yes"}).status_code
        == 404
    )
    garbage = console.get("/console/api-keys", params={"after": "not a cursor"})
    assert garbage.status_code == 422 and "<code>after</code>" in garbage.text
    for path in ("/console/api-keys", f"/console/api-keys/{api.get('/v1/api-keys').json()['data'][0]['id']}/revoke"):
        r = console.post(path, data={"csrf_token": "forged", "scope": "admin", "confirm": "yes"})
        assert r.status_code == 403, path
    keys = api.get("/v1/api-keys").json()["data"]
    assert len(keys) == before and all(k["revoked_at"] is None for k in keys)


def test_customer_page_credits_and_alerts(api: TestClient, console: TestClient, session_factory) -> None:  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=10)  # acme on "pro": 0.50 per call, notifications at 5, 10, 15 calls
    assert api.post("/v1/alerts", json={"id": "al_acme", "customer": "acme", "metric": "spend",
                                        "thresholds": ["100"]}).status_code == 201  # fmt: skip
    assert api.post("/v1/alerts", json={"id": "al_all", "metric": "usage", "meter": "api_calls",
                                        "thresholds": ["1000"]}).status_code == 201  # fmt: skip
    api.post("/v1/customers", json={"id": "other", "currency": "USD", "timezone": "UTC"})
    assert api.post("/v1/alerts", json={"id": "al_other", "customer": "other", "metric": "spend",
                                        "thresholds": ["5"]}).status_code == 201  # fmt: skip
    for gid, amount in (("cg_paid", "20.00"), ("cg_promo", "5.00")):
        r = api.post("/v1/customers/acme/credit-grants", json={"id": gid, "amount": amount, "category": "paid"})
        assert r.status_code == 201, r.text
    events(api, 12)
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 2

    page = console.get("/console/customers/acme")
    assert page.status_code == 200
    credits = api.get("/v1/customers/acme/credits").json()
    assert f'data-testid="credits-balance">{credits["balance"]} {credits["currency"]}' in page.text
    assert f'data-testid="credits-ongoing">{credits["ongoing_balance"]} {credits["currency"]}' in page.text
    for grant in credits["grants"]:
        assert grant["id"] in page.text
    assert "al_acme" in page.text and "al_all" in page.text and "al_other" not in page.text
    fired = api.get("/v1/alert-events", params={"customer": "acme"}).json()["data"]
    assert len(fired) == 2
    assert re.findall(r'data-event="(ae_\d+)"', page.text) == [e["id"] for e in reversed(fired)]  # newest first
    empty = console.get("/console/customers/other")
    assert "No alert has fired" in empty.text and "No credit grants" in empty.text
