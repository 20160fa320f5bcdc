from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.errors import FieldError, ValidationFailed
from tollway.kit.pagination import decode_cursor
from tollway.meter import rollup
from tollway.meter.errors import MeterAlreadyExists, MeterInUse, MeterNotFound
from tollway.meter.query import MeterDefinition
from tollway.meter.schemas import MeterCreate, MeterUpdate
from tollway.models import Meter

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
    rollup.rebuild(session, MeterDefinition.from_row(meter))
    return meter


def get_meter(session: Session, key: str, *, for_update: bool = False) -> Meter:
    meter = session.get(Meter, key, with_for_update=for_update)
    if meter is None:
        raise MeterNotFound(key)
    return meter


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
    if aggregation != "count" and not value_property:
        raise ValidationFailed(
            f"value_property is required for aggregation '{aggregation}'",
            [FieldError("value_property", f"required for aggregation '{aggregation}'")],
        )
    for name, value in changes.items():
        setattr(meter, name, value)
    session.flush()
    if changes.keys() & {"event_type", "aggregation", "value_property", "filters", "group_by"}:
        rollup.rebuild(session, MeterDefinition.from_row(meter))
    return meter


def list_meters(session: Session, *, limit: int, after: str | None) -> list[Meter]:
    stmt = select(Meter).order_by(Meter.key).limit(limit + 1)
    if after:
        stmt = stmt.where(Meter.key > decode_cursor(after))
    return list(session.scalars(stmt))
