"""Portal sessions (tokens scoped to one customer) and what a customer may see and choose.

A token is ``pt_`` + 256 random bits, stored only as its SHA-256 hash (like API keys). Every read
here is scoped to the session's customer: a resource of another customer is reported exactly like
one that does not exist. Self-service goes through the subscription service with
``via_admin=False``, so the admin routes' rules (audience, dates, early-termination fees,
proration) apply unchanged, and private plans are refused.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tollway.auth.keys import hash_key
from tollway.catalog.schemas import PlanPreview, PreviewLine
from tollway.catalog.service import get_subscribable_plan, plan_limits, plan_pricing
from tollway.customer.service import get_customer
from tollway.errors import TollwayError
from tollway.invoice.compute import PeriodContext, period_lines
from tollway.invoice.finalize import totals
from tollway.kit.money import money_str, parse_currency
from tollway.kit.time import get_zone, window_start
from tollway.models import Customer, Invoice, Plan, PlanMeter, PortalSession, Subscription
from tollway.portal.errors import AlreadySubscribed, PortalResourceNotFound
from tollway.portal.schemas import PortalPlan, PortalSessionCreate
from tollway.portal.tokens import TOKEN_PREFIX
from tollway.pricing.words import describe_plan
from tollway.subscription import service as subscriptions
from tollway.subscription.schemas import SubscriptionCancel, SubscriptionChangePlan, SubscriptionCreate
from tollway.subscription.terms import Terms

# ----------------------------------------------------------------------------------- sessions


def create_session(
    session: Session, customer_id: str, data: PortalSessionCreate, *, now: datetime
) -> tuple[PortalSession, str]:
    """A new session for an existing customer; returns the row and the token (shown once)."""
    customer = get_customer(session, customer_id)
    token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    row = PortalSession(
        id=f"ps_{secrets.token_hex(8)}",
        customer_id=customer.id,
        token_hash=hash_key(token),
        permissions=list(data.permissions),
        return_url=data.return_url,
        expires_at=now + timedelta(seconds=data.expires_in),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, token


def revoke_sessions(session: Session, customer_id: str, *, now: datetime) -> int:
    """Revoke every live session of the customer; returns how many were live."""
    get_customer(session, customer_id)
    result = session.execute(
        update(PortalSession)
        .where(
            PortalSession.customer_id == customer_id,
            PortalSession.revoked_at.is_(None),
            PortalSession.expires_at > now,
        )
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------ scoped reads


def own_subscription(session: Session, customer_id: str, subscription_id: str) -> Subscription:
    row = session.get(Subscription, subscription_id)
    if row is None or row.customer_id != customer_id:
        raise PortalResourceNotFound("subscription", subscription_id)
    return row


def own_invoice(session: Session, customer_id: str, invoice_id: str) -> Invoice:
    row = session.get(Invoice, invoice_id)
    if row is None or row.customer_id != customer_id:
        raise PortalResourceNotFound("invoice", invoice_id)
    return row


def customer_meters(session: Session, customer_id: str) -> list[str]:
    """The meters of the plans the customer subscribes or subscribed to (charges, revenue
    share, notifications, limits): the only meters the portal shows it."""
    plans = select(Subscription.plan_code).where(Subscription.customer_id == customer_id)
    stmt = select(PlanMeter.meter_key).where(PlanMeter.plan_code.in_(plans)).distinct().order_by(PlanMeter.meter_key)
    return list(session.scalars(stmt))


def own_meter(session: Session, customer_id: str, key: str) -> str:
    if key not in customer_meters(session, customer_id):
        raise PortalResourceNotFound("meter", key)
    return key


def active_subscriptions(session: Session, customer_id: str, *, now: datetime) -> list[Subscription]:
    stmt = (
        select(Subscription)
        .where(
            Subscription.customer_id == customer_id,
            Subscription.start <= now,
            or_(Subscription.ends_at.is_(None), Subscription.ends_at > now),
        )
        .order_by(Subscription.start, Subscription.id)
    )
    return list(session.scalars(stmt))


# -------------------------------------------------------------------------------- the catalog


def choosable_plans(session: Session, customer: Customer, *, now: datetime) -> list[Plan]:
    """Published public plans available now whose audience includes the customer."""
    stmt = select(Plan).where(Plan.status == "published", Plan.visibility == "public").order_by(Plan.code)
    out = []
    for plan in session.scalars(stmt):
        try:
            get_subscribable_plan(session, plan.code, customer, at=now, via_admin=False)
        except TollwayError:
            continue
        out.append(plan)
    return out


def preview_window_start(session: Session, customer: Customer, *, now: datetime) -> datetime:
    """The start of the customer's current billing period (its active subscription's), else the
    start of the calendar month in its zone: the usage "so far" that plan previews price."""
    for sub in active_subscriptions(session, customer.id, now=now):
        found = subscriptions.terms_of(session, sub).period_at(now)
        if found is not None:
            return found[0].start
    return window_start(now, "month", get_zone(customer.timezone))


def preview_on_plan(session: Session, customer: Customer, plan: Plan, *, start: datetime, now: datetime) -> PlanPreview:
    """What the customer's usage since ``start`` would cost on ``plan`` for the period starting
    there (its recurring fee included, no setup fee, before tax), priced by the invoice engine
    itself through a subscription that is never stored."""
    probe = Subscription(
        id="portal-preview",
        customer_id=customer.id,
        plan_code=plan.code,
        start=start,
        timezone=customer.timezone,
        charge_setup_fee=False,
        overrides={},
    )
    terms = Terms.of(probe, plan)
    found = terms.period_at(max(now, start))
    assert found is not None  # an open subscription has a period at every instant after its start
    ctx = PeriodContext.load(session, terms)
    lines = period_lines(session, ctx, found[0], found[1], as_of=None)
    cur = ctx.currency
    t = totals(lines, Decimal(0), cur)
    return PlanPreview(
        plan=plan.code,
        currency=cur.code,
        lines=[PreviewLine.model_validate(line.to_dict(cur)) for line in lines],
        subtotal=money_str(t.subtotal, cur),
        total=money_str(t.total, cur),
    )


def offer(session: Session, customer: Customer, plan: Plan, *, start: datetime, now: datetime) -> PortalPlan:
    current = {s.plan_code for s in active_subscriptions(session, customer.id, now=now)}
    try:
        preview: PlanPreview | None = preview_on_plan(session, customer, plan, start=start, now=now)
    except TollwayError:  # usage this plan cannot price (e.g. out of range): no preview
        preview = None
    return PortalPlan(
        code=plan.code,
        name=plan.name,
        description=plan.description,
        currency=plan.currency,
        interval=plan.interval,
        interval_count=int(plan.interval_count or 1),
        contract_months=plan.contract_months,
        free_period_days=int(plan.free_period_days or 0),
        prices=describe_plan(plan_pricing(plan), parse_currency(plan.currency)),
        limits=[limit.model_dump(mode="json") for limit in plan_limits(plan)],
        current=plan.code in current,
        preview=preview,
    )


def offers(session: Session, customer_id: str, *, now: datetime) -> list[PortalPlan]:
    customer = get_customer(session, customer_id)
    start = preview_window_start(session, customer, now=now)
    return [
        offer(session, customer, plan, start=start, now=now) for plan in choosable_plans(session, customer, now=now)
    ]


# ------------------------------------------------------------------------------ self-service


def subscribe(session: Session, customer_id: str, plan: str, *, now: datetime) -> Subscription:
    """Subscribe from now; a customer with an active subscription changes its plan instead."""
    active = active_subscriptions(session, customer_id, now=now)
    if active:
        raise AlreadySubscribed(active[0].id)
    data = SubscriptionCreate(id=f"sub_{secrets.token_hex(8)}", customer=customer_id, plan=plan, start=now)
    return subscriptions.create_subscription(session, data, now=now, via_admin=False)


def change_plan(session: Session, customer_id: str, subscription_id: str, plan: str, *, now: datetime) -> Subscription:
    own_subscription(session, customer_id, subscription_id)
    _, new = subscriptions.change_plan(
        session, subscription_id, SubscriptionChangePlan(plan=plan, at=now), now=now, via_admin=False
    )
    return new


def cancel_at_period_end(session: Session, customer_id: str, subscription_id: str, *, now: datetime) -> Subscription:
    own_subscription(session, customer_id, subscription_id)
    return subscriptions.cancel_subscription(
        session, subscription_id, SubscriptionCancel(at=now, mode="period_end"), now=now
    )
