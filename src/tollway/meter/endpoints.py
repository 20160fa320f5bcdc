from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from tollway.auth.dependencies import require_admin
from tollway.deps import SessionDep
from tollway.errors import ValidationFailed
from tollway.kit.fields import format_decimal
from tollway.kit.listing import ListParams, list_params, time_param
from tollway.kit.pagination import Page
from tollway.kit.time import get_zone, utcnow, window_start
from tollway.meter import service
from tollway.meter.query import MeterDefinition, query_usage
from tollway.meter.schemas import Meter, MeterCreate, MeterFilter, MeterUpdate, Usage, UsageRow
from tollway.models import Customer
from tollway.models import Meter as MeterRow

router = APIRouter(prefix="/v1/meters", tags=["meters"], dependencies=[Depends(require_admin)])


def to_schema(row: MeterRow) -> Meter:
    return Meter(
        key=row.key,
        name=row.name,
        description=row.description,
        event_type=row.event_type,
        aggregation=row.aggregation,  # type: ignore[arg-type]
        value_property=row.value_property,
        filters=[MeterFilter(**f) for f in row.filters or []],
        group_by=list(row.group_by or []),
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
    meter = service.get_meter(session, key)
    if tz is None:
        row = session.get(Customer, customer) if customer else None
        tz = row.timezone if row is not None else "UTC"
    try:
        zone = get_zone(tz)
    except ValueError as exc:
        raise ValidationFailed.field("tz", str(exc)) from exc
    end = time_param("to", to) or utcnow()
    start = time_param("from", from_) or window_start(end, "month", zone)
    if start >= end:
        raise ValidationFailed.field("to", "must be after 'from'")
    groups: list[str] = []
    for item in group_by or []:
        groups += [g.strip() for g in item.split(",") if g.strip()]
    unknown = [g for g in groups if g not in (meter.group_by or [])]
    if unknown:
        allowed = ", ".join(meter.group_by or []) or "none"
        raise ValidationFailed.field(
            "group_by", f"meter '{key}' cannot be grouped by {', '.join(unknown)} (its group_by: {allowed})"
        )
    try:
        values = query_usage(
            session,
            MeterDefinition.from_row(meter),
            start=start,
            end=end,
            customer=customer,
            window=window,
            tz=zone,
            group_by=groups,
        )
    except ValueError as exc:  # too many windows
        raise ValidationFailed.field("window", str(exc)) from exc
    return Usage(
        meter=key,
        customer=customer,
        tz=tz,
        window=window,
        data=[
            UsageRow(
                from_=v.start,
                to=v.end,
                value=None if v.value is None else format_decimal(v.value),
                groups=v.groups,
            )
            for v in values
        ],
    )
