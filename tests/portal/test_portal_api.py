"""The portal API: sessions, the scoping matrix (every route x own / other / none), self-service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.factories import calls, send_events
from tests.portal._world import bearer, fire_alerts, portal_session
from tollway.kit.time import utcnow
from tollway.models import PortalSession


def test_session_create_and_shape(api, world):
    s = portal_session(api, "acme", expires_in=120, return_url="https://app.example.com/account")
    assert s["token"].startswith("pt_") and len(s["token"]) > 40
    assert s["url"] == f"http://testserver/portal#token={s['token']}"
    assert s["permissions"] == ["read"] and s["customer"] == "acme"
    assert s["return_url"] == "https://app.example.com/account"
    left = datetime.fromisoformat(s["expires_at"]) - utcnow()
    assert timedelta(seconds=100) < left <= timedelta(seconds=120)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 86401}, "expires_in"),
        ({"permissions": ["admin"]}, "permissions[0]"),
        ({"permissions": []}, "permissions"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
    ],
)
def test_session_bad_input_names_the_field(api, world, body, field):
    r = api.post("/v1/customers/acme/portal-sessions", json=body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_session_needs_admin_and_an_existing_customer(api, anon, world, ingest_key):
    assert anon.post("/v1/customers/acme/portal-sessions", json={}).status_code == 401
    r = anon.post("/v1/customers/acme/portal-sessions", json={}, headers=bearer(ingest_key))
    assert r.status_code == 403
    assert api.post("/v1/customers/nobody/portal-sessions", json={}).status_code == 404


def test_token_is_stored_hashed(api, world, session_factory):
    s = portal_session(api, "acme")
    with session_factory() as db:
        row = db.get(PortalSession, s["id"])
        assert row is not None and s["token"] not in row.token_hash and len(row.token_hash) == 64


OWN_AND_OTHER = [
    # (path for acme's own resource, path for globex's resource or None when the route has no id)
    ("/v1/portal/customer", None),
    ("/v1/portal/subscriptions", None),
    ("/v1/portal/subscriptions/sub_acme", "/v1/portal/subscriptions/sub_globex"),
    ("/v1/portal/plans", None),
    ("/v1/portal/usage?meter=api_calls", "/v1/portal/usage?meter=storage"),
    ("/v1/portal/upcoming-invoice", None),
    ("/v1/portal/invoices", None),
    ("/v1/portal/invoices/{acme_invoice}", "/v1/portal/invoices/{globex_invoice}"),
    ("/v1/portal/invoices/{acme_invoice}/pdf", "/v1/portal/invoices/{globex_invoice}/pdf"),
    ("/v1/portal/credits", None),
    ("/v1/portal/limits", None),
    ("/v1/portal/alert-events", None),
]


def test_matrix_every_route_own_other_none(api, anon, world, admin_key, ingest_key):
    token = portal_session(api, "acme")["token"]
    ids = {"acme_invoice": world.acme_invoice["id"], "globex_invoice": world.globex_invoice["id"]}
    for own, other in OWN_AND_OTHER:
        own = own.format(**ids)
        r = anon.get(own, headers=bearer(token))
        assert r.status_code == 200, (own, r.text)
        if not own.endswith("/pdf"):
            text = r.text.lower()
            assert "globex" not in text and world.globex_invoice["id"] not in text, own
        else:
            assert r.content.startswith(b"%PDF")
        if other is not None:
            other = other.format(**ids)
            r = anon.get(other, headers=bearer(token))
            assert r.status_code == 404, (other, r.text)
            assert "globex" not in r.text.lower() or "does not exist" in r.text
        # none: no token, an unknown token, a tampered one, API keys (not portal tokens)
        assert anon.get(own).status_code == 401, own
        for key in (admin_key, ingest_key):
            r = anon.get(own, headers=bearer(key))
            assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), own
        assert anon.get(own, headers=bearer("pt_" + "x" * 43)).status_code == 401, own
        assert (
            anon.get(own, headers=bearer(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))).status_code == 401
        )


def test_own_figures(api, anon, world):
    h = bearer(portal_session(api, "acme")["token"])
    assert anon.get("/v1/portal/customer", headers=h).json()["id"] == "acme"
    subs = anon.get("/v1/portal/subscriptions", headers=h).json()["data"]
    assert [s["id"] for s in subs] == ["sub_acme"]
    usage = anon.get(
        "/v1/portal/usage",
        params={"meter": "api_calls", "from": world.this_month.isoformat(), "group_by": "endpoint"},
        headers=h,
    ).json()
    assert usage["customer"] == "acme"
    assert {row["groups"]["endpoint"]: row["value"] for row in usage["data"]} == {"/search": "8", "/forecast": "4"}
    upcoming = anon.get("/v1/portal/upcoming-invoice", headers=h).json()
    assert upcoming["customer"] == "acme" and upcoming["total"] == "16.00"  # 10.00 + 12 calls x 0.50
    invoices = anon.get("/v1/portal/invoices", headers=h).json()["data"]
    assert [i["id"] for i in invoices] == [world.acme_invoice["id"]]
    assert invoices[0]["total"] == "12.00"  # 10.00 + 4 calls x 0.50


def test_plans_are_public_published_and_in_the_audience(api, anon, world):
    h = bearer(portal_session(api, "acme")["token"])
    plans = {p["code"]: p for p in anon.get("/v1/portal/plans", headers=h).json()}
    assert set(plans) == {"basic", "pro", "storage"}  # never secret (private), partners (audience), drafty
    assert plans["basic"]["current"] is True and plans["pro"]["current"] is False
    assert "audience" not in plans["pro"]
    assert plans["pro"]["prices"] == [
        "Recurring fee: 25.00 USD per period, billed in advance",
        "calls: 0.10 USD per unit, the first 5 units free",
    ]
    # the usage so far this period (12 calls) priced on each plan, through the invoice engine
    assert plans["pro"]["preview"]["total"] == "25.70"  # 25.00 + (12 - 5) x 0.10
    assert plans["basic"]["preview"]["total"] == "16.00"
    globex = {
        p["code"] for p in anon.get("/v1/portal/plans", headers=bearer(portal_session(api, "globex")["token"])).json()
    }
    assert "partners" in globex and "secret" not in globex


def test_portal_token_on_any_other_route_is_403(api, anon, world):
    h = bearer(portal_session(api, "acme")["token"])
    for method, path in [
        ("GET", "/v1/customers/acme"),
        ("GET", "/v1/invoices"),
        ("GET", f"/v1/invoices/{world.acme_invoice['id']}/pdf"),
        ("GET", "/v1/meters/api_calls/usage?customer=acme"),
        ("POST", "/v1/events"),
        ("POST", "/v1/customers/acme/portal-sessions"),
        ("DELETE", "/v1/customers/acme/portal-sessions"),
        ("GET", "/v1/plans"),
        ("GET", "/v1/alert-events?customer=acme"),
        ("GET", "/v1/alerts"),
    ]:
        r = anon.request(method, path, headers=h, json={} if method == "POST" else None)
        assert r.status_code == 403, (method, path, r.text)


def test_expired_and_revoked_tokens_are_401(api, anon, world, session_factory):
    a1, a2, g = portal_session(api, "acme"), portal_session(api, "acme"), portal_session(api, "globex")
    with session_factory() as db:
        db.execute(update(PortalSession).where(PortalSession.id == a1["id"]).values(expires_at=utcnow()))
        db.commit()
    assert anon.get("/v1/portal/customer", headers=bearer(a1["token"])).status_code == 401
    assert anon.get("/v1/portal/customer", headers=bearer(a2["token"])).status_code == 200
    r = api.delete("/v1/customers/acme/portal-sessions")
    assert r.status_code == 200 and r.json() == {"customer": "acme", "revoked": 1}  # a1 had expired
    assert anon.get("/v1/portal/customer", headers=bearer(a2["token"])).status_code == 401
    # a revoked token on a non-portal route is no longer a portal token: 401, not 403
    assert anon.get("/v1/customers/acme", headers=bearer(a2["token"])).status_code == 401
    assert anon.get("/v1/portal/customer", headers=bearer(g["token"])).status_code == 200  # others' sessions live on


def test_page_is_a_shell_with_the_security_headers(anon, world):
    r = anon.get("/portal")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert "Acme" not in r.text and 'hx-get="/portal/ui/dashboard"' in r.text
    assert anon.get("/portal/ui/dashboard").status_code == 401


def test_dashboard_fragment_shows_only_the_customers_figures(api, anon, world):
    r = anon.get("/portal/ui/dashboard", headers=bearer(portal_session(api, "acme")["token"]))
    assert r.status_code == 200, r.text
    assert "Acme Corp" in r.text and "Globex" not in r.text and world.globex_invoice["number"] not in r.text
    assert world.acme_invoice["number"] in r.text and "16.00 USD" in r.text
    # recent alerts: acme's two plan notifications, newest first; globex's never
    alerts = r.text.split('data-testid="alerts"')[1].split("</table>")[0]
    rows = [row.split("</tr>")[0] for row in alerts.split('data-testid="alert"')[1:]]
    assert len(rows) == 2, alerts
    assert ">100% of your plan's 10</td>" in rows[0] and ">50% of your plan's 5</td>" in rows[1]
    assert all(">api_calls this period</td>" in row and ">12</td>" in row for row in rows)
    assert "No alerts yet" not in r.text


def test_dashboard_alerts_empty_state_explains_itself(api, anon, world):
    api.post("/v1/customers", json={"id": "newco", "name": "Newco", "currency": "USD", "timezone": "UTC"})
    r = anon.get("/portal/ui/dashboard", headers=bearer(portal_session(api, "newco")["token"]))
    assert r.status_code == 200, r.text
    assert 'data-testid="alerts"' not in r.text
    assert "No alerts yet: when your usage or spend in a billing period reaches a threshold" in r.text


def _self_service(api, on: bool) -> None:
    r = api.put("/v1/settings", json={"portal": {"self_service": on}})
    assert r.status_code == 200, r.text


def test_self_service_needs_subscribe_and_the_setting(api, anon, world):
    read = bearer(portal_session(api, "acme")["token"])
    sub = bearer(portal_session(api, "acme", permissions=["subscribe"])["token"])
    change = "/v1/portal/subscriptions/sub_acme/change-plan"
    assert anon.post(change, json={"plan": "pro"}, headers=sub).status_code == 403  # setting off (default)
    _self_service(api, True)
    assert anon.post(change, json={"plan": "pro"}, headers=read).status_code == 403  # read session
    assert anon.post("/v1/portal/subscriptions/sub_acme/cancel", headers=read).status_code == 403
    # the admin rules apply: private plans and plans of another audience are refused, naming the field
    for plan, field in [("secret", "plan"), ("partners", "customer"), ("drafty", "plan"), ("nope", "plan")]:
        r = anon.post(change, json={"plan": plan}, headers=sub)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (plan, r.text)
    # another customer's subscription is a 404
    assert (
        anon.post("/v1/portal/subscriptions/sub_globex/change-plan", json={"plan": "pro"}, headers=sub).status_code
        == 404
    )
    assert anon.post("/v1/portal/subscriptions/sub_globex/cancel", headers=sub).status_code == 404
    r = anon.post(change, json={"plan": "pro"}, headers=sub)
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["plan"] == "pro" and new["previous"] == "sub_acme" and new["customer"] == "acme"
    old = api.get("/v1/subscriptions/sub_acme").json()
    assert old["changed_to"] == new["id"] and old["ends_at"] == new["start"]
    # subscribing again while subscribed: 409
    r = anon.post("/v1/portal/subscriptions", json={"plan": "basic"}, headers=sub)
    assert r.status_code == 409, r.text
    # cancel at period end
    r = anon.post(f"/v1/portal/subscriptions/{new['id']}/cancel", headers=sub)
    assert r.status_code == 200, r.text
    assert r.json()["cancel_mode"] == "period_end" and r.json()["ends_at"] == r.json()["current_period"]["end"]
    _self_service(api, False)
    assert anon.post(f"/v1/portal/subscriptions/{new['id']}/cancel", headers=sub).status_code == 403


def test_self_service_subscribe_from_nothing(api, anon, world):
    api.post("/v1/customers", json={"id": "newco", "name": "Newco", "currency": "USD", "timezone": "UTC"})
    _self_service(api, True)
    h = bearer(portal_session(api, "newco", permissions=["read", "subscribe"])["token"])
    plans = {p["code"]: p for p in anon.get("/v1/portal/plans", headers=h).json()}
    assert plans["basic"]["current"] is False and plans["basic"]["preview"]["total"] == "10.00"  # no usage yet
    r = anon.post("/v1/portal/subscriptions", json={"plan": "secret"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "plan"
    r = anon.post("/v1/portal/subscriptions", json={"plan": "basic"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["customer"] == "newco" and r.json()["plan"] == "basic"
    assert [s["plan"] for s in anon.get("/v1/portal/subscriptions", headers=h).json()["data"]] == ["basic"]


def test_page_theme_and_frame_ancestors_from_the_settings(api, anon, world):
    r = api.put(
        "/v1/settings",
        json={
            "portal": {
                "title": "Weather <Co>",
                "primary_color": "#123456",
                "frame_ancestors": ["https://app.example.com"],
            }
        },
    )
    assert r.status_code == 200, r.text
    page = anon.get("/portal")
    assert "<title>Weather &lt;Co&gt;</title>" in page.text and "--primary: #123456" in page.text
    assert page.headers["content-security-policy"].endswith("frame-ancestors 'self' https://app.example.com")


def test_credits_and_limits_are_the_customers(api, anon, world):
    r = api.post("/v1/customers/acme/credit-grants", json={"id": "cg_acme", "amount": "50.00", "category": "paid"})
    assert r.status_code in (200, 201), r.text
    h = bearer(portal_session(api, "acme")["token"])
    credits = anon.get("/v1/portal/credits", headers=h).json()
    assert credits["balance"] == "50.00" and [g["id"] for g in credits["grants"]] == ["cg_acme"]
    other = anon.get("/v1/portal/credits", headers=bearer(portal_session(api, "globex")["token"])).json()
    assert other["balance"] == "0.00" and other["grants"] == []
    limits = anon.get("/v1/portal/limits", headers=h).json()
    assert limits["allowed"] is True and limits["limits"] == []  # the world's plans have no limits


def test_alert_events_are_the_customers_own_and_page_like_the_admin_route(api, anon, world):
    """The world's plan notifications fired (acme: 50 % and 100 % of 10 calls; globex: 100 % of
    5): each customer reads only its own, in the admin route's shape and paging."""
    acme = bearer(portal_session(api, "acme")["token"])
    events = anon.get("/v1/portal/alert-events", headers=acme).json()
    assert events == api.get("/v1/alert-events", params={"customer": "acme"}).json()
    assert [(e["threshold"], e["threshold_value"], e["value"]) for e in events["data"]] == [
        ("50", "5", "12"),
        ("100", "10", "12"),
    ]
    assert {(e["customer"], e["subscription"], e["source"]) for e in events["data"]} == {
        ("acme", "sub_acme", "plan_notification")
    }
    first = anon.get("/v1/portal/alert-events", params={"limit": 1}, headers=acme).json()
    assert [e["threshold"] for e in first["data"]] == ["50"] and first["next"]
    rest = anon.get("/v1/portal/alert-events", params={"after": first["next"]}, headers=acme).json()
    assert [e["threshold"] for e in rest["data"]] == ["100"] and rest["next"] is None
    # ?customer= cannot widen it: the session's customer is the only one
    widened = anon.get("/v1/portal/alert-events", params={"customer": "globex"}, headers=acme).json()
    assert [e["customer"] for e in widened["data"]] == ["acme", "acme"]
    globex = anon.get("/v1/portal/alert-events", headers=bearer(portal_session(api, "globex")["token"])).json()
    assert [(e["customer"], e["threshold"], e["value"]) for e in globex["data"]] == [("globex", "100", "7")]
    # bad input names the field
    for params, field in [({"after": "%%%"}, "after"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit")]:
        r = anon.get("/v1/portal/alert-events", params=params, headers=acme)
        assert r.status_code == 422 and field in [e["field"] for e in r.json()["errors"]], (params, r.text)


def test_a_custom_alert_fired_by_new_usage_reaches_the_portal(api, anon, world, session_factory):
    """A custom alert for acme fires when acme's next events cross it (the worker's evaluation),
    and appears after the plan notifications; globex's usage does not fire it."""
    r = api.post(
        "/v1/alerts",
        json={"id": "al_acme", "customer": "acme", "metric": "usage", "meter": "api_calls", "thresholds": ["14"]},
    )
    assert r.status_code == 201, r.text
    spend = {"id": "al_spend", "customer": "acme", "metric": "spend", "thresholds": ["16.50"]}
    assert api.post("/v1/alerts", json=spend).status_code == 201
    today = datetime.now(UTC).date().isoformat()
    send_events(api, calls("acme", 2, day=today, prefix="new"))
    send_events(api, calls("globex", 20, day=today, prefix="new"))
    assert fire_alerts(session_factory) == 2
    h = bearer(portal_session(api, "acme")["token"])
    events = anon.get("/v1/portal/alert-events", headers=h).json()["data"]
    fired = {(e["source"], e["alert"], e["metric"], e["threshold"], e["value"]) for e in events[2:]}
    assert fired == {("alert", "al_acme", "usage", "14", "14"), ("alert", "al_spend", "spend", "16.5", "17")}
    assert len(events) == 4 and all(e["customer"] == "acme" for e in events)
    # the page: spend in money, usage in units, newest first (the plan notifications last)
    page = anon.get("/portal/ui/dashboard", headers=h).text
    rows = page.split('data-testid="alerts"')[1].split("</table>")[0].split('data-testid="alert"')[1:]
    assert len(rows) == 4 and "50% of your plan's 5" in rows[3]
    spent = next(row for row in rows if "Spend this period" in row)
    assert ">16.50 USD</td>" in spent and ">17.00 USD</td>" in spent
    used = next(row for row in rows if ">14</td>" in row)
    assert ">api_calls this period</td>" in used and used.count(">14</td>") == 2
