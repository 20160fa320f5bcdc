from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tollway.auth.dependencies import require_admin
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow
from tollway.subscription import service
from tollway.subscription.schemas import (
    Subscription,
    SubscriptionCancel,
    SubscriptionChangePlan,
    SubscriptionCreate,
)
from tollway.subscription.service import to_schema

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], dependencies=[Depends(require_admin)])


@router.post("", status_code=201, response_model=Subscription)
def create_subscription(body: SubscriptionCreate, session: SessionDep) -> Subscription:
    return to_schema(session, service.create_subscription(session, body, now=utcnow()))


@router.get("", response_model=Page[Subscription])
def list_subscriptions(
    session: SessionDep,
    params: Annotated[ListParams, Depends(list_params)],
    customer: Annotated[str | None, Query(description="only this customer's subscriptions")] = None,
) -> Page[Subscription]:
    rows = service.list_subscriptions(session, customer=customer, limit=params.limit, after=params.after)
    return Page[Subscription].of(rows, params.limit, "id", lambda r: to_schema(session, r))


@router.get("/{subscription_id}", response_model=Subscription)
def get_subscription(subscription_id: str, session: SessionDep) -> Subscription:
    return to_schema(session, service.get_subscription(session, subscription_id))


@router.post("/{subscription_id}/cancel", response_model=Subscription)
def cancel_subscription(subscription_id: str, body: SubscriptionCancel, session: SessionDep) -> Subscription:
    return to_schema(session, service.cancel_subscription(session, subscription_id, body, now=utcnow()))


@router.post("/{subscription_id}/change-plan", response_model=Subscription)
def change_plan(subscription_id: str, body: SubscriptionChangePlan, session: SessionDep) -> Subscription:
    """Returns the new subscription (its ``previous`` names the one that ended at the switch)."""
    _, new = service.change_plan(session, subscription_id, body, now=utcnow())
    return to_schema(session, new)
