"""A small billing world for portal tests, built through the admin HTTP API (a TestClient or an
httpx.Client on a live server): two customers on two plans, usage this period and last, one
finalized invoice each, plans the portal must and must not show, and plan notifications that fire
alert events for both customers once evaluated (:func:`fire_alerts`, or a live server's worker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import calls, create_customer, create_meter, create_plan, run_billing, send_events
from tests.factories import subscribe as admin_subscribe
from tollway.alert.evaluate import evaluate_changed
from tollway.kit.time import utcnow
from tollway.meter import fold

BASIC = {
    "name": "Basic",
    "description": "Pay as you go",
    "fees": {"recurring": {"amount": "10.00", "in_advance": True, "prorate": True}},
    "charges": [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}],
    # acme's 12 calls this period reach 50 % (5 calls) and 100 % (10 calls) of the target
    "notifications": {"meter": "api_calls", "target": 10, "thresholds": [50, 100]},
}
PRO = {
    "name": "Pro",
    "fees": {"recurring": {"amount": "25.00", "in_advance": True, "prorate": True}},
    "charges": [
        {"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.10", "free_units": 5},
    ],
}


@dataclass
class World:
    this_month: datetime
    last_month: datetime
    acme_invoice: dict[str, Any]
    globex_invoice: dict[str, Any]
    acme_calls_this_period: int = 12
    globex_calls_this_period: int = 7


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def portal_session(api: Any, customer: str, *, permissions: list[str] | None = None, **body: Any) -> dict[str, Any]:
    r = api.post(f"/v1/customers/{customer}/portal-sessions", json={"permissions": permissions or ["read"], **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(api: httpx.Client | Any) -> World:
    now = datetime.now(UTC)
    this_month = month_start(now)
    last_month = month_start(this_month - timedelta(days=1))
    create_meter(api, key="api_calls", event_type="api_call", group_by=["endpoint"])
    create_meter(api, key="storage", event_type="storage", aggregation="sum", value_property="gb")
    create_plan(api, code="basic", publish=True, **BASIC)
    create_plan(api, code="pro", publish=True, **PRO)
    create_plan(api, code="secret", publish=True, visibility="private", **PRO)
    partners = {
        **PRO,
        "name": "Partners",
        "audience": {"type": "categories", "values": ["partners"]},
        # globex's 7 calls this period reach 100 % of 5: the other customer's alert event
        "notifications": {"meter": "api_calls", "target": 5, "thresholds": [100]},
    }
    create_plan(api, code="partners", publish=True, **partners)
    storage = [{"code": "gb", "meter": "storage", "model": "flat", "unit_price": "1"}]
    create_plan(api, code="storage", publish=True, charges=storage)
    create_plan(api, code="drafty", publish=False, **BASIC)
    create_customer(api, id="acme", name="Acme Corp", currency="USD", timezone="UTC", category="startups")
    create_customer(api, id="globex", name="Globex Inc", currency="USD", timezone="UTC", category="partners")
    admin_subscribe(api, id="sub_acme", customer="acme", plan="basic", start=last_month.isoformat())
    admin_subscribe(api, id="sub_globex", customer="globex", plan="partners", start=last_month.isoformat())
    first, today = this_month.date().isoformat(), now.date().isoformat()
    previous = last_month.date().isoformat()
    events = calls("acme", 4, day=previous, prefix="old", endpoint="/search")
    events += calls("acme", 8, day=first, prefix="a", endpoint="/search")
    events += calls("acme", 4, day=today, prefix="b", endpoint="/forecast")
    events += calls("globex", 3, day=previous, prefix="old")
    events += calls("globex", 7, day=first, prefix="g")
    send_events(api, events)
    run_billing(api, this_month.isoformat())
    r = api.get("/v1/invoices", params={"customer": "acme"})
    acme_invoice = r.json()["data"][0]
    r = api.get("/v1/invoices", params={"customer": "globex"})
    globex_invoice = r.json()["data"][0]
    return World(this_month, last_month, acme_invoice, globex_invoice)


def fire_alerts(session_factory: Any) -> int:
    """What the worker does after ingestion: roll the stored events up (noting the customers
    with new usage), then evaluate those customers' alerts. Returns the thresholds fired."""
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()
    return evaluate_changed(session_factory, now=utcnow())[1]
