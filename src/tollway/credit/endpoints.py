from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tollway.auth.dependencies import require_admin
from tollway.credit import alerts, service
from tollway.credit.schemas import CreditGrant, CreditGrantCreate, Credits, LedgerEntry
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params, time_param
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow

router = APIRouter(tags=["credits"], dependencies=[Depends(require_admin)])
# Committed before the response is sent (scope="function"), so a 2xx means the grant is stored.


@router.post(
    "/v1/customers/{customer_id}/credit-grants",
    status_code=201,
    response_model=CreditGrant,
    responses={200: {"model": CreditGrant, "description": "a grant with this id and body exists"}},
)
def create_grant(customer_id: str, body: CreditGrantCreate, session: SessionDep, response: Response) -> CreditGrant:
    now = utcnow()
    grant, created = service.create_grant(session, customer_id, body, now=now)
    if not created:
        response.status_code = 200
    else:
        alerts.check_balance(session, customer_id, now=now)
    return service.to_schema(grant, now)


@router.post("/v1/credit-grants/{grant_id}/void", response_model=CreditGrant)
def void_grant(grant_id: str, session: SessionDep) -> CreditGrant:
    now = utcnow()
    grant = service.void_grant(session, grant_id, now=now)
    alerts.check_balance(session, grant.customer_id, now=now)
    return service.to_schema(grant, now)


@router.get("/v1/credit-grants/{grant_id}", response_model=CreditGrant)
def get_grant(grant_id: str, session: SessionDep) -> CreditGrant:
    return service.to_schema(service.get_grant(session, grant_id), utcnow())


@router.get("/v1/customers/{customer_id}/credits", response_model=Credits)
def credits(
    customer_id: str,
    session: SessionDep,
    at: Annotated[str | None, Query(description="RFC 3339; default: now")] = None,
) -> Credits:
    now = utcnow()
    moment = time_param("at", at, billing=True) or now
    return service.credits_view(session, customer_id, at=moment, now=now)


@router.get("/v1/customers/{customer_id}/credit-ledger", response_model=Page[LedgerEntry])
def credit_ledger(
    customer_id: str, session: SessionDep, params: Annotated[ListParams, Depends(list_params)]
) -> Page[LedgerEntry]:
    rows = service.list_ledger(session, customer_id, now=utcnow(), limit=params.limit, after=params.after)
    return Page[LedgerEntry].of(rows, params.limit, "id", service.entry_to_schema)
