"""The ``/portal`` page: a shell (no customer data: the token lives in the URL fragment, which
browsers never send) whose script hands the token to htmx as a bearer header; htmx then loads
the server-rendered dashboard fragment from ``/portal/ui/...`` (portal-token routes like the API).

Self-service buttons post to ``/portal/ui/...`` too and get the dashboard back, re-rendered,
with a message saying what happened."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse

from tollway.alert import endpoints as alert_endpoints
from tollway.alert import service as alert_service
from tollway.credit import endpoints as credit_endpoints
from tollway.customer.service import get_customer
from tollway.deps import SessionDep
from tollway.errors import TollwayError
from tollway.invoice import endpoints as invoices
from tollway.kit.listing import ListParams
from tollway.kit.time import utcnow
from tollway.meter.endpoints import meter_usage
from tollway.models import Meter, Plan, PortalSession
from tollway.portal import service
from tollway.portal.auth import require_portal, require_self_service
from tollway.portal.tokens import PortalPrincipal
from tollway.settings.schemas import PortalSettings
from tollway.settings.service import get_provider_settings
from tollway.subscription.service import to_schema as subscription_schema
from tollway.web import PageContext, page_response

router = APIRouter(include_in_schema=False)
PortalDep = Annotated[PortalPrincipal, Depends(require_portal)]
SelfServiceDep = Annotated[PortalPrincipal, Depends(require_self_service)]

DEFAULT_TITLE = "Billing"
RECENT_ALERTS = 5


def _page(theme: PortalSettings) -> PageContext:
    return PageContext(
        title=theme.title or DEFAULT_TITLE,
        primary_color=theme.primary_color or "",
        logo_url=theme.logo_url,
    )


@router.get("/portal", response_class=HTMLResponse)
def portal_page(session: SessionDep) -> HTMLResponse:
    theme = get_provider_settings(session).portal
    return page_response("portal/page.html", _page(theme), frame_ancestors=theme.frame_ancestors)


def _meter_usage(session: Session, customer_id: str, key: str, start: datetime, now: datetime) -> dict[str, Any]:
    usage = meter_usage(
        key, session, customer=customer_id, from_=start.isoformat(), to=now.isoformat(), window="day", tz=None
    )
    meter = session.get(Meter, key)
    days = [row.from_ for row in usage.data]
    values = [Decimal(row.value or 0) for row in usage.data]
    return {
        "key": key,
        "name": (meter.name if meter is not None else None) or key,
        "total": sum(values, Decimal(0)),
        "chart": {
            "label": (meter.name if meter is not None else None) or key,
            "x": [int(d.timestamp()) for d in days],
            "y": [float(v) for v in values],  # drawing only: the figures shown are the decimals
        },
    }


def _recent_alerts(session: Session, customer_id: str) -> list[dict[str, Any]]:
    """The latest alert events (as `GET /v1/portal/alert-events` shows them), newest first, with
    their meter's name."""
    rows = alert_service.latest_alert_events(session, customer=customer_id, limit=RECENT_ALERTS)
    events = [alert_endpoints.event_schema(row) for row in rows]
    keys = sorted({e.meter for e in events if e.meter is not None})
    names = {m.key: m.name or m.key for m in session.scalars(select(Meter).where(Meter.key.in_(keys)))} if keys else {}
    return [{"event": e, "meter_name": names.get(e.meter or "", e.meter)} for e in events]


