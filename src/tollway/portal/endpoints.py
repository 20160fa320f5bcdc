"""Portal routes: sessions (admin key) and the portal API (a portal session token, one customer).

Each portal read checks that the resource is the session's customer's, then answers exactly as
the admin route does (the same handler), so both stay one implementation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tollway.alert import endpoints as alert_endpoints
from tollway.alert.schemas import AlertEvent
from tollway.auth.dependencies import require_admin
from tollway.credit import endpoints as credit_endpoints
from tollway.credit.schemas import Credits
from tollway.customer.endpoints import get_customer
from tollway.customer.schemas import Customer
from tollway.deps import SessionDep
from tollway.invoice import endpoints as invoices
from tollway.invoice.schemas import Invoice, UpcomingInvoice
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow
from tollway.limit import endpoints as limit_endpoints
from tollway.limit.schemas import LimitCheck, LimitCheckResult
from tollway.meter.endpoints import meter_usage
from tollway.meter.schemas import Usage
from tollway.portal import service
from tollway.portal.auth import require_portal, require_self_service
from tollway.portal.schemas import (
    PortalChangePlan,
    PortalPlan,
    PortalSession,
    PortalSessionCreate,
    PortalSessionsRevoked,
    PortalSubscribe,
)
from tollway.portal.tokens import PortalPrincipal
from tollway.subscription import endpoints as subscriptions
from tollway.subscription.schemas import Subscription
from tollway.subscription.service import to_schema as subscription_schema

PortalDep = Annotated[PortalPrincipal, Depends(require_portal)]
SelfServiceDep = Annotated[PortalPrincipal, Depends(require_self_service)]

sessions_router = APIRouter(prefix="/v1/customers", tags=["portal"], dependencies=[Depends(require_admin)])
router = APIRouter(prefix="/v1/portal", tags=["portal"])


def public_base(request: Request) -> str:
    """Where customers reach this server: ``TOLLWAY_PUBLIC_URL``, else the request's own base."""
    configured = getattr(request.app.state.settings, "public_url", None)
    return str(configured or request.base_url).rstrip("/")


# ----------------------------------------------------------------------------------- sessions


@sessions_router.post("/{customer_id}/portal-sessions", status_code=201, response_model=PortalSession)
def create_portal_session(
    customer_id: str, body: PortalSessionCreate, session: SessionDep, request: Request
) -> PortalSession:
    """A session for one customer; the token is shown once (in `token` and in `url`'s fragment)."""
    row, token = service.create_session(session, customer_id, body, now=utcnow())
    return PortalSession(
        id=row.id,
        customer=row.customer_id,
        token=token,
        url=f"{public_base(request)}/portal#token={token}",
        permissions=list(row.permissions),
        return_url=row.return_url,
        expires_at=row.expires_at,
    )


@sessions_router.delete("/{customer_id}/portal-sessions", response_model=PortalSessionsRevoked)
def revoke_portal_sessions(customer_id: str, session: SessionDep) -> PortalSessionsRevoked:
    """Revoke every session of the customer (their tokens get 401 at once)."""
    return PortalSessionsRevoked(
        customer=customer_id, revoked=service.revoke_sessions(session, customer_id, now=utcnow())
    )


# --------------------------------------------------------------------------------- portal API


@router.get("/customer", response_model=Customer)
def portal_customer(principal: PortalDep, session: SessionDep) -> Customer:
    return get_customer(principal.customer_id, session)


@router.get("/subscriptions", response_model=Page[Subscription])
def portal_subscriptions(
    principal: PortalDep, session: SessionDep, params: Annotated[ListParams, Depends(list_params)]
) -> Page[Subscription]:
    return subscriptions.list_subscriptions(session, params, customer=principal.customer_id)


@router.get("/subscriptions/{subscription_id}", response_model=Subscription)
def portal_subscription(subscription_id: str, principal: PortalDep, session: SessionDep) -> Subscription:
    return subscription_schema(session, service.own_subscription(session, principal.customer_id, subscription_id))


@router.get("/plans", response_model=list[PortalPlan])
def portal_plans(principal: PortalDep, session: SessionDep) -> list[PortalPlan]:
    """Published public plans whose audience includes the customer, each with its prices in
    words and its price for the customer's usage so far this period."""
    return service.offers(session, principal.customer_id, now=utcnow())


