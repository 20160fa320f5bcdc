from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.db import get_or_404
from tollway.errors import FieldError, ValidationFailed
from tollway.kit.fields import format_decimal
from tollway.kit.listing import time_param
from tollway.kit.pagination import paginate
from tollway.kit.time import get_zone, utcnow, window_start
from tollway.meter import rollup
from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition
from tollway.meter.errors import MeterAlreadyExists, MeterInUse, MeterNotFound
from tollway.meter.query import query_usage
from tollway.meter.schemas import MeterCreate, MeterUpdate, Usage, UsageRow
from tollway.models import Customer, Meter

# Other domains register here, at app start (``app.create_app``), the reasons a meter may not
# change (the catalog: "used by the published plan 'pro'"). Each guard returns None when the
# meter is free to change.
MeterGuard = Callable[[Session, str], str | None]
MUTATION_GUARDS: list[MeterGuard] = []


def register_mutation_guard(guard: MeterGuard) -> MeterGuard:
    if guard not in MUTATION_GUARDS:
        MUTATION_GUARDS.append(guard)
    return guard


def create_meter(session: Session, data: MeterCreate) -> Meter:
    if session.get(Meter, data.key) is not None:
        raise MeterAlreadyExists(data.key)
    meter = Meter(
        key=data.key,
        name=data.name,
        description=data.description,
        event_type=data.event_type,
        aggregation=data.aggregation,
        value_property=data.value_property,
        filters=[f.model_dump() for f in data.filters],
        group_by=list(data.group_by),
    )
    session.add(meter)
    session.flush()
    rollup.start_build(session, meter)  # the worker builds the rollups; usage reads raw until then
    return meter


def get_meter(session: Session, key: str, *, for_update: bool = False) -> Meter:
    return get_or_404(session, Meter, key, MeterNotFound, for_update=for_update)


def update_meter(session: Session, key: str, data: MeterUpdate) -> Meter:
    # Lock the row first so a plan published concurrently sees the change or blocks it (guards).
    meter = get_meter(session, key, for_update=True)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for guard in MUTATION_GUARDS:
        reason = guard(session, key)
        if reason:
            raise MeterInUse(key, reason)
    for name in ("event_type", "aggregation", "filters", "group_by"):
        if name in changes and changes[name] is None:
            raise ValidationFailed.field(name, "cannot be null")
    aggregation = changes.get("aggregation", meter.aggregation)
    value_property = changes.get("value_property", meter.value_property)
    if REGISTRY[aggregation].value_kind != "none" and not value_property:
        raise ValidationFailed(
            f"value_property is required for aggregation '{aggregation}'",
            [FieldError("value_property", f"required for aggregation '{aggregation}'")],
        )
    for name, value in changes.items():
        setattr(meter, name, value)
    session.flush()
    if changes.keys() & {"event_type", "aggregation", "value_property", "filters", "group_by"}:
        rollup.start_build(session, meter)
    return meter


def list_all_meters(session: Session) -> list[Meter]:
    return list(session.scalars(select(Meter).order_by(Meter.key)))


def list_meters(session: Session, *, limit: int, after: str | None) -> list[Meter]:
    stmt = paginate(select(Meter), Meter.key, limit=limit, after=after)
    return list(session.scalars(stmt))


def usage(
    session: Session,
    key: str,
    *,
    customer: str | None,
    from_: str | None,
    to: str | None,
    window: str | None,
    group_by: list[str],
    tz: str | None,
) -> Usage:
    """``GET /v1/meters/{key}/usage``: the meter's value per window (and group) over ``[from,
    to)`` (default: this month so far in ``tz``), for one customer or all. ``tz`` defaults to the
    customer's zone, else UTC; ``group_by`` items may be comma-separated lists. 422 naming the
    parameter for bad input."""
    meter = get_meter(session, key)
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
    for item in group_by:
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
