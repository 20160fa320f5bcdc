"""Customers: a searchable list and a page per customer (usage, subscriptions, upcoming invoice,
invoices, credits, alerts, and a button that opens the customer's portal)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.alert import service as alerts
from tollway.alert.endpoints import event_schema as alert_event_schema
from tollway.alert.endpoints import to_schema as alert_schema
from tollway.credit import service as credits
from tollway.customer.service import get_customer
from tollway.deps import SessionDep
from tollway.errors import TollwayError
from tollway.invoice import service as invoices
from tollway.kit.time import utcnow
from tollway.models import Customer, Subscription
from tollway.portal import service as portal
from tollway.portal.endpoints import public_base
from tollway.portal.schemas import PortalSessionCreate
from tollway.subscription.service import to_schema as subscription_schema
from tollway.web.console.auth import CsrfDep, OperatorDep
from tollway.web.console.common import console_page, error_text
from tollway.web.usage import meter_chart

router = APIRouter(include_in_schema=False)
PAGE = 50
ALERT_EVENTS = 20


def search_customers(session: Session, q: str | None, *, after: str | None, limit: int = PAGE) -> list[Customer]:
    """Customers whose id, name or e-mail contains ``q`` (case-insensitive), by id."""
    stmt = select(Customer).order_by(Customer.id).limit(limit + 1)
    if q:
        needle = f"%{q.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(
                func.lower(Customer.id).like(needle),
                func.lower(Customer.name).like(needle),
                func.lower(Customer.email).like(needle),
            )
        )
    if after:
        stmt = stmt.where(Customer.id > after)
    return list(session.scalars(stmt))


@router.get("/console/customers", response_class=HTMLResponse)
def customers_page(
    operator: OperatorDep,
    session: SessionDep,
    q: str | None = Query(default=None, max_length=200),
    after: str | None = Query(default=None, max_length=200),
) -> HTMLResponse:
    rows = search_customers(session, q, after=after)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return console_page(
        "console/customers.html",
        operator,
        active="customers",
        customers=rows,
        q=q or "",
        next_after=rows[-1].id if more and rows else None,
    )


def customer_context(session: Session, customer_id: str) -> dict[str, Any]:
    now = utcnow()
    customer = get_customer(session, customer_id)
    subs = [
        subscription_schema(session, row)
        for row in session.scalars(
            select(Subscription).where(Subscription.customer_id == customer_id).order_by(Subscription.start.desc())
        )
    ]
    upcoming, upcoming_error = None, None
    try:
        upcoming = invoices.upcoming_invoice(session, customer_id, at=now)
    except TollwayError as exc:
        upcoming_error = exc.message
    start = portal.preview_window_start(session, customer, now=now)
    usage = [
        meter_chart(session, key, customer=customer_id, start=start, end=now, tz=customer.timezone)
        for key in portal.customer_meters(session, customer_id)
    ]
    issued = [
        invoices.to_schema(session, inv)
        for inv in invoices.list_invoices(session, customer=customer_id, subscription=None, limit=50, after=None)
    ]
    issued.sort(key=lambda inv: (inv.period_start or now, inv.id or ""), reverse=True)
    balance, balance_error = None, None
    try:  # GET /v1/customers/{id}/credits
        balance = credits.credits_view(session, customer_id, at=now, now=now)
    except TollwayError as exc:
        balance_error = error_text(exc)
    return {
        "customer": customer,
        "subscriptions": subs,
        "upcoming": upcoming,
        "upcoming_error": upcoming_error,
        "usage": usage,
        "period_start": start,
        "invoices": issued,
        "credits": balance,
        "credits_error": balance_error,
        "alerts": [alert_schema(a) for a in alerts.alerts_watching(session, customer_id)],
        "alert_events": [
            alert_event_schema(e) for e in alerts.latest_alert_events(session, customer=customer_id, limit=ALERT_EVENTS)
        ],
        "now": now,
        "tz": customer.timezone,
    }


@router.get("/console/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(customer_id: str, operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    return console_page("console/customer.html", operator, active="customers", **customer_context(session, customer_id))


@router.post("/console/customers/{customer_id}/portal")
def open_portal(customer_id: str, request: Request, operator: CsrfDep, session: SessionDep) -> Response:
    """A one-hour read-only portal session for this customer, opened at once (the operator sees
    what the customer sees)."""
    try:
        _, token = portal.create_session(
            session, customer_id, PortalSessionCreate(expires_in=3600, permissions=["read"]), now=utcnow()
        )
    except TollwayError as exc:
        return console_page("console/message.html", operator, active="customers", error=error_text(exc),
                            status_code=exc.status)  # fmt: skip
    return RedirectResponse(f"{public_base(request)}/portal#token={token}", status_code=303)