def dashboard_context(
    request: Request, session: Session, principal: PortalPrincipal, theme: PortalSettings
) -> dict[str, Any]:
    """Everything the dashboard shows, read through the same functions as the portal API."""
    now = utcnow()
    cid = principal.customer_id
    customer = get_customer(session, cid)
    active = service.active_subscriptions(session, cid, now=now)
    subs = []
    for row in active:
        plan = session.get(Plan, row.plan_code)
        subs.append(
            {"sub": subscription_schema(session, row), "plan_name": (plan.name if plan else None) or row.plan_code}
        )
    start = service.preview_window_start(session, customer, now=now)
    usage = [_meter_usage(session, cid, key, start, now) for key in service.customer_meters(session, cid)]
    upcoming, upcoming_error = None, None
    try:
        upcoming = invoices.upcoming_invoice(cid, session, at=None)
    except TollwayError as exc:
        upcoming_error = exc.message
    past = invoices.list_invoices(session, ListParams(limit=100, after=None), customer=cid, subscription=None).data
    past.sort(key=lambda inv: (inv.period_start or now, inv.id or ""), reverse=True)
    plans = service.offers(session, cid, now=now) if principal.can_subscribe else []
    credits = credit_endpoints.credits(cid, session, at=None)
    limits = request.app.state.limits.decide(session, cid, None, Decimal(0), now).limits
    portal_session = session.get(PortalSession, principal.session_id)
    return {
        "customer": customer,
        "subscriptions": subs,
        "period_start": start,
        "now": now,
        "usage": usage,
        "upcoming": upcoming,
        "upcoming_error": upcoming_error,
        "invoices": [inv for inv in past if inv.status != "draft"],
        "plans": plans,
        "can_change": principal.can_subscribe and theme.self_service,
        "can_subscribe": principal.can_subscribe,
        "return_url": portal_session.return_url if portal_session is not None else None,
        "tz": customer.timezone,
        "credits": credits,
        "limits": limits,
        "alerts": _recent_alerts(session, cid),
    }


def _dashboard(
    request: Request,
    session: Session,
    principal: PortalPrincipal,
    *,
    message: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    theme = get_provider_settings(session).portal
    context = dashboard_context(request, session, principal, theme)
    return page_response(
        "portal/dashboard.html",
        _page(theme),
        frame_ancestors=theme.frame_ancestors,
        message=message,
        error=error,
        **context,
    )


@router.get("/portal/ui/dashboard", response_class=HTMLResponse)
def dashboard(principal: PortalDep, session: SessionDep, request: Request) -> HTMLResponse:
    return _dashboard(request, session, principal)


def _act(request: Request, session: Session, principal: PortalPrincipal, action: Any, done: str) -> HTMLResponse:
    """Run a self-service action; its refusal (plan not open to the customer, period already
    invoiced, ...) is shown on the dashboard rather than swallowed by htmx's error handling."""
    try:
        with session.begin_nested():
            action()
    except TollwayError as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.message
        return _dashboard(request, session, principal, error=detail)
    return _dashboard(request, session, principal, message=done)


@router.post("/portal/ui/subscribe/{plan}", response_class=HTMLResponse)
def ui_subscribe(plan: str, principal: SelfServiceDep, session: SessionDep, request: Request) -> HTMLResponse:
    return _act(
        request,
        session,
        principal,
        lambda: service.subscribe(session, principal.customer_id, plan, now=utcnow()),
        f"You are now subscribed to {plan}.",
    )


@router.post("/portal/ui/subscriptions/{subscription_id}/change-plan/{plan}", response_class=HTMLResponse)
def ui_change_plan(
    subscription_id: str, plan: str, principal: SelfServiceDep, session: SessionDep, request: Request
) -> HTMLResponse:
    return _act(
        request,
        session,
        principal,
        lambda: service.change_plan(session, principal.customer_id, subscription_id, plan, now=utcnow()),
        f"Your plan is now {plan}.",
    )


@router.post("/portal/ui/subscriptions/{subscription_id}/cancel", response_class=HTMLResponse)
def ui_cancel(subscription_id: str, principal: SelfServiceDep, session: SessionDep, request: Request) -> HTMLResponse:
    return _act(
        request,
        session,
        principal,
        lambda: service.cancel_at_period_end(session, principal.customer_id, subscription_id, now=utcnow()),
        "Your subscription will end at the end of the current period.",
    )