@router.get("/usage", response_model=Usage, response_model_by_alias=True)
def portal_usage(
    principal: PortalDep,
    session: SessionDep,
    meter: Annotated[str, Query(description="a meter of the customer's plans")],
    from_: Annotated[str | None, Query(alias="from", description="RFC 3339; default: start of this month")] = None,
    to: Annotated[str | None, Query(description="RFC 3339, exclusive; default: now")] = None,
    window: Annotated[Literal["hour", "day", "month"] | None, Query()] = None,
    group_by: Annotated[list[str] | None, Query(description="one or more of the meter's group_by")] = None,
) -> Usage:
    """The meter-usage shape (`GET /v1/meters/{key}/usage`) for this customer only."""
    key = service.own_meter(session, principal.customer_id, meter)
    return meter_usage(
        key, session, customer=principal.customer_id, from_=from_, to=to, window=window, group_by=group_by, tz=None
    )


@router.get("/upcoming-invoice", response_model=UpcomingInvoice)
def portal_upcoming_invoice(principal: PortalDep, session: SessionDep) -> UpcomingInvoice:
    return invoices.upcoming_invoice(principal.customer_id, session, at=None)


@router.get("/invoices", response_model=Page[Invoice])
def portal_invoices(
    principal: PortalDep, session: SessionDep, params: Annotated[ListParams, Depends(list_params)]
) -> Page[Invoice]:
    return invoices.list_invoices(session, params, customer=principal.customer_id, subscription=None)


@router.get("/invoices/{invoice_id}", response_model=Invoice)
def portal_invoice(invoice_id: str, principal: PortalDep, session: SessionDep) -> Invoice:
    service.own_invoice(session, principal.customer_id, invoice_id)
    return invoices.get_invoice(invoice_id, session)


@router.get("/invoices/{invoice_id}/pdf", response_class=Response)
def portal_invoice_pdf(invoice_id: str, principal: PortalDep, session: SessionDep) -> Response:
    service.own_invoice(session, principal.customer_id, invoice_id)
    return invoices.invoice_pdf(invoice_id, session)


@router.get("/credits", response_model=Credits)
def portal_credits(principal: PortalDep, session: SessionDep) -> Credits:
    """Its credit balance and grants (as `GET /v1/customers/{id}/credits`, now)."""
    return credit_endpoints.credits(principal.customer_id, session, at=None)


@router.get("/limits", response_model=LimitCheckResult)
def portal_limits(principal: PortalDep, session: SessionDep, request: Request) -> Response:
    """Every limit with its use and what remains (a `POST /v1/limits/check` of quantity 0)."""
    return limit_endpoints.answer(request, session, LimitCheck(customer=principal.customer_id, quantity=Decimal(0)))


@router.get("/alert-events", response_model=Page[AlertEvent])
def portal_alert_events(
    principal: PortalDep, session: SessionDep, params: Annotated[ListParams, Depends(list_params)]
) -> Page[AlertEvent]:
    """Its fired thresholds, oldest first (as `GET /v1/alert-events?customer=`; `after` = the
    previous page's `next`)."""
    return alert_endpoints.list_alert_events(session, params, customer=principal.customer_id)


# ------------------------------------------------------------------------------ self-service


@router.post("/subscriptions", status_code=201, response_model=Subscription)
def portal_subscribe(body: PortalSubscribe, principal: SelfServiceDep, session: SessionDep) -> Subscription:
    """Subscribe from now to a plan of `GET /v1/portal/plans` (409 with an active subscription)."""
    sub = service.subscribe(session, principal.customer_id, body.plan, now=utcnow())
    return subscription_schema(session, sub)


@router.post("/subscriptions/{subscription_id}/change-plan", response_model=Subscription)
def portal_change_plan(
    subscription_id: str, body: PortalChangePlan, principal: SelfServiceDep, session: SessionDep
) -> Subscription:
    """Switch now, as `POST /v1/subscriptions/{id}/change-plan` does; returns the new subscription."""
    new = service.change_plan(session, principal.customer_id, subscription_id, body.plan, now=utcnow())
    return subscription_schema(session, new)


@router.post("/subscriptions/{subscription_id}/cancel", response_model=Subscription)
def portal_cancel(subscription_id: str, principal: SelfServiceDep, session: SessionDep) -> Subscription:
    """Cancel at the end of the current period (early-termination fee per the plan's contract)."""
    sub = service.cancel_at_period_end(session, principal.customer_id, subscription_id, now=utcnow())
    return subscription_schema(session, sub)
