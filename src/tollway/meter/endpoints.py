from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from tollway.auth.dependencies import require_admin
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page
from tollway.meter import service
from tollway.meter.schemas import Meter, MeterCreate, MeterFilter, MeterUpdate, RollupState, Usage
from tollway.models import Meter as MeterRow

router = APIRouter(prefix="/v1/meters", tags=["meters"], dependencies=[Depends(require_admin)])


def to_schema(row: MeterRow) -> Meter:
    return Meter(
        key=row.key,
        name=row.name,
        description=row.description,
        event_type=row.event_type,
        aggregation=row.aggregation,
        value_property=row.value_property,
        filters=[MeterFilter(**f) for f in row.filters or []],
        group_by=list(row.group_by or []),
        rollups=RollupState(
            status="ready" if row.rollup_status == "ready" else "building",
            customers_built=row.rollup_customers_built,
            customers_total=row.rollup_customers_total,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post("", status_code=201, response_model=Meter)
def create_meter(body: MeterCreate, session: SessionDep) -> Meter:
    return to_schema(service.create_meter(session, body))


@router.get("", response_model=Page[Meter])
def list_meters(session: SessionDep, params: Annotated[ListParams, Depends(list_params)]) -> Page[Meter]:
    rows = service.list_meters(session, limit=params.limit, after=params.after)
    return Page[Meter].of(rows, params.limit, "key", to_schema)


@router.get("/{key}", response_model=Meter)
def get_meter(key: str, session: SessionDep) -> Meter:
    return to_schema(service.get_meter(session, key))


@router.patch("/{key}", response_model=Meter)
def update_meter(key: str, body: MeterUpdate, session: SessionDep) -> Meter:
    return to_schema(service.update_meter(session, key, body))


@router.get("/{key}/usage", response_model=Usage, response_model_by_alias=True)
def meter_usage(
    key: str,
    session: SessionDep,
    customer: Annotated[str | None, Query(description="customer id; all customers when omitted")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="RFC 3339, inclusive; default: start of this month in tz")
    ] = None,
    to: Annotated[str | None, Query(description="RFC 3339, exclusive; default: now")] = None,
    window: Annotated[Literal["hour", "day", "month"] | None, Query()] = None,
    group_by: Annotated[list[str] | None, Query(description="one or more of the meter's group_by")] = None,
    tz: Annotated[str | None, Query(description="IANA zone; default: the customer's, else UTC")] = None,
) -> Usage:
    return service.usage(
        session, key, customer=customer, from_=from_, to=to, window=window, group_by=group_by or [], tz=tz
    )
