"""Subscriptions: create, read, cancel (immediately or at period end), change plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tollway.catalog.service import get_subscribable_plan, plan_limits
from tollway.customer.service import get_customer
from tollway.db import get_or_404
from tollway.errors import ValidationFailed
from tollway.kit.pagination import paginate
from tollway.kit.time import utcnow
from tollway.limit import rules as limit_rules
from tollway.models import Plan, Subscription
from tollway.notification.outbox import emit
from tollway.subscription.errors import (
    InvalidSubscriptionTime,
    SubscriptionAlreadyExists,
    SubscriptionEnded,
    SubscriptionNotFound,
)
from tollway.subscription.schemas import (
    Overrides,
    SubscriptionCancel,
    SubscriptionChangePlan,
    SubscriptionCreate,
    SubscriptionStatus,
)
from tollway.subscription.schemas import Period as PeriodOut
from tollway.subscription.schemas import Subscription as SubscriptionOut
from tollway.subscription.terms import Terms


def get_subscription(session: Session, subscription_id: str, *, for_update: bool = False) -> Subscription:
    return get_or_404(session, Subscription, subscription_id, SubscriptionNotFound, for_update=for_update)


def get_plan(session: Session, subscription: Subscription) -> Plan:
    plan = session.get(Plan, subscription.plan_code)
    assert plan is not None  # a foreign key guarantees it
    return plan


def terms_of(session: Session, subscription: Subscription) -> Terms:
    return Terms.of(subscription, get_plan(session, subscription))


def status_of(subscription: Subscription, now: datetime) -> SubscriptionStatus:
    if subscription.ends_at is not None and subscription.ends_at <= now:
        return "ended"
    if subscription.canceled_at is not None:
        return "canceled"
    return "active"


def to_schema(session: Session, row: Subscription) -> SubscriptionOut:
    """The subscription as the API (and its webhooks' ``data``) shows it."""
    now = utcnow()
    terms = terms_of(session, row)
    found = terms.period_at(max(now, row.start))
    return SubscriptionOut(
        id=row.id,
        customer=row.customer_id,
        plan=row.plan_code,
        status=status_of(row, now),
        start=row.start,
        ends_at=row.ends_at,
        canceled_at=row.canceled_at,
        cancel_mode=row.cancel_mode,
        timezone=row.timezone,
        current_period=PeriodOut(start=found[0].start, end=found[0].end) if found else None,
        contract_ends_at=terms.contract_end(),
        previous=row.previous,
        changed_to=row.changed_to,
        overrides=overrides_of(row),
        billed_until=row.billed_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _payload(session: Session, sub: Subscription) -> dict[str, Any]:
    """The webhook ``data`` of ``subscription.*``: the subscription as the API shows it."""
    data: dict[str, Any] = to_schema(session, sub).model_dump(mode="json")
    return data


def create_subscription(
    session: Session, data: SubscriptionCreate, *, now: datetime, via_admin: bool = True
) -> Subscription:
    """``via_admin=False`` (the customer portal): private plans are refused."""
    if session.get(Subscription, data.id) is not None:
        raise SubscriptionAlreadyExists(data.id)
    start = data.start or now
    # Names the field in a 422: an unknown plan or customer, a draft, a plan out of its dates,
    # a customer outside the plan's audience.
    plan = get_subscribable_plan(session, data.plan, data.customer, at=start, via_admin=via_admin)
    customer = get_customer(session, data.customer)
    if data.overrides.limits:
        problems = limit_rules.check_overrides(plan_limits(plan), data.overrides.limits)
        if problems:
            raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems)
    sub = Subscription(
        id=data.id,
        customer_id=customer.id,
        plan_code=plan.code,
        start=start,
        timezone=customer.timezone,
        charge_setup_fee=True,
        overrides=data.overrides.model_dump(mode="json", exclude_none=True),
    )
    session.add(sub)
    session.flush()
    emit(session, "subscription.created", _payload(session, sub), key=sub.id)
    return sub


def list_subscriptions(session: Session, *, customer: str | None, limit: int, after: str | None) -> list[Subscription]:
    stmt = paginate(select(Subscription), Subscription.id, limit=limit, after=after)
    if customer is not None:
        stmt = stmt.where(Subscription.customer_id == customer)
    return list(session.scalars(stmt))


def _check_open(sub: Subscription, at: datetime, field: str) -> None:
    if sub.changed_to is not None:
        raise SubscriptionEnded(sub.id, f"was changed to subscription '{sub.changed_to}'")
    if sub.canceled_at is not None:
        raise SubscriptionEnded(sub.id, "is already cancelled")
    if sub.ends_at is not None and sub.ends_at <= at:
        raise SubscriptionEnded(sub.id, "has already ended")
    if at < sub.start:
        raise InvalidSubscriptionTime(field, "must not be before the subscription start")
    if sub.billed_until is not None and at < sub.billed_until:
        raise InvalidSubscriptionTime(
            field, f"falls in a period already invoiced (invoiced until {sub.billed_until.isoformat()})"
        )


def cancel_subscription(
    session: Session, subscription_id: str, data: SubscriptionCancel, *, now: datetime
) -> Subscription:
    """Cancel at ``at`` (immediate) or at the end of the period containing ``at`` (period_end).

    The last period closes at the end, prorated; an early-termination fee is billed on the last
    invoice when the end falls before the contract's term (``contract_months``)."""
    sub = get_subscription(session, subscription_id, for_update=True)
    at = data.at or now
    _check_open(sub, at, "at")
    terms = terms_of(session, sub)
    end = at
    if data.mode == "period_end":
        found = terms.period_at(at)
        assert found is not None
        end = found[1].end
    sub.ends_at = end
    sub.canceled_at = at
    sub.cancel_mode = data.mode
    session.flush()
    contract_end = terms.contract_end()
    emit(
        session,
        "subscription.canceled",
        {**_payload(session, sub), "mode": data.mode, "early": bool(contract_end and end < contract_end)},
        key=sub.id,
    )
    return sub


def _successor_id(session: Session, sub: Subscription) -> str:
    root = sub.id.split("~", 1)[0]
    count = session.scalar(select(func.count()).select_from(Subscription).where(Subscription.id.like(f"{root}~%")))
    n = int(count or 0) + 1
    while session.get(Subscription, f"{root}~{n}") is not None:
        n += 1
    return f"{root}~{n}"


def change_plan(
    session: Session, subscription_id: str, data: SubscriptionChangePlan, *, now: datetime, via_admin: bool = True
) -> tuple[Subscription, Subscription]:
    """Switch plans at ``at``: the old subscription's period closes there, prorated; a new
    subscription on the new plan starts there (its first period prorated as its plan says).
    Returns (old, new)."""
    sub = get_subscription(session, subscription_id, for_update=True)
    at = data.at or now
    _check_open(sub, at, "at")
    if at == sub.start:
        raise InvalidSubscriptionTime("at", "must be after the subscription start (cancel and subscribe instead)")
    customer = get_customer(session, sub.customer_id)
    plan = get_subscribable_plan(session, data.plan, customer, at=at, via_admin=via_admin)
    new_id = data.id or _successor_id(session, sub)
    if session.get(Subscription, new_id) is not None:
        raise SubscriptionAlreadyExists(new_id)
    new = Subscription(
        id=new_id,
        customer_id=sub.customer_id,
        plan_code=plan.code,
        start=at,
        timezone=sub.timezone,
        previous=sub.id,
        charge_setup_fee=data.charge_setup_fee,
        overrides=dict(sub.overrides or {}),
    )
    sub.ends_at = at
    sub.cancel_mode = "plan_change"
    sub.changed_to = new_id
    session.add(new)
    session.flush()
    emit(
        session,
        "subscription.plan_changed",
        {**_payload(session, sub), "from_plan": sub.plan_code, "to_plan": plan.code, "new_subscription": new_id},
        key=sub.id,
    )
    return sub, new


def overrides_of(sub: Subscription) -> Overrides:
    return Overrides.model_validate(sub.overrides or {})
